//! The emulator over HTTP, as a client sees it: tokens (secret and certificate assertions, and
//! their refusals), Graph paging, `$select`, `$filter`, errors, consent, throttling, HTTPS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dirsync_entra_emulator::{
    generate_certificate, AppCredentials, Directory, Emulator, EmulatorOptions, Endpoint, FailSpec,
};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};

const SCOPE: &str = "https://graph.microsoft.com/.default";

async fn start(users: usize, groups: usize) -> Emulator {
    Emulator::start(EmulatorOptions::with_directory(Directory::generate(
        users, groups, 3,
    )))
    .await
    .expect("emulator starts")
}

async fn token_request(emu: &Emulator, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn secret_token(emu: &Emulator, app: &AppCredentials) -> String {
    let (status, body) = token_request(
        emu,
        &app.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn graph(
    emu: &Emulator,
    token: &str,
    path_or_url: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_string()
    } else {
        format!("{}/v1.0{path_or_url}", emu.base_url())
    };
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("client-request-id", "0d5ad5e4-0000-4000-8000-000000000001")
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap())
}

fn error_codes(body: &Value) -> Vec<u64> {
    body["error_codes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// A client assertion as MSAL makes one: `alg` RS256 with `x5t`, or PS256 with `x5t#S256`.
fn assertion(key_pem: &str, alg: &str, header_thumb: (&str, &str), claims: Value) -> String {
    let header = json!({"alg": alg, "typ": "JWT", header_thumb.0: header_thumb.1});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let mut sig = vec![0u8; key.public().modulus_len()];
    let padding: &dyn ring::signature::RsaEncoding = if alg == "PS256" {
        &RSA_PSS_SHA256
    } else {
        &RSA_PKCS1_SHA256
    };
    key.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims(emu: &Emulator, client_id: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"aud": emu.token_url(), "iss": client_id, "sub": client_id,
           "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + exp_offset})
}

async fn assertion_request(emu: &Emulator, app: &AppCredentials, jwt: &str) -> (u16, Value) {
    token_request(
        emu,
        &app.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
            ("scope", SCOPE),
        ],
    )
    .await
}

/// The registered certificate's thumbprints, as the emulator computes them.
fn thumbs(pem: &str) -> (String, String) {
    let c = dirsync_entra_emulator::AppCertificate::from_pem(pem).unwrap();
    (c.x5t, c.x5t_s256)
}

#[tokio::test]
async fn a_certificate_assertion_signs_in_and_a_forged_or_stale_one_is_refused() {
    let emu = start(5, 1).await;
    let app = emu.control().default_app();
    let key = app.private_key_pem.clone().unwrap();
    let (x5t, x5t_s256) = thumbs(app.certificate_pem.as_deref().unwrap());

    let rs = assertion(
        &key,
        "RS256",
        ("x5t", &x5t),
        claims(&emu, &app.client_id, 600),
    );
    let (status, body) = assertion_request(&emu, &app, &rs).await;
    assert_eq!(status, 200, "RS256 + x5t: {body}");
    let ps = assertion(
        &key,
        "PS256",
        ("x5t#S256", &x5t_s256),
        claims(&emu, &app.client_id, 600),
    );
    let (status, body) = assertion_request(&emu, &app, &ps).await;
    assert_eq!(status, 200, "PS256 + x5t#S256: {body}");
    assert_eq!(body["token_type"], "Bearer");

    // Another key claiming the registered certificate's thumbprint.
    let (_, other_key) = generate_certificate("intruder").unwrap();
    let forged = assertion(
        &other_key,
        "PS256",
        ("x5t#S256", &x5t_s256),
        claims(&emu, &app.client_id, 600),
    );
    let (status, body) = assertion_request(&emu, &app, &forged).await;
    assert_eq!((status, error_codes(&body)), (401, vec![700027]), "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("signature validation"));

    // A certificate the app does not have.
    let (other_cert, other_key) = generate_certificate("stranger").unwrap();
    let unknown = assertion(
        &other_key,
        "RS256",
        ("x5t", &other_cert.x5t),
        claims(&emu, &app.client_id, 600),
    );
    let (status, body) = assertion_request(&emu, &app, &unknown).await;
    assert_eq!((status, error_codes(&body)), (401, vec![700027]));
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("not registered"));

    let stale = assertion(
        &key,
        "RS256",
        ("x5t", &x5t),
        claims(&emu, &app.client_id, -3600),
    );
    let (status, body) = assertion_request(&emu, &app, &stale).await;
    assert_eq!((status, error_codes(&body)), (401, vec![700024]));

    let mut wrong_aud = claims(&emu, &app.client_id, 600);
    wrong_aud["aud"] = json!("https://elsewhere.example/token");
    let (status, body) = assertion_request(
        &emu,
        &app,
        &assertion(&key, "RS256", ("x5t", &x5t), wrong_aud),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let (status, body) = assertion_request(&emu, &app, "not.a-jwt").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(emu.control().request_count(Endpoint::Token), 7);
}

#[tokio::test]
async fn the_token_endpoint_answers_the_real_error_bodies() {
    let emu = start(5, 1).await;
    let app = emu.control().default_app();
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("scope", SCOPE),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = base.to_vec();
        v.push(extra);
        v
    };
    let (status, body) =
        token_request(&emu, &app.tenant_id, &with(("client_secret", "nope"))).await;
    assert_eq!(
        (status, body["error"].as_str(), error_codes(&body)),
        (401, Some("invalid_client"), vec![7000215])
    );
    let desc = body["error_description"].as_str().unwrap();
    assert!(
        desc.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{desc}"
    );
    assert!(desc.contains("\r\nTrace ID: ") && desc.contains("\r\nCorrelation ID: "));

    let (status, body) =
        token_request(&emu, "nowhere.example", &with(("client_secret", "x"))).await;
    assert_eq!(
        (status, body["error"].as_str(), error_codes(&body)),
        (400, Some("invalid_tenant"), vec![90002])
    );

    let (status, body) = token_request(&emu, "common", &with(("client_secret", "x"))).await;
    assert_eq!((status, error_codes(&body)), (400, vec![9001023]));

    let mut v = base.to_vec();
    v[1] = ("client_id", "00000000-1111-2222-3333-444444444444");
    v.push(("client_secret", "x"));
    let (status, body) = token_request(&emu, &app.tenant_id, &v).await;
    assert_eq!(
        (status, body["error"].as_str(), error_codes(&body)),
        (400, Some("unauthorized_client"), vec![700016])
    );

    let mut v = base.to_vec();
    v[2] = ("scope", "https://graph.microsoft.com/User.Read.All");
    v.push(("client_secret", "x"));
    let (status, body) = token_request(&emu, &app.tenant_id, &v).await;
    assert_eq!(
        (status, body["error"].as_str(), error_codes(&body)),
        (400, Some("invalid_scope"), vec![1002012])
    );

    let expired = emu
        .control()
        .add_secret(
            &app.client_id,
            chrono::Utc::now() - chrono::Duration::days(1),
        )
        .unwrap();
    let mut v = base.to_vec();
    v.push(("client_secret", &expired));
    let (status, body) = token_request(&emu, &app.tenant_id, &v).await;
    assert_eq!((status, error_codes(&body)), (401, vec![7000222]));

    // HTTP Basic, and the tenant named by its domain.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/example.onmicrosoft.com/oauth2/v2.0/token",
            emu.base_url()
        ))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none() && body.get("scope").is_none());
}

#[tokio::test]
async fn users_page_through_absolute_next_links_with_select() {
    let emu = start(250, 3).await;
    let app = emu.control().default_app();
    let token = secret_token(&emu, &app).await;
    let mut link =
        "/users?$select=id,userPrincipalName,proxyAddresses,accountEnabled&$top=60".to_string();
    let (mut seen, mut pages) = (Vec::new(), 0);
    loop {
        let (status, headers, body) = graph(&emu, &token, &link).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json;odata.metadata=minimal"));
        assert_eq!(
            headers["client-request-id"],
            "0d5ad5e4-0000-4000-8000-000000000001"
        );
        pages += 1;
        for u in body["value"].as_array().unwrap() {
            let keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys.len(), 4, "only the selected properties: {keys:?}");
            assert!(u["proxyAddresses"].is_array() && u["accountEnabled"].is_boolean());
            seen.push(u["id"].as_str().unwrap().to_string());
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&emu.base_url()) && next.contains("%24skiptoken="),
                    "{next}"
                );
                assert!(
                    next.contains("%24select=id%2CuserPrincipalName"),
                    "options repeated: {next}"
                );
                link = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (250, 5));
    seen.dedup();
    assert_eq!(seen.len(), 250);

    let (_, _, body) = graph(&emu, &token, "/users?$top=1").await;
    let keys: Vec<&str> = body["value"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 11, "the default property set: {keys:?}");
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#users"));

    let (status, _, body) = graph(&emu, &token, "/users?$top=1000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );
    let (status, _, body) = graph(&emu, &token, "/users?$select=id,shoeSize").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );
    let (status, _, body) = graph(&emu, &token, "/users?$skiptoken=forged").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );
}

#[tokio::test]
async fn filters_gets_and_graph_errors() {
    let emu = start(40, 4).await;
    let app = emu.control().default_app();
    let token = secret_token(&emu, &app).await;
    // A guest: its UPN holds `#EXT#`, which must travel encoded.
    let user = emu
        .control()
        .directory()
        .users()
        .find(|u| u.user_principal_name.contains("#EXT#"))
        .unwrap()
        .clone();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let q = format!(
        "/users?$filter={}",
        enc(&format!(
            "userPrincipalName eq '{}'",
            user.user_principal_name.to_uppercase()
        ))
    );
    let (_, _, body) = graph(&emu, &token, &q).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["id"], user.id.as_str());
    let (_, _, body) = graph(
        &emu,
        &token,
        "/users?$filter=startsWith(userPrincipalName,'admin')&$select=id",
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (status, _, body) = graph(&emu, &token, "/users?$filter=mail ne null").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );

    let (status, _, body) = graph(
        &emu,
        &token,
        &format!("/users/{}?$select=id,mail", enc(&user.user_principal_name)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#users(id,mail)/$entity"));

    let (status, headers, body) =
        graph(&emu, &token, "/users/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );
    let inner = &body["error"]["innerError"];
    assert!(inner["date"].is_string() && inner["request-id"].is_string());
    assert_eq!(
        inner["client-request-id"],
        "0d5ad5e4-0000-4000-8000-000000000001"
    );
    assert_eq!(
        headers["request-id"].to_str().unwrap(),
        inner["request-id"].as_str().unwrap()
    );

    let (status, headers, body) = graph(&emu, "made-up", "/users").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
    assert!(headers.contains_key("www-authenticate"));
    emu.control().expire_tokens();
    let (status, _, _) = graph(&emu, &token, "/users").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn transitive_members_are_typed_and_flatten_nesting_and_cycles() {
    let mut dir = Directory::generate(30, 3, 9);
    let groups: Vec<String> = dir.groups().map(|g| g.id.clone()).collect();
    let users: Vec<String> = dir.users().map(|u| u.id.clone()).collect();
    let outer = dir
        .create_group("Outer", Some("outer@example.com"))
        .unwrap();
    let inner = dir.create_group("Inner", None).unwrap();
    dir.add_member(&outer, &inner).unwrap();
    dir.add_member(&outer, &users[1]).unwrap();
    dir.add_member(&inner, &users[2]).unwrap();
    dir.add_member(&inner, &outer).unwrap(); // a cycle
    dir.add_member(&inner, &groups[0]).unwrap();
    let expected = dir.transitive_members(&outer).len();
    let emu = Emulator::start(EmulatorOptions::with_directory(dir))
        .await
        .unwrap();
    let token = secret_token(&emu, &emu.control().default_app()).await;

    let (_, _, body) = graph(&emu, &token, &format!("/groups/{outer}/members")).await;
    let types: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["#microsoft.graph.group", "#microsoft.graph.user"]);
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#directoryObjects"));

    let mut link = format!(
        "/groups/{outer}/transitiveMembers?$top=5&$select=id,userPrincipalName,mailEnabled"
    );
    let mut all = Vec::new();
    loop {
        let (status, _, body) = graph(&emu, &token, &link).await;
        assert_eq!(status, 200, "{body}");
        all.extend(body["value"].as_array().unwrap().clone());
        match body["@odata.nextLink"].as_str() {
            Some(n) => link = n.to_string(),
            None => break,
        }
    }
    assert_eq!(all.len(), expected);
    assert!(
        !all.iter().any(|m| m["id"] == outer.as_str()),
        "the group itself is not its own member"
    );
    for m in &all {
        match m["@odata.type"].as_str().unwrap() {
            "#microsoft.graph.user" => {
                assert!(m.get("mailEnabled").is_none() && m["userPrincipalName"].is_string())
            }
            "#microsoft.graph.group" => {
                assert!(m["mailEnabled"].is_boolean() && m.get("userPrincipalName").is_none())
            }
            other => panic!("{other}"),
        }
    }
    let (_, _, body) = graph(
        &emu,
        &token,
        &format!("/groups/{outer}/transitiveMembers/microsoft.graph.user?$select=id"),
    )
    .await;
    let users_only = all
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
        .count();
    assert_eq!(body["value"].as_array().unwrap().len(), users_only);
}

#[tokio::test]
async fn without_admin_consent_graph_answers_403_authorization_request_denied() {
    let emu = start(5, 2).await;
    let c = emu.control();
    let bare = tokio::task::spawn_blocking(move || c.register_app("no-consent", &[]))
        .await
        .unwrap()
        .unwrap();
    let token = secret_token(&emu, &bare).await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("roles").is_none() && claims["idtyp"] == "app");
    let (status, _, body) = graph(&emu, &token, "/users").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    emu.control()
        .set_roles(&bare.client_id, &["User.Read.All"])
        .unwrap();
    let token = secret_token(&emu, &bare).await;
    assert_eq!(graph(&emu, &token, "/users").await.0, 200);
    assert_eq!(graph(&emu, &token, "/groups").await.0, 403);
}

#[tokio::test]
async fn over_the_rate_limit_graph_answers_429_with_retry_after() {
    let emu = start(5, 2).await;
    let token = secret_token(&emu, &emu.control().default_app()).await;
    emu.control().set_rate_limit(Some(2), 7);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, headers, body) = graph(&emu, &token, "/groups").await;
        if status == 429 {
            assert_eq!(headers["retry-after"], "7");
            assert_eq!(body["error"]["code"], "TooManyRequests");
        }
        statuses.push(status);
    }
    // Two windows of a second cannot both hold four quick requests: at least one is refused.
    assert!(statuses.contains(&429), "{statuses:?}");
    emu.control().set_rate_limit(None, 0);
    assert_eq!(graph(&emu, &token, "/groups").await.0, 200);

    emu.control().inject(FailSpec {
        endpoint: Endpoint::UsersList,
        status: 503,
        code: None,
        retry_after_secs: Some(3),
        times: 1,
    });
    let (status, headers, body) = graph(&emu, &token, "/users").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("serviceNotAvailable"))
    );
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(graph(&emu, &token, "/users").await.0, 200);
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 2);
}

#[tokio::test]
async fn https_with_the_generated_ca_serves_discovery_pointing_at_itself() {
    let emu = Emulator::start(EmulatorOptions {
        https: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let doc: Value = client
        .get(format!(
            "{}/v2.0/.well-known/openid-configuration",
            emu.authority()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["token_endpoint"], emu.token_url());
    let tenant = emu.control().directory().tenant.id;
    assert_eq!(
        doc["issuer"],
        format!("https://login.microsoftonline.com/{tenant}/v2.0")
    );
    // Without the CA the certificate is not trusted.
    assert!(reqwest::get(format!("{}/_emulator/health", emu.base_url()))
        .await
        .is_err());
}

/// Follows a delta round to its deltaLink; returns (entries, pages, deltaLink).
async fn delta_round(emu: &Emulator, token: &str, first: &str) -> (Vec<Value>, usize, String) {
    let (mut link, mut entries, mut pages) = (first.to_string(), Vec::new(), 0);
    loop {
        let (status, _, body) = graph(emu, token, &link).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        entries.extend(body["value"].as_array().unwrap().clone());
        assert!(
            body.get("@odata.nextLink").is_some() != body.get("@odata.deltaLink").is_some(),
            "exactly one of nextLink and deltaLink: {body}"
        );
        match (
            body["@odata.nextLink"].as_str(),
            body["@odata.deltaLink"].as_str(),
        ) {
            (Some(n), _) => link = n.to_string(),
            (None, Some(d)) => return (entries, pages, d.to_string()),
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn delta_rounds_return_changes_removals_and_membership_changes() {
    let emu = start(230, 6).await;
    let c = emu.control();
    let token = secret_token(&emu, &c.default_app()).await;
    let (entries, pages, users_link) = delta_round(
        &emu,
        &token,
        "/users/delta()?$select=id,userPrincipalName,mail",
    )
    .await;
    assert_eq!((entries.len(), pages), (230, 3));
    assert!(users_link.starts_with(&emu.base_url()) && users_link.contains("$deltatoken="));
    let (groups, _, groups_link) =
        delta_round(&emu, &token, "/groups/microsoft.graph.delta()").await;
    assert_eq!(groups.len(), 6);
    let d = c.directory();
    let g0 = d.groups().next().unwrap().clone();
    let first = groups.iter().find(|g| g["id"] == g0.id.as_str()).unwrap();
    assert_eq!(
        first["members@delta"].as_array().unwrap().len(),
        d.direct_members(&g0.id).len()
    );

    // Nothing changed: an empty round.
    let (entries, _, _) = delta_round(&emu, &token, &users_link).await;
    assert!(entries.is_empty(), "{entries:?}");

    let users: Vec<String> = d.users().map(|u| u.id.clone()).collect();
    c.rename_upn(&users[0], "renamed@example.com").unwrap();
    c.delete_user(&users[1]).unwrap();
    c.with_directory(|d| d.purge_user(&users[1])).unwrap();
    c.delete_user(&users[2]).unwrap();
    let new_id = c
        .create_user("new.person@example.com", "New", "Person")
        .unwrap();
    c.add_member(&g0.id, &new_id).unwrap();
    let old_member = d.direct_members(&g0.id)[0].0.clone();
    c.with_directory(|d| d.remove_member(&g0.id, &old_member))
        .unwrap();

    let (entries, _, next_link) = delta_round(&emu, &token, &users_link).await;
    let by_id = |id: &str| entries.iter().find(|e| e["id"] == id).cloned();
    assert_eq!(
        by_id(&users[0]).unwrap()["userPrincipalName"],
        "renamed@example.com"
    );
    assert_eq!(by_id(&users[1]).unwrap()["@removed"]["reason"], "deleted");
    assert_eq!(by_id(&users[2]).unwrap()["@removed"]["reason"], "changed");
    assert!(by_id(&new_id).is_some());
    assert_eq!(entries.len(), 4, "{entries:?}");

    let (entries, _, _) = delta_round(&emu, &token, &groups_link).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let changes = entries[0]["members@delta"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|m| m["id"] == new_id.as_str() && m.get("@removed").is_none()));
    assert!(changes
        .iter()
        .any(|m| m["id"] == old_member.as_str() && m["@removed"]["reason"] == "deleted"));

    // `latest` skips the enumeration.
    let (status, _, body) = graph(&emu, &token, "/users/delta?$deltatoken=latest").await;
    assert_eq!(status, 200);
    assert!(body["value"].as_array().unwrap().is_empty() && body["@odata.deltaLink"].is_string());

    c.expire_delta_tokens(400);
    let (status, _, body) = graph(&emu, &token, &next_link).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("syncStateNotFound"))
    );
    c.expire_delta_tokens(410);
    let (status, headers, _) = graph(&emu, &token, &next_link).await;
    assert_eq!(status, 410);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/v1.0/users/delta"));
    // Three pages, the empty round, the changes, `latest`, the two expired.
    assert_eq!(c.request_count(Endpoint::UsersDelta), 8);
}

#[tokio::test]
async fn sign_in_issues_a_code_then_an_id_token_signed_by_a_published_key() {
    let emu = start(20, 2).await;
    let c = emu.control();
    let app = c.default_app();
    let redirect = "http://localhost:8462/oidc/signin";
    c.add_redirect_uri(&app.client_id, redirect).unwrap();
    let user = c
        .directory()
        .users()
        .find(|u| u.account_enabled)
        .unwrap()
        .clone();
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghij";
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |redirect_uri: &str| {
        let mut u = url::Url::parse(&format!("{}/oauth2/v2.0/authorize", emu.authority())).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", "st-1")
            .append_pair("nonce", "n-1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("login_hint", &user.user_principal_name);
        u.to_string()
    };
    let r = no_redirects
        .get(authorize("http://localhost:9999/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "an unregistered redirect URI is refused on the page"
    );
    assert!(r.text().await.unwrap().contains("AADSTS50011"));

    let code_for = |r: reqwest::Response| {
        assert_eq!(r.status(), 302);
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(loc.as_str().starts_with(redirect));
        let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st-1");
        q["code"].clone()
    };
    let redeem = |code: String, verifier: &'static str| {
        let app = app.clone();
        let emu_token = emu.token_url();
        async move {
            let r = reqwest::Client::new()
                .post(emu_token)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", app.client_id.as_str()),
                    ("client_secret", app.client_secret.as_str()),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                    ("client_info", "1"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let code = code_for(no_redirects.get(authorize(redirect)).send().await.unwrap());
    let (status, body) = redeem(
        code.clone(),
        "the-wrong-verifier-0123456789-abcdefghijklmnop",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let code = code_for(no_redirects.get(authorize(redirect)).send().await.unwrap());
    let (status, body) = redeem(code.clone(), verifier).await;
    assert_eq!(status, 200, "{body}");
    let (again, body2) = redeem(code, verifier).await;
    assert_eq!((again, error_codes(&body2)), (400, vec![54005]));

    let id_token = body["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let tid = c.directory().tenant.id;
    assert_eq!(
        claims["iss"],
        format!("https://login.microsoftonline.com/{tid}/v2.0")
    );
    assert_eq!(
        (
            claims["aud"].as_str(),
            claims["oid"].as_str(),
            claims["tid"].as_str()
        ),
        (
            Some(app.client_id.as_str()),
            Some(user.id.as_str()),
            Some(tid.as_str())
        )
    );
    assert_eq!(
        (
            claims["nonce"].as_str(),
            claims["preferred_username"].as_str()
        ),
        (Some("n-1"), Some(user.user_principal_name.as_str()))
    );
    assert_ne!(claims["sub"], user.id.as_str(), "sub is pairwise");
    let client_info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(client_info, json!({"uid": user.id, "utid": tid}));

    let jwks_url = format!("{}/discovery/v2.0/keys", emu.authority());
    let jwks: Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let public = ring::signature::RsaPublicKeyComponents {
        n: URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap(),
        e: URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap(),
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &sig,
        )
        .expect("the ID token verifies with the published key");
    let mut forged = sig.clone();
    forged[10] ^= 1;
    assert!(public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &forged
        )
        .is_err());

    let c2 = c.clone();
    let new_kid = tokio::task::spawn_blocking(move || c2.rotate_signing_key(true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.signing_kids(),
        vec![new_kid.clone(), header["kid"].as_str().unwrap().to_string()]
    );
    let c2 = c.clone();
    tokio::task::spawn_blocking(move || c2.rotate_signing_key(false))
        .await
        .unwrap()
        .unwrap();
    let jwks: Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(c.request_count(Endpoint::Authorize) == 3 && c.request_count(Endpoint::Jwks) == 2);
}
