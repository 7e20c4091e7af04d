//! The emulator over HTTP: token endpoint, Directory API shapes and paging, faults, control API.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dirsync_google_emulator::{
    Directory, Emulator, EmulatorOptions, Endpoint, MemberType, RateLimitStyle, READONLY_SCOPES,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

struct Key {
    client_email: String,
    kid: String,
    pem: String,
}

fn key_of(json: &str) -> Key {
    let v: Value = serde_json::from_str(json).unwrap();
    Key {
        client_email: v["client_email"].as_str().unwrap().into(),
        kid: v["private_key_id"].as_str().unwrap().into(),
        pem: v["private_key"].as_str().unwrap().into(),
    }
}

fn assertion(key: &Key, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(key: &Key, sub: &str, scopes: &[&str]) -> Value {
    json!({"iss": key.client_email, "sub": sub, "scope": scopes.join(" "),
           "aud": "https://oauth2.googleapis.com/token", "iat": now(), "exp": now() + 3600})
}

async fn post_token(emu: &Emulator, assertion: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(emu.token_uri())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn token_for(emu: &Emulator, sub: &str, scopes: &[&str]) -> String {
    let key = key_of(&emu.service_account_key_json());
    let (status, body) = post_token(emu, &assertion(&key, claims(&key, sub, scopes))).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn admin_token(emu: &Emulator) -> String {
    token_for(emu, "admin@example.com", &READONLY_SCOPES).await
}

async fn get(emu: &Emulator, token: &str, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/admin/directory/v1/{path_and_query}",
            emu.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn reason(v: &Value) -> &str {
    v["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}

async fn start(d: Directory) -> Emulator {
    Emulator::start(EmulatorOptions::with_directory(d))
        .await
        .unwrap()
}

#[tokio::test]
async fn token_endpoint_issues_tokens_and_answers_google_errors() {
    let emu = start(Directory::generate(20, 2, 1)).await;
    let key = key_of(&emu.service_account_key_json());
    let v: Value = serde_json::from_str(&emu.service_account_key_json()).unwrap();
    assert_eq!(v["type"], "service_account");
    assert_eq!(v["token_uri"], emu.token_uri());
    assert!(v["private_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(v["universe_domain"], "googleapis.com");

    let (s, body) = post_token(
        &emu,
        &assertion(&key, claims(&key, "admin@example.com", &READONLY_SCOPES)),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");

    // aud may be the emulator's own token URL (what yup-oauth2 sends).
    let mut c = claims(&key, "admin@example.com", &READONLY_SCOPES);
    c["aud"] = json!(emu.token_uri());
    assert_eq!(post_token(&emu, &assertion(&key, c)).await.0, 200);

    // Padded base64url segments are accepted too (signed as sent, padding included).
    let pad = |s: String| {
        let missing = (4 - s.len() % 4) % 4;
        s + &"=".repeat(missing)
    };
    let header =
        pad(URL_SAFE_NO_PAD.encode(json!({"alg":"RS256","typ":"JWT","kid":key.kid}).to_string()));
    let payload = pad(
        URL_SAFE_NO_PAD.encode(claims(&key, "admin@example.com", &READONLY_SCOPES).to_string())
    );
    assert!(
        header.ends_with('=') || payload.ends_with('='),
        "test needs padding somewhere"
    );
    let signing_input = format!("{header}.{payload}");
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    assert_eq!(
        post_token(&emu, &format!("{signing_input}.{}", pad(sig)))
            .await
            .0,
        200
    );
    let a = assertion(&key, claims(&key, "admin@example.com", &READONLY_SCOPES));

    // A wrong signature.
    let mut parts: Vec<String> = a.split('.').map(str::to_string).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[10] ^= 1;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let (s, body) = post_token(&emu, &parts.join(".")).await;
    assert_eq!((s, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    assert_eq!(body["error_description"], "Invalid JWT Signature.");

    // A key the emulator never issued, claiming to be its service account.
    let other = emu.new_service_account("other").await.unwrap();
    let mut forged = key_of(&other.key_json);
    forged.client_email = key.client_email.clone();
    forged.kid = key.kid.clone();
    let (s, body) = post_token(
        &emu,
        &assertion(&forged, claims(&key, "admin@example.com", &READONLY_SCOPES)),
    )
    .await;
    assert_eq!(
        (s, body["error_description"].as_str().unwrap()),
        (400, "Invalid JWT Signature.")
    );

    // Too long-lived, and in the past.
    let mut c = claims(&key, "admin@example.com", &READONLY_SCOPES);
    c["exp"] = json!(now() + 3700);
    let (s, body) = post_token(&emu, &assertion(&key, c)).await;
    assert_eq!(s, 400);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("Invalid JWT: Token must be a short-lived token"));
    let mut c = claims(&key, "admin@example.com", &READONLY_SCOPES);
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    assert_eq!(post_token(&emu, &assertion(&key, c)).await.0, 400);

    // Unknown subject.
    let (s, body) = post_token(
        &emu,
        &assertion(&key, claims(&key, "ghost@example.com", &READONLY_SCOPES)),
    )
    .await;
    assert_eq!((s, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    assert_eq!(body["error_description"], "Invalid email or User ID");

    // A scope outside the delegation grant, and an account without any grant.
    let (s, body) = post_token(
        &emu,
        &assertion(
            &key,
            claims(&key, "admin@example.com", &["https://mail.google.com/"]),
        ),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (401, "unauthorized_client")
    );
    let other_key = key_of(&other.key_json);
    let (s, body) = post_token(
        &emu,
        &assertion(
            &other_key,
            claims(&other_key, "admin@example.com", &READONLY_SCOPES),
        ),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (401, "unauthorized_client")
    );
    emu.control()
        .set_delegation(&other.client_id, &READONLY_SCOPES);
    let (s, _) = post_token(
        &emu,
        &assertion(
            &other_key,
            claims(&other_key, "admin@example.com", &READONLY_SCOPES),
        ),
    )
    .await;
    assert_eq!(s, 200);
    emu.control().revoke_delegation(&other.client_id);
    let (s, _) = post_token(
        &emu,
        &assertion(
            &other_key,
            claims(&other_key, "admin@example.com", &READONLY_SCOPES),
        ),
    )
    .await;
    assert_eq!(s, 401);

    // Wrong audience; wrong grant type.
    let mut c = claims(&key, "admin@example.com", &READONLY_SCOPES);
    c["aud"] = json!("https://example.com/token");
    assert_eq!(post_token(&emu, &assertion(&key, c)).await.0, 400);
    let r = reqwest::Client::new()
        .post(emu.token_uri())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    assert_eq!(emu.control().request_count(Endpoint::Token), 14);
}

#[tokio::test]
async fn users_page_completely_with_opaque_tokens() {
    let emu = start(Directory::generate(1234, 3, 9)).await;
    let token = admin_token(&emu).await;
    let mut ids = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = "users?customer=my_customer&maxResults=500".to_string();
        if let Some(t) = &page_token {
            q.push_str(&format!("&pageToken={t}"));
        }
        let (s, body) = get(&emu, &token, &q).await;
        assert_eq!(s, 200, "{body}");
        pages += 1;
        assert_eq!(body["kind"], "admin#directory#users");
        assert!(body["etag"].is_string());
        let users = body["users"].as_array().unwrap();
        ids.extend(users.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        match body.get("nextPageToken") {
            Some(t) => {
                assert_eq!(users.len(), 500);
                page_token = Some(t.as_str().unwrap().to_string());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 1234);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "stable order by id, no repeats");
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 3);

    // Default page size 100; bounds; exactly 500 users leave no nextPageToken on the last page.
    let (_, body) = get(&emu, &token, "users?domain=example.com").await;
    assert_eq!(body["users"].as_array().unwrap().len(), 100);
    assert_eq!(
        get(&emu, &token, "users?customer=my_customer&maxResults=501")
            .await
            .0,
        400
    );
    assert_eq!(
        get(&emu, &token, "users?customer=my_customer&maxResults=0")
            .await
            .0,
        400
    );

    // Invalid, tampered and foreign page tokens.
    let (s, body) = get(&emu, &token, "users?customer=my_customer&pageToken=bogus").await;
    assert_eq!((s, reason(&body)), (400, "invalid"));
    let t = page_token.unwrap_or_default();
    let (_, first) = get(&emu, &token, "users?customer=my_customer&maxResults=10").await;
    let t1 = first["nextPageToken"].as_str().unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(t1).unwrap();
    raw[3] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(raw);
    assert_eq!(
        get(
            &emu,
            &token,
            &format!("users?customer=my_customer&pageToken={tampered}")
        )
        .await
        .0,
        400
    );
    let (s, _) = get(
        &emu,
        &token,
        &format!("groups?customer=my_customer&pageToken={t1}"),
    )
    .await;
    assert_eq!(s, 400, "a users token is not a groups token");
    assert!(!t.is_empty());
}

#[tokio::test]
async fn exact_multiple_of_page_size_ends_without_next_token() {
    let emu = start(Directory::generate(1000, 0, 2)).await;
    let token = admin_token(&emu).await;
    let (_, p1) = get(&emu, &token, "users?customer=my_customer&maxResults=500").await;
    let t = p1["nextPageToken"].as_str().unwrap();
    let (_, p2) = get(
        &emu,
        &token,
        &format!("users?customer=my_customer&maxResults=500&pageToken={t}"),
    )
    .await;
    assert_eq!(p2["users"].as_array().unwrap().len(), 500);
    assert!(p2.get("nextPageToken").is_none());
    // No groups: the `groups` key is absent.
    let (s, g) = get(&emu, &token, "groups?customer=my_customer").await;
    assert_eq!(s, 200);
    assert!(g.get("groups").is_none(), "{g}");
    assert_eq!(g["kind"], "admin#directory#groups");
}

fn small_directory() -> Directory {
    let mut d = Directory::empty("example.com");
    d.add_user("plain@example.com", "Plain", "User").unwrap();
    d.add_user("ann@example.com", "Ann", "Alias").unwrap();
    d.add_alias("ann@example.com", "a@example.com").unwrap();
    d.add_non_editable_alias("ann@example.com", "ann@example.com.test-google-a.com")
        .unwrap();
    d.add_user("sue@example.com", "Sue", "Pended").unwrap();
    d.set_suspended("sue@example.com", true).unwrap();
    d.add_user("arch@example.com", "Arch", "Ived").unwrap();
    d.set_archived("arch@example.com", true).unwrap();
    d.add_group("staff@example.com", "Staff").unwrap();
    d.add_group("team@example.com", "Team").unwrap();
    d.add_group("empty@example.com", "Empty").unwrap();
    d.add_group("all@example.com", "All").unwrap();
    d.add_member("staff@example.com", "plain@example.com", MemberType::User)
        .unwrap();
    d.add_member("staff@example.com", "sue@example.com", MemberType::User)
        .unwrap();
    d.add_member("staff@example.com", "team@example.com", MemberType::Group)
        .unwrap();
    d.add_member(
        "staff@example.com",
        "partner@other.org",
        MemberType::External,
    )
    .unwrap();
    d.add_member("team@example.com", "ann@example.com", MemberType::User)
        .unwrap();
    d.add_member("all@example.com", "", MemberType::Customer)
        .unwrap();
    d
}

#[tokio::test]
async fn shapes_follow_the_reference() {
    let emu = start(small_directory()).await;
    let token = admin_token(&emu).await;
    let (_, body) = get(&emu, &token, "users?customer=my_customer").await;
    assert!(body.get("nextPageToken").is_none());
    let users = body["users"].as_array().unwrap();
    let by = |e: &str| {
        users
            .iter()
            .find(|u| u["primaryEmail"] == e)
            .unwrap()
            .clone()
    };
    let plain = by("plain@example.com");
    assert!(plain.get("aliases").is_none());
    assert!(plain.get("nonEditableAliases").is_none());
    assert!(plain.get("suspensionReason").is_none());
    assert_eq!(
        plain["name"],
        json!({"givenName":"Plain","familyName":"User","fullName":"Plain User"})
    );
    assert_eq!(plain["kind"], "admin#directory#user");
    assert!(plain["id"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c.is_ascii_digit()));
    let ann = by("ann@example.com");
    assert_eq!(ann["aliases"], json!(["a@example.com"]));
    assert_eq!(
        ann["nonEditableAliases"],
        json!(["ann@example.com.test-google-a.com"])
    );
    assert_eq!(
        ann["emails"][0],
        json!({"address":"ann@example.com","primary":true})
    );
    let sue = by("sue@example.com");
    assert_eq!(
        (sue["suspended"].clone(), sue["suspensionReason"].clone()),
        (json!(true), json!("ADMIN"))
    );
    assert_eq!(by("arch@example.com")["archived"], true);

    let (_, groups) = get(&emu, &token, "groups?customer=my_customer").await;
    let staff = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["email"] == "staff@example.com")
        .unwrap()
        .clone();
    assert_eq!(staff["directMembersCount"], json!("4"));

    let (_, members) = get(&emu, &token, "groups/staff@example.com/members").await;
    assert_eq!(members["kind"], "admin#directory#members");
    let ms = members["members"].as_array().unwrap();
    let types: Vec<&str> = ms.iter().map(|m| m["type"].as_str().unwrap()).collect();
    for t in ["USER", "GROUP", "EXTERNAL"] {
        assert!(types.contains(&t), "{types:?}");
    }
    let sue_m = ms.iter().find(|m| m["email"] == "sue@example.com").unwrap();
    assert_eq!(sue_m["status"], "SUSPENDED");
    let (_, all) = get(&emu, &token, "groups/all@example.com/members").await;
    let customer = &all["members"][0];
    assert_eq!(customer["type"], "CUSTOMER");
    assert!(customer.get("email").is_none());
    let (_, empty) = get(&emu, &token, "groups/empty@example.com/members").await;
    assert!(empty.get("members").is_none(), "{empty}");

    // Lookups by id, alias; 404 on unknown keys; hasMember follows nested groups.
    let ann_id = ann["id"].as_str().unwrap();
    assert_eq!(
        get(&emu, &token, &format!("users/{ann_id}")).await.1["primaryEmail"],
        "ann@example.com"
    );
    assert_eq!(
        get(&emu, &token, "users/a@example.com").await.1["id"],
        ann_id
    );
    let (s, body) = get(&emu, &token, "groups/nope@example.com/members").await;
    assert_eq!((s, reason(&body)), (404, "notFound"));
    assert_eq!(body["error"]["message"], "Resource Not Found: groupKey");
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["errors"][0]["domain"], "global");
    assert_eq!(get(&emu, &token, "groups/nope@example.com").await.0, 404);
    assert_eq!(get(&emu, &token, "users/nope@example.com").await.0, 404);
    assert_eq!(
        get(
            &emu,
            &token,
            "groups/staff@example.com/hasMember/ann@example.com"
        )
        .await
        .1,
        json!({"isMember": true})
    );
    assert_eq!(
        get(
            &emu,
            &token,
            "groups/team@example.com/hasMember/plain@example.com"
        )
        .await
        .1,
        json!({"isMember": false})
    );
    assert_eq!(
        get(
            &emu,
            &token,
            "groups/all@example.com/hasMember/plain@example.com"
        )
        .await
        .1["isMember"],
        true
    );
    // Groups of one user.
    let (_, of_ann) = get(&emu, &token, "groups?userKey=ann@example.com").await;
    assert_eq!(of_ann["groups"].as_array().unwrap().len(), 1);
    // A query that matches nothing: no `users` key.
    let (_, none) = get(&emu, &token, "users?customer=my_customer&query=email:zzz*").await;
    assert!(none.get("users").is_none());
    let (_, sus) = get(
        &emu,
        &token,
        "users?customer=my_customer&query=isSuspended=true",
    )
    .await;
    assert_eq!(sus["users"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fields_selects_partial_responses() {
    let emu = start(small_directory()).await;
    let token = admin_token(&emu).await;
    let (s, body) = get(
        &emu,
        &token,
        "users?customer=my_customer&maxResults=2&fields=nextPageToken,users(id,primaryEmail,name/fullName,suspended,archived,aliases,nonEditableAliases,emails(address))",
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.get("kind").is_none());
    assert!(body["nextPageToken"].is_string());
    for u in body["users"].as_array().unwrap() {
        let keys: Vec<&String> = u.as_object().unwrap().keys().collect();
        for k in &keys {
            assert!(
                [
                    "id",
                    "primaryEmail",
                    "name",
                    "suspended",
                    "archived",
                    "aliases",
                    "nonEditableAliases",
                    "emails"
                ]
                .contains(&k.as_str()),
                "{k}"
            );
        }
        assert_eq!(u["name"].as_object().unwrap().len(), 1);
        assert!(u["emails"][0].get("primary").is_none());
    }
    let (_, g) = get(
        &emu,
        &token,
        "groups?customer=my_customer&fields=groups(email,directMembersCount)",
    )
    .await;
    assert_eq!(g["groups"][0].as_object().unwrap().len(), 2);
    let (s, body) = get(&emu, &token, "users?customer=my_customer&fields=users(id").await;
    assert_eq!((s, reason(&body)), (400, "invalidParameter"));
}

#[tokio::test]
async fn authorization_and_account_checks() {
    let emu = start(small_directory()).await;
    let (s, body) = get(&emu, "not-a-token", "users?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (401, "authError"));
    let user_only = token_for(&emu, "admin@example.com", &[READONLY_SCOPES[0]]).await;
    assert_eq!(
        get(&emu, &user_only, "users?customer=my_customer").await.0,
        200
    );
    let (s, body) = get(&emu, &user_only, "groups?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (403, "insufficientPermissions"));
    let plain = token_for(&emu, "plain@example.com", &READONLY_SCOPES).await;
    let (s, body) = get(&emu, &plain, "users?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (403, "forbidden"));
    assert_eq!(
        body["error"]["message"],
        "Not Authorized to access this resource/api"
    );

    let token = admin_token(&emu).await;
    let (s, body) = get(&emu, &token, "users").await;
    assert_eq!((s, reason(&body)), (400, "badRequest"));
    let (s, body) = get(&emu, &token, "users?customer=C0wrong").await;
    assert_eq!(
        (s, body["error"]["message"].as_str().unwrap()),
        (404, "Domain not found.")
    );
    let (s, _) = get(&emu, &token, "groups?domain=other.test").await;
    assert_eq!(s, 404);
    let cid = emu.control().directory().customer_id().to_string();
    assert_eq!(
        get(&emu, &token, &format!("users?customer={cid}")).await.0,
        200
    );

    // A demoted admin's token stops working; expired tokens answer 401.
    emu.control().set_admin("admin@example.com", false).unwrap();
    assert_eq!(get(&emu, &token, "users?customer=my_customer").await.0, 403);
    emu.control().set_admin("admin@example.com", true).unwrap();
    emu.control().expire_tokens();
    assert_eq!(get(&emu, &token, "users?customer=my_customer").await.0, 401);
}

#[tokio::test]
async fn faults_fail_truncate_repeat_and_rate_limit() {
    let emu = start(Directory::generate(300, 5, 4)).await;
    let c = emu.control();
    let token = admin_token(&emu).await;

    c.fail_requests(Endpoint::UsersList, 503, 2);
    let (s, body) = get(&emu, &token, "users?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (503, "backendError"));
    assert_eq!(get(&emu, &token, "users?customer=my_customer").await.0, 503);
    assert_eq!(get(&emu, &token, "users?customer=my_customer").await.0, 200);
    c.fail_requests(Endpoint::Any, 500, 1);
    assert_eq!(
        get(&emu, &token, "groups?customer=my_customer").await.0,
        500
    );

    c.truncate_page(Endpoint::UsersList, 1);
    let (s, p0) = get(&emu, &token, "users?customer=my_customer&maxResults=100").await;
    assert_eq!(s, 200);
    let t = p0["nextPageToken"].as_str().unwrap();
    let (s, p1) = get(
        &emu,
        &token,
        &format!("users?customer=my_customer&maxResults=100&pageToken={t}"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(p1.is_string(), "truncated body is not JSON");

    c.repeat_page_token(Endpoint::UsersList);
    let (_, p1) = get(
        &emu,
        &token,
        &format!("users?customer=my_customer&maxResults=100&pageToken={t}"),
    )
    .await;
    assert_eq!(p1["nextPageToken"], t);

    c.set_rate_limit(
        Some(2),
        RateLimitStyle::TooMany429 {
            retry_after_secs: 7,
        },
    );
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/admin/directory/v1/users?customer=my_customer",
                emu.base_url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("7"));
    c.set_rate_limit(Some(0), RateLimitStyle::Forbidden403);
    let (s, body) = get(&emu, &token, "users?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (403, "userRateLimitExceeded"));
    c.clear_faults();
    assert_eq!(get(&emu, &token, "users?customer=my_customer").await.0, 200);

    c.fail_requests(Endpoint::Token, 503, 1);
    let key = key_of(&emu.service_account_key_json());
    let (s, body) = post_token(
        &emu,
        &assertion(&key, claims(&key, "admin@example.com", &READONLY_SCOPES)),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (503, "temporarily_unavailable")
    );

    c.set_latency(Duration::from_millis(150));
    let t0 = std::time::Instant::now();
    get(&emu, &token, "users?customer=my_customer&maxResults=1").await;
    assert!(t0.elapsed() >= Duration::from_millis(150));

    assert!(c.request_count(Endpoint::UsersList) >= 10);
    c.reset_counts();
    assert_eq!(c.request_count(Endpoint::Any), 0);
}

#[tokio::test]
async fn responses_are_gzipped_on_request() {
    let emu = start(Directory::generate(50, 1, 1)).await;
    let token = admin_token(&emu).await;
    let r = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!(
            "{}/admin/directory/v1/users?customer=my_customer",
            emu.base_url()
        ))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .header("user-agent", "test (gzip)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("content-encoding").unwrap(), "gzip");
    assert_eq!(emu.control().gzip_requests(), 1);
    // Without "gzip" in the User-Agent the request is not counted as Google-style gzip.
    reqwest::Client::builder()
        .no_gzip()
        .user_agent("plain")
        .build()
        .unwrap()
        .get(format!(
            "{}/admin/directory/v1/users?customer=my_customer",
            emu.base_url()
        ))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(emu.control().gzip_requests(), 1);
}

#[tokio::test]
async fn control_api_changes_directory_faults_and_counts() {
    let emu = start(small_directory()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/_emulator/{p}", emu.base_url());
    let r = http
        .post(url("directory/changes"))
        .json(&json!([
            {"op": "add_user", "primary_email": "new@example.com", "given_name": "New", "family_name": "Person"},
            {"op": "rename_user", "old": "plain@example.com", "new": "plainer@example.com"},
            {"op": "suspend_user", "email": "ann@example.com"},
            {"op": "move_member", "from": "team@example.com", "to": "empty@example.com", "member": "ann@example.com"},
            {"op": "add_member", "group": "team@example.com", "member": "new@example.com"}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["results"][0].as_str().unwrap().len() > 10);
    let d = emu.control().directory();
    assert!(d.user("plainer@example.com").is_some());
    assert!(d.user("ann@example.com").unwrap().suspended);
    assert_eq!(
        d.has_member("empty@example.com", "ann@example.com"),
        Some(true)
    );
    assert_eq!(
        d.has_member("team@example.com", "new@example.com"),
        Some(true)
    );

    // All or nothing.
    let r = http
        .post(url("directory/changes"))
        .json(&json!([{"op": "delete_user", "email": "new@example.com"}, {"op": "delete_user", "email": "ghost@example.com"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(emu.control().directory().user("new@example.com").is_some());

    // An address is held once: what Google refuses, the control API refuses, whole.
    for refused in [
        json!({"op": "add_user", "primary_email": "NEW@example.com", "given_name": "A", "family_name": "B"}),
        json!({"op": "add_alias", "email": "ann@example.com", "alias": "New@Example.com"}),
        json!({"op": "add_alias", "email": "new@example.com", "alias": "new@example.com"}),
        json!({"op": "rename_user", "old": "ann@example.com", "new": "new@example.com"}),
        json!({"op": "add_group", "email": "new@example.com", "name": "G"}),
    ] {
        let before = emu.control().directory();
        let r = http
            .post(url("directory/changes"))
            .json(&json!([{"op": "set_name", "email": "ann@example.com", "given_name": "X", "family_name": "Y"}, refused]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{refused}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains("already in use"), "{body}");
        assert_eq!(
            emu.control().directory().to_json(),
            before.to_json(),
            "{refused}"
        );
    }
    // Renaming onto one's own alias is refused too (Google: delete the alias first).
    emu.control()
        .add_alias("new@example.com", "newer@example.com")
        .unwrap();
    let r = http
        .post(url("directory/changes"))
        .json(&json!({"op": "rename_user", "old": "new@example.com", "new": "newer@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    http.post(url("faults"))
        .json(&json!({"kind": "fail", "endpoint": "users_list", "status": 403, "reason": "quotaExceeded", "times": 1}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    http.post(url("faults"))
        .json(&json!({"kind": "rate_limit", "max_per_second": 100, "style": "too_many429", "retry_after_secs": 1}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let token = admin_token(&emu).await;
    let (s, body) = get(&emu, &token, "users?customer=my_customer").await;
    assert_eq!((s, reason(&body)), (403, "quotaExceeded"));
    let counts: Value = http
        .get(url("counts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["users_list"], 1);
    assert_eq!(counts["token"], 1);
    assert_eq!(counts["total"], 2);
    let stats: Value = http
        .get(url("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["users"], 6);
    assert_eq!(stats["group_members"]["team@example.com"], 1);
    let key: Value = http
        .get(url("service-account"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["token_uri"], emu.token_uri());
    let fixture = http
        .get(url("directory"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(Directory::from_json(&fixture).is_ok());
    http.delete(url("faults"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

#[tokio::test]
async fn serves_a_large_directory_quickly() {
    let d = tokio::task::spawn_blocking(|| Directory::generate(100_000, 10_000, 5))
        .await
        .unwrap();
    assert_eq!(d.user_count(), 100_000);
    let emu = start(d).await;
    let token = admin_token(&emu).await;
    let t0 = std::time::Instant::now();
    let mut next: Option<String> = None;
    let mut n = 0;
    for _ in 0..10 {
        let mut q = "users?customer=my_customer&maxResults=500&prettyPrint=false&fields=nextPageToken,users(id,primaryEmail)".to_string();
        if let Some(t) = &next {
            q.push_str(&format!("&pageToken={t}"));
        }
        let (_, body) = get(&emu, &token, &q).await;
        n += body["users"].as_array().unwrap().len();
        next = body["nextPageToken"].as_str().map(str::to_string);
    }
    assert_eq!(n, 5000);
    // Generous bound for debug builds on 2 cores: paging must not scan the whole directory.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

// ---- Reports API: the admin activity log ----

const AUDIT: &str = dirsync_google_emulator::REPORTS_SCOPE;

async fn activities(emu: &Emulator, token: &str, query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/admin/reports/v1/activity/users/all/applications/admin?{query}",
            emu.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// `(event name, parameters as name=value)` of each item of a page.
fn events(v: &Value) -> Vec<(String, Vec<String>)> {
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|a| {
                    let e = &a["events"][0];
                    let params = e["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            format!(
                                "{}={}",
                                p["name"].as_str().unwrap(),
                                p["value"].as_str().unwrap()
                            )
                        })
                        .collect();
                    (e["name"].as_str().unwrap().to_string(), params)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_change_is_logged_with_googles_event_names_newest_first() {
    let emu = start(small_directory()).await;
    let c = emu.control();
    let token = token_for(&emu, "admin@example.com", &[AUDIT]).await;
    let (status, v) = activities(&emu, &token, "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["kind"], "admin#reports#activities");
    assert!(v.get("items").is_none(), "a fixture load logs nothing: {v}");
    assert!(v.get("nextPageToken").is_none());

    c.rename_user("plain@example.com", "robert@example.com")
        .unwrap();
    c.suspend_user("robert@example.com", true).unwrap();
    c.add_group("new@example.com", "New").unwrap();
    c.add_member("new@example.com", "staff@example.com", MemberType::Group)
        .unwrap();
    c.with_directory(|d| d.add_group_alias("new@example.com", "neu@example.com"))
        .unwrap();
    c.delete_user("robert@example.com").unwrap();

    let (status, v) = activities(&emu, &token, "").await;
    assert_eq!(status, 200, "{v}");
    let got = events(&v);
    let want: Vec<(String, Vec<String>)> = vec![
        ("DELETE_USER", vec!["USER_EMAIL=robert@example.com"]),
        // A nested group is named by its address, as Google does.
        (
            "ADD_GROUP_MEMBER",
            vec![
                "GROUP_EMAIL=new@example.com",
                "USER_EMAIL=staff@example.com",
            ],
        ),
        ("CREATE_GROUP", vec!["GROUP_EMAIL=new@example.com"]),
        ("SUSPEND_USER", vec!["USER_EMAIL=robert@example.com"]),
        (
            "REMOVE_NICKNAME",
            vec![
                "USER_EMAIL=robert@example.com",
                "USER_NICKNAME=plain@example.com",
            ],
        ),
        (
            "RENAME_USER",
            vec![
                "USER_EMAIL=plain@example.com",
                "NEW_VALUE=robert@example.com",
            ],
        ),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p.into_iter().map(String::from).collect()))
    .collect();
    // Activities of the same millisecond keep no order at Google either: compare as sets
    // within equal times, and check the times never increase down the list.
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got_sorted, want_sorted,
        "group alias changes are not logged"
    );
    let times: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"]["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    for a in v["items"].as_array().unwrap() {
        assert!(a["id"]["uniqueQualifier"].is_string());
        assert_eq!(a["id"]["applicationName"], "admin");
        assert_eq!(a["actor"]["email"], "admin@example.com");
        let e = &a["events"][0];
        let group_event = e["name"].as_str().unwrap().contains("GROUP");
        let kind = if group_event {
            "GROUP_SETTINGS"
        } else {
            "USER_SETTINGS"
        };
        assert_eq!(e["type"], kind, "{a}");
    }
}

#[tokio::test]
async fn the_log_pages_newest_first_filters_and_keeps_its_window() {
    let emu = start(small_directory()).await;
    let c = emu.control();
    let token = token_for(&emu, "admin@example.com", &[AUDIT]).await;
    for i in 0..5 {
        c.add_user(&format!("u{i}@example.com"), "U", &i.to_string())
            .unwrap();
    }
    c.suspend_user("u1@example.com", true).unwrap();

    // maxResults=2 over 6 activities: three pages, none repeated, none skipped.
    let mut seen = Vec::new();
    let mut query = "maxResults=2".to_string();
    loop {
        let (status, v) = activities(&emu, &token, &query).await;
        assert_eq!(status, 200, "{v}");
        for a in v["items"].as_array().unwrap() {
            seen.push(a["id"]["uniqueQualifier"].as_str().unwrap().to_string());
        }
        // Made between pages: newer than the listing's first item, so never served by it.
        c.add_user(&format!("late{}@example.com", seen.len()), "L", "")
            .unwrap();
        match v["nextPageToken"].as_str() {
            Some(t) => query = format!("maxResults=2&pageToken={t}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6);

    let (_, v) = activities(&emu, &token, "eventName=SUSPEND_USER").await;
    assert_eq!(events(&v).len(), 1, "{v}");
    let (_, v) = activities(&emu, &token, "filters=USER_EMAIL==u3@example.com").await;
    assert_eq!(
        events(&v),
        vec![(
            "CREATE_USER".to_string(),
            vec!["USER_EMAIL=u3@example.com".to_string()]
        )]
    );
    let (_, v) = activities(
        &emu,
        &token,
        "eventName=CREATE_USER&filters=USER_EMAIL%3C%3Eu3@example.com",
    )
    .await;
    assert!(events(&v)
        .iter()
        .all(|(_, p)| p[0] != "USER_EMAIL=u3@example.com"));
    assert!(events(&v).len() >= 4, "{v}");

    // The window is inclusive and bounded by Google's 180 days.
    let all = c.activities();
    let t = all[2]
        .time
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, v) = activities(&emu, &token, &format!("startTime={t}&endTime={t}")).await;
    assert_eq!(status, 400, "start must be before end: {v}");
    let (_, v) = activities(&emu, &token, &format!("startTime={t}")).await;
    assert!(events(&v).len() >= all.len() - 2, "{v}");
    let old = (chrono::Utc::now() - chrono::Duration::days(181)).to_rfc3339();
    let (status, v) = activities(
        &emu,
        &token,
        &format!("startTime={}", old.replace('+', "%2B")),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within last 180 days"),
        "{v}"
    );
    let (status, _) = activities(&emu, &token, "maxResults=1001").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_log_lags_needs_the_audit_scope_and_bulk_uploads_name_nobody() {
    let emu = start(small_directory()).await;
    let c = emu.control();
    // Without the audit scope: Google's 403.
    let directory_only = admin_token(&emu).await;
    let (status, v) = activities(&emu, &directory_only, "").await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(reason(&v), "insufficientPermissions");
    // A service account not granted the scope cannot even get such a token.
    c.set_delegation(&emu.service_account().client_id, &READONLY_SCOPES);
    let key = key_of(&emu.service_account_key_json());
    let (status, body) = post_token(
        &emu,
        &assertion(&key, claims(&key, "admin@example.com", &[AUDIT])),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized_client")),
        "{body}"
    );
    c.set_delegation(&emu.service_account().client_id, &[AUDIT]);
    let token = token_for(&emu, "admin@example.com", &[AUDIT]).await;

    c.set_event_lag(Duration::from_secs(3600));
    c.suspend_user("plain@example.com", true).unwrap();
    let (_, v) = activities(&emu, &token, "").await;
    assert!(
        v.get("items").is_none(),
        "an activity within the lag is not visible yet: {v}"
    );
    assert_eq!(c.activities().len(), 1, "but it is logged");
    c.set_event_lag(Duration::ZERO);
    let (_, v) = activities(&emu, &token, "").await;
    assert_eq!(events(&v).len(), 1);

    c.with_directory(|d| {
        d.bulk_upload(&[("x1@example.com", "X", "1"), ("x2@example.com", "X", "2")])
            .map(|_| ())
    })
    .unwrap();
    let (_, v) = activities(&emu, &token, "eventName=BULK_UPLOAD").await;
    let got = events(&v);
    assert_eq!(got.len(), 1, "{v}");
    assert!(
        got[0].1.iter().all(|p| !p.contains("x1@")),
        "a CSV upload names no user: {got:?}"
    );
    assert!(c.directory().user("x2@example.com").is_some());
}

#[tokio::test]
async fn the_per_minute_quota_answers_429_with_retry_after_and_latency_is_per_endpoint() {
    let emu = start(small_directory()).await;
    let c = emu.control();
    let token = admin_token(&emu).await;
    c.set_quota_per_minute(Some(3));
    for _ in 0..3 {
        let (status, v) = get(&emu, &token, "users?customer=my_customer").await;
        assert_eq!(status, 200, "{v}");
    }
    let r = reqwest::Client::new()
        .get(format!(
            "{}/admin/directory/v1/groups?customer=my_customer",
            emu.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    c.set_quota_per_minute(None);

    // Wide margins: the test must not depend on how loaded the machine is.
    c.set_endpoint_latency(Endpoint::UsersList, Some(Duration::from_secs(3)));
    let t = std::time::Instant::now();
    get(&emu, &token, "groups?customer=my_customer").await;
    let groups = t.elapsed();
    let t = std::time::Instant::now();
    get(&emu, &token, "users?customer=my_customer").await;
    let users = t.elapsed();
    assert!(
        users >= Duration::from_secs(3),
        "users are delayed: {users:?}"
    );
    assert!(
        groups < Duration::from_secs(2),
        "groups are not: {groups:?}"
    );
}
