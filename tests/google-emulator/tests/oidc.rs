//! The emulator's OpenID Connect half over HTTP: discovery, the authorization endpoint, the code
//! exchange with PKCE and client secrets, JWKS and rotation, userinfo, tampered tokens.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dirsync_google_emulator::{
    ClientAuthMethod, Directory, Emulator, EmulatorOptions, Endpoint, IdTokenTamper, ISSUER,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CLIENT: &str = "123-abc.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-test-secret";
const REDIRECT: &str = "https://dirsync.example.com/oidc/signin";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier";

async fn start() -> Emulator {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_user("bob@example.com", "Bob", "Builder").unwrap();
    d.add_user("sus@example.com", "Sus", "Pended").unwrap();
    d.set_suspended("sus@example.com", true).unwrap();
    let emu = Emulator::start(EmulatorOptions::with_directory(d))
        .await
        .unwrap();
    emu.control().add_oauth_client(CLIENT, SECRET, &[REDIRECT]);
    emu
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn auth_url(emu: &Emulator, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{}/o/oauth2/v2/auth", emu.base_url())).unwrap();
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email profile"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge_method", "S256"),
        ] {
            q.append_pair(k, v);
        }
        q.append_pair("code_challenge", &challenge(VERIFIER));
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Follows the authorization endpoint's redirect and returns the callback's query.
async fn authorize(emu: &Emulator, hint: &str) -> Vec<(String, String)> {
    let r = http()
        .get(auth_url(emu, &[("login_hint", hint)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> &'a str {
    q.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

async fn exchange(emu: &Emulator, code: &str, verifier: &str, secret: &str) -> (u16, Value) {
    let r = http()
        .post(emu.token_uri())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT),
            ("client_secret", secret),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn jwks(emu: &Emulator) -> (String, Value) {
    let r = http()
        .get(format!("{}/oauth2/v3/certs", emu.base_url()))
        .send()
        .await
        .unwrap();
    let cc = r.headers()["cache-control"].to_str().unwrap().to_string();
    (cc, r.json().await.unwrap())
}

fn verify(token: &str, jwks: &Value) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid in the JWKS");
    let dk =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[CLIENT]);
    v.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &dk, &v)
        .unwrap()
        .claims
}

fn claims_of(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let c = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    )
}

#[tokio::test]
async fn discovery_points_at_the_emulator_and_names_google_as_issuer() {
    let emu = start().await;
    let r = http().get(emu.discovery_url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    let base = emu.base_url();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{base}/o/oauth2/v2/auth")
    );
    assert_eq!(d["token_endpoint"], format!("{base}/token"));
    assert_eq!(d["jwks_uri"], format!("{base}/oauth2/v3/certs"));
    assert_eq!(d["userinfo_endpoint"], format!("{base}/v1/userinfo"));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(emu.control().request_count(Endpoint::Discovery), 1);
}

#[tokio::test]
async fn the_code_flow_issues_an_id_token_as_google_does() {
    let emu = start().await;
    let ada = emu
        .control()
        .directory()
        .user("ada@example.com")
        .unwrap()
        .id
        .clone();
    let q = authorize(&emu, "ada@example.com").await;
    assert_eq!(get(&q, "state"), "st-1");
    assert_eq!(get(&q, "hd"), "example.com");
    let (status, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let (cc, keys) = jwks(&emu).await;
    assert!(
        cc.contains("public") && cc.contains("max-age=21155"),
        "{cc}"
    );
    let token = body["id_token"].as_str().unwrap();
    let claims = verify(token, &keys);
    assert_eq!(claims["sub"], ada.as_str());
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["azp"], CLIENT);
    assert_eq!(claims["hd"], "example.com");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["name"], "Ada Lovelace");
    let at = body["access_token"].as_str().unwrap();
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], at_hash.as_str());

    // userinfo with the access token.
    let r = http()
        .get(format!("{}/v1/userinfo", emu.base_url()))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], ada.as_str());
    assert_eq!(info["email"], "ada@example.com");
    let r = http()
        .get(format!("{}/v1/userinfo", emu.base_url()))
        .bearer_auth("ya29.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The code is single use.
    let (status, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_code_exchange_checks_the_client_secret_and_the_pkce_verifier() {
    let emu = start().await;
    let q = authorize(&emu, "ada@example.com").await;
    let (status, body) = exchange(&emu, get(&q, "code"), VERIFIER, "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let (status, body) = exchange(&emu, get(&q, "code"), &format!("{VERIFIER}x"), SECRET).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Invalid code verifier.");

    let (status, body) = exchange(&emu, "4/0Anonsense", VERIFIER, SECRET).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Malformed auth code."))
    );

    // client_secret_basic works too.
    let q = authorize(&emu, "bob@example.com").await;
    let r = http()
        .post(emu.token_uri())
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", get(&q, "code")),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_token_endpoint_takes_the_client_auth_methods_discovery_lists() {
    let emu = start().await;
    let c = emu.control();
    let listed = |emu: &Emulator| {
        let url = emu.discovery_url();
        async move {
            let doc: Value = http().get(url).send().await.unwrap().json().await.unwrap();
            doc["token_endpoint_auth_methods_supported"].clone()
        }
    };
    assert_eq!(
        listed(&emu).await,
        json!(["client_secret_post", "client_secret_basic"])
    );
    c.set_token_endpoint_auth_methods(&[ClientAuthMethod::ClientSecretBasic]);
    assert_eq!(listed(&emu).await, json!(["client_secret_basic"]));

    // The body form is refused now.
    let q = authorize(&emu, "ada@example.com").await;
    let (status, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Both at once are refused whatever is listed (RFC 6749 §2.3).
    let q = authorize(&emu, "ada@example.com").await;
    let r = http()
        .post(emu.token_uri())
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", get(&q, "code")),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Basic, with the id and secret form-urlencoded inside it.
    let odd = "GOCSPX-a+b c%d:e";
    c.add_oauth_client(CLIENT, odd, &[REDIRECT]);
    let q = authorize(&emu, "ada@example.com").await;
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let r = http()
        .post(emu.token_uri())
        .basic_auth(encoded(CLIENT), Some(encoded(odd)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", get(&q, "code")),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.client_auth_methods_used(),
        vec![ClientAuthMethod::ClientSecretBasic]
    );
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_unknown_clients_and_redirect_uris() {
    let emu = start().await;
    let url = auth_url(&emu, &[("login_hint", "ada@example.com")]);
    let r = http()
        .get(url.replace("redirect_uri=https", "redirect_uri=http"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("redirect_uri_mismatch"));
    let r = http()
        .get(url.replace("client_id=123", "client_id=456"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("invalid_client"));
    // A suspended user cannot sign in.
    let r = http()
        .get(auth_url(&emu, &[("login_hint", "sus@example.com")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn without_a_hint_the_browser_picks_an_account_from_a_form() {
    let emu = start().await;
    let r = http().get(auth_url(&emu, &[])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-email=\"ada@example.com\""), "{html}");
    assert!(
        !html.contains("sus@example.com"),
        "suspended users are not offered"
    );
    // The link of an account is the same request with its login_hint.
    let start = html.find("href=\"/o/oauth2/v2/auth?").unwrap() + "href=\"".len();
    let href = &html[start..start + html[start..].find('"').unwrap()];
    let href = href.replace("&amp;", "&");
    let r = http()
        .get(format!("{}{href}", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    // Cancel answers access_denied with the state.
    let marker = "id=\"cancel\" href=\"";
    let cancel = html.find(marker).unwrap() + marker.len();
    let href = html[cancel..cancel + html[cancel..].find('"').unwrap()].replace("&amp;", "&");
    let r = http()
        .get(format!("{}{href}", emu.base_url()))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.contains("error=access_denied") && loc.contains("state=st-1"),
        "{loc}"
    );
}

#[tokio::test]
async fn rotation_publishes_the_new_key_and_keeps_the_old_one_unless_told() {
    let emu = start().await;
    let c = emu.control();
    let first = c.signing_key_ids();
    assert_eq!(first.len(), 1);
    let second = c.rotate_signing_key();
    let (_, keys) = jwks(&emu).await;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&first[0].as_str()) && kids.contains(&second.as_str()));
    let q = authorize(&emu, "ada@example.com").await;
    let (_, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
    let (header, _) = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(header["kid"], second.as_str());

    c.set_keep_old_signing_keys(false);
    let third = c.rotate_signing_key();
    assert_eq!(c.signing_key_ids(), vec![third]);
    c.set_jwks_max_age(Duration::from_secs(5));
    let (cc, _) = jwks(&emu).await;
    assert!(cc.contains("max-age=5"), "{cc}");
    assert_eq!(c.request_count(Endpoint::Jwks), 2);
}

#[tokio::test]
async fn tamperings_apply_to_the_next_token_only() {
    let emu = start().await;
    let c = emu.control();
    c.tamper_next_id_token(IdTokenTamper::AlgNone);
    c.tamper_next_id_token(IdTokenTamper::ExtraAudience);
    c.next_id_token_override(|claims, _| claims["name"] = json!("Mallory"));
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let q = authorize(&emu, "ada@example.com").await;
        let (_, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
        tokens.push(body["id_token"].as_str().unwrap().to_string());
    }
    let (h, _) = claims_of(&tokens[0]);
    assert_eq!(h["alg"], "none");
    assert!(tokens[0].ends_with('.'));
    let (_, c1) = claims_of(&tokens[1]);
    assert_eq!(c1["aud"].as_array().unwrap().len(), 2);
    // The override applied to the first token; the third is clean.
    let (_, c0) = claims_of(&tokens[0]);
    assert_eq!(c0["name"], "Mallory");
    let (_, keys) = jwks(&emu).await;
    assert_eq!(verify(&tokens[2], &keys)["name"], "Ada Lovelace");

    // Over HTTP too.
    let r = http()
        .post(format!("{}/_emulator/oidc/tamper", emu.base_url()))
        .json(&json!({"tamper": "unknown_kid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let q = authorize(&emu, "ada@example.com").await;
    let (_, body) = exchange(&emu, get(&q, "code"), VERIFIER, SECRET).await;
    let (h, _) = claims_of(body["id_token"].as_str().unwrap());
    assert!(!c
        .signing_key_ids()
        .contains(&h["kid"].as_str().unwrap().to_string()));
    assert_eq!(c.id_tokens_issued(), 4);
}
