//! Microsoft Entra configuration (issue 16, item 2): the Entra settings of `PUT
//! /api/v1/directory` and how they refuse Google's (and the reverse), the app credential of `PUT
//! /api/v1/directory/entra-credential` (a client secret, or a certificate checked against its key
//! and shown by thumbprint) and its life at rest, and the provider switch that directory users
//! block.

use base64::Engine;
use dirsync_core::directory::EntraCredentialKind;
use dirsync_entity::directory_config;
use dirsync_google_emulator::Directory;
use dirsync_tests::google::spawn_with_google;
use dirsync_tests::{captured_logs, spawn_app, Reply, TestApp};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000003-aaaa-4bbb-8ccc-123456789abc";

fn entra_settings() -> Value {
    json!({
        "provider": "microsoft_entra",
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "sync_groups": [],
        "auto_delete_users": false,
        "deletion_limit": null,
        "schedule_minutes": null
    })
}

fn merged(base: Value, changes: Value) -> Value {
    let mut body = base;
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn upload(app: &TestApp, body: &Value) -> Reply {
    app.put("/api/v1/directory/entra-credential", body).await
}

async fn config_row(app: &TestApp) -> directory_config::Model {
    directory_config::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
}

/// The upper-case hex SHA-1 of a PEM certificate's DER, computed here rather than by the server.
fn sha1_thumbprint(certificate_pem: &str) -> String {
    let b64: String = certificate_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    hex::encode_upper(digest.as_ref())
}

/// An RSA certificate for `key_pem` (PKCS#8) valid only in 2000: long expired.
fn expired_certificate(key_pem: &str) -> String {
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dirsync expired");
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 12, 31);
    params.self_signed(&pair).unwrap().pem()
}

#[tokio::test]
async fn entra_settings_round_trip_normalised_beside_google_fields_left_empty() {
    let app = spawn_app().await;
    let group_id = "5F1A3C2B-0D4E-4F60-8A7B-9C0D1E2F3A4B";
    let body = json!({
        "provider": "microsoft_entra",
        "tenant_id": " Contoso.OnMicrosoft.com ",
        "client_id": CLIENT.to_uppercase(),
        "include_guests": true,
        "sync_groups": [group_id, "Staff@Contoso.com", group_id.to_lowercase()],
        "auto_delete_users": true,
        "deletion_limit": 7,
        "schedule_minutes": 30,
        "incremental_seconds": 60,
        "full_sync_hours": 12,
        "event_overlap_minutes": 3
    });
    let put = app.put("/api/v1/directory", &body).await.expect(200);
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(put.json, got.json);
    let j = &got.json;
    assert_eq!(j["provider"], "microsoft_entra");
    assert_eq!(j["tenant_id"], "contoso.onmicrosoft.com");
    assert_eq!(j["client_id"], CLIENT);
    assert_eq!(j["include_guests"], true);
    assert_eq!(
        j["sync_groups"],
        json!([group_id.to_lowercase(), "staff@contoso.com"])
    );
    assert_eq!(j["auto_delete_users"], true);
    assert_eq!(j["deletion_limit"], 7);
    assert_eq!(j["schedule_minutes"], 30);
    assert_eq!(j["incremental_seconds"], 60);
    assert_eq!(j["full_sync_hours"], 12);
    assert_eq!(j["event_overlap_minutes"], 3);
    // Google's fields stay empty: no `my_customer` default for a directory that has none.
    for field in ["admin_email", "customer_id", "domain", "service_account"] {
        assert!(j[field].is_null(), "{field}: {}", got.text);
    }
    assert!(j["entra_credential"].is_null());
    // The stored row holds what GET shows.
    let row = config_row(&app).await;
    assert_eq!(row.tenant_id.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(row.entra_client_id.as_deref(), Some(CLIENT));
    assert!(row.include_guests);

    // A tenant id is the GUID as well as a domain; guests default to out of scope.
    let r = app
        .put(
            "/api/v1/directory",
            &merged(
                entra_settings(),
                json!({"tenant_id": TENANT.to_uppercase()}),
            ),
        )
        .await
        .expect(200);
    assert_eq!(r.json["tenant_id"], TENANT);
    assert_eq!(r.json["include_guests"], false);

    // Google's view names the Entra fields too, empty.
    let env = spawn_with_google(Directory::empty("example.com")).await;
    let g = env.app.get("/api/v1/directory").await.expect(200);
    assert_eq!(g.json["provider"], "google_workspace");
    assert!(g.json["tenant_id"].is_null() && g.json["client_id"].is_null());
    assert_eq!(g.json["include_guests"], false);
    assert!(g.json["entra_credential"].is_null());
    assert_eq!(g.json["customer_id"], "my_customer");
}

#[tokio::test]
async fn bad_tenant_and_client_ids_and_group_names_are_refused_naming_the_field() {
    let app = spawn_app().await;
    app.put("/api/v1/directory", &entra_settings())
        .await
        .expect(200);
    let cases = [
        (json!({"tenant_id": null}), "tenant_id"),
        (json!({"tenant_id": "  "}), "tenant_id"),
        (json!({"tenant_id": "common"}), "tenant_id"),
        (json!({"tenant_id": "organizations"}), "tenant_id"),
        (json!({"tenant_id": "contoso"}), "tenant_id"),
        (json!({"tenant_id": "contoso .com"}), "tenant_id"),
        (json!({"tenant_id": "admin@contoso.com"}), "tenant_id"),
        (
            json!({"tenant_id": "https://login.microsoftonline.com/contoso.com"}),
            "tenant_id",
        ),
        (
            json!({"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db4"}),
            "tenant_id",
        ),
        (json!({"client_id": null}), "client_id"),
        (json!({"client_id": "dirsync-sync-app"}), "client_id"),
        (json!({"client_id": format!("{{{CLIENT}}}")}), "client_id"),
        (
            json!({"client_id": "00000003-aaaa-4bbb-8ccc-123456789abz"}),
            "client_id",
        ),
        (json!({"sync_groups": ["Staff"]}), "sync_groups"),
        (
            json!({"sync_groups": ["5f1a3c2b-0d4e-4f60-8a7b"]}),
            "sync_groups",
        ),
    ];
    for (patch, field) in cases {
        let r = app
            .put(
                "/api/v1/directory",
                &merged(entra_settings(), patch.clone()),
            )
            .await;
        assert_eq!(r.status, 422, "{patch}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_directory_settings", "{patch}");
        assert_eq!(r.json["error"]["details"]["field"], field, "{}", r.text);
    }
    // Nothing of the refused requests was saved.
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(got.json["tenant_id"], TENANT);
    assert_eq!(got.json["client_id"], CLIENT);
    // Google's sync groups stay addresses only: a GUID is not a Google group name.
    let env = spawn_with_google(Directory::empty("example.com")).await;
    let r = env
        .configure(json!({"sync_groups": ["5f1a3c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b"]}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["error"]["details"]["field"], "sync_groups");
}

#[tokio::test]
async fn google_and_entra_fields_are_refused_outside_their_provider() {
    let app = spawn_app().await;
    let google = dirsync_tests::google::base_directory_settings();
    let cases = [
        // Google's fields with Entra.
        (
            entra_settings(),
            json!({"admin_email": "admin@contoso.com"}),
            "admin_email",
        ),
        (
            entra_settings(),
            json!({"customer_id": "my_customer"}),
            "customer_id",
        ),
        (entra_settings(), json!({"domain": "contoso.com"}), "domain"),
        // Entra's with Google, or with no directory at all.
        (google.clone(), json!({"tenant_id": TENANT}), "tenant_id"),
        (google.clone(), json!({"client_id": CLIENT}), "client_id"),
        (
            google.clone(),
            json!({"include_guests": true}),
            "include_guests",
        ),
        (
            json!({"provider": "none"}),
            json!({"tenant_id": TENANT}),
            "tenant_id",
        ),
    ];
    for (base, patch, field) in cases {
        let body = merged(base, patch.clone());
        let r = app.put("/api/v1/directory", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_directory_settings", "{body}");
        assert_eq!(r.json["error"]["details"]["field"], field, "{}", r.text);
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("applies to provider"), "{message}");
    }
    assert_eq!(
        app.get("/api/v1/directory").await.expect(200).json["provider"],
        "none"
    );
    // Empty values of the other provider's fields are no mix: null, and guests left out.
    app.put(
        "/api/v1/directory",
        &merged(
            entra_settings(),
            json!({"admin_email": null, "customer_id": "", "domain": null}),
        ),
    )
    .await
    .expect(200);
    let r = app
        .put(
            "/api/v1/directory",
            &merged(
                json!({"provider": "none"}),
                json!({"tenant_id": null, "client_id": null, "include_guests": false}),
            ),
        )
        .await
        .expect(200);
    assert!(r.json["tenant_id"].is_null());
}

#[tokio::test]
async fn a_client_secret_is_stored_encrypted_shown_by_kind_only_and_never_logged() {
    let app = spawn_app().await;
    let secret = format!("Ab1~{}", dirsync_tests::random_secret(36));
    // Like the Google key, it may be uploaded before the provider is chosen.
    let r = upload(&app, &json!({ "client_secret": format!("{secret}\n") }))
        .await
        .expect(200);
    assert_eq!(
        r.json["entra_credential"],
        json!({"kind": "client_secret", "thumbprint": null})
    );
    assert!(!r.text.contains(&secret));
    app.put("/api/v1/directory", &entra_settings())
        .await
        .expect(200);
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(
        got.json["entra_credential"],
        json!({"kind": "client_secret", "thumbprint": null})
    );
    assert!(!got.text.contains(&secret));

    let row = config_row(&app).await;
    assert_eq!(
        row.entra_credential_kind,
        Some(EntraCredentialKind::ClientSecret)
    );
    let sealed = row.entra_secret.clone().unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains(&secret),
        "{sealed}"
    );
    assert!(row.entra_certificate_pem.is_none() && row.entra_thumbprint.is_none());
    assert!(!format!("{row:?}").contains(&secret));
    // What the Graph client will read: the secret, trimmed, decrypted with the server's key.
    let cipher = dirsync_core::secrets::Cipher::from_settings(&app.settings).unwrap();
    match dirsync_core::directory::entra_credential(&row, &cipher).unwrap() {
        dirsync_core::entra::Credential::ClientSecret(s) => assert_eq!(s.expose_secret(), secret),
        other => panic!("not a client secret: {other:?}"),
    }
    let config = dirsync_core::directory::entra_config(&row, &cipher).unwrap();
    assert_eq!(
        (config.tenant_id.as_str(), config.client_id.as_str()),
        (TENANT, CLIENT)
    );

    let audit = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    assert!(audit.text.contains("directory.entra_credential.upload"));
    assert!(!audit.text.contains(&secret));
    assert!(
        !captured_logs().contains(&secret),
        "the secret reached the log"
    );

    // Whitespace inside, nothing at all, or far too much: refused, and the stored one kept.
    for bad in [json!(""), json!("two words"), json!("x".repeat(2000))] {
        let r = upload(&app, &json!({ "client_secret": bad })).await;
        assert_eq!(
            (r.status, r.error_code()),
            (422, "invalid_entra_credential")
        );
        assert_eq!(r.json["error"]["details"]["field"], "client_secret");
    }
    assert_eq!(config_row(&app).await.entra_secret, Some(sealed));
    // A body past the JSON limit is not read at all.
    let r = upload(&app, &json!({ "client_secret": "x".repeat(70 * 1024) })).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
}

#[tokio::test]
async fn a_certificate_is_checked_against_its_key_and_shown_by_its_sha1_thumbprint() {
    let app = spawn_app().await;
    app.put("/api/v1/directory", &entra_settings())
        .await
        .expect(200);
    let (cert, key) = dirsync_entra_emulator::generate_certificate("dirsync").unwrap();
    let cert_pem = cert.pem();
    let key_body = key.lines().nth(3).unwrap().to_string();
    let r = upload(
        &app,
        &json!({"certificate_pem": cert_pem, "private_key_pem": key}),
    )
    .await
    .expect(200);
    let thumbprint = sha1_thumbprint(&cert_pem);
    assert_eq!(thumbprint.len(), 40);
    assert_eq!(
        r.json["entra_credential"],
        json!({"kind": "certificate", "thumbprint": thumbprint})
    );
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(got.json["entra_credential"]["thumbprint"], thumbprint);
    assert!(!got.text.contains(&key_body) && !r.text.contains(&key_body));

    let row = config_row(&app).await;
    assert_eq!(
        row.entra_credential_kind,
        Some(EntraCredentialKind::Certificate)
    );
    assert_eq!(row.entra_thumbprint.as_deref(), Some(thumbprint.as_str()));
    assert_eq!(
        row.entra_certificate_pem.as_deref(),
        Some(cert_pem.as_str())
    );
    let sealed = row.entra_secret.clone().unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains("PRIVATE KEY"));
    let cipher = dirsync_core::secrets::Cipher::from_settings(&app.settings).unwrap();
    match dirsync_core::directory::entra_credential(&row, &cipher).unwrap() {
        dirsync_core::entra::Credential::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            assert_eq!(certificate_pem, cert_pem);
            assert_eq!(private_key_pem.expose_secret(), key.trim());
        }
        other => panic!("not a certificate: {other:?}"),
    }
    // The kind is bound to the ciphertext: a key relabelled as a secret does not decrypt.
    let mut relabelled = row.clone();
    relabelled.entra_credential_kind = Some(EntraCredentialKind::ClientSecret);
    assert!(dirsync_core::directory::entra_credential(&relabelled, &cipher).is_err());

    let audit = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    assert!(audit.text.contains(&thumbprint) && !audit.text.contains(&key_body));
    assert!(
        !captured_logs().contains(&key_body),
        "the key reached the log"
    );

    // Another certificate's key, an expired certificate: refused, the stored one kept.
    let (_, other_key) = dirsync_entra_emulator::generate_certificate("other").unwrap();
    let r = upload(
        &app,
        &json!({"certificate_pem": cert_pem, "private_key_pem": other_key}),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code()),
        (422, "certificate_key_mismatch")
    );
    assert_eq!(r.json["error"]["details"]["field"], "private_key_pem");
    let r = upload(
        &app,
        &json!({"certificate_pem": expired_certificate(&key), "private_key_pem": key}),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (422, "certificate_expired"));
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2000-12-31"),
        "{}",
        r.text
    );
    // Not a certificate, not a key, an encrypted key.
    for (body, code, field) in [
        (
            json!({"certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "private_key_pem": key}),
            "invalid_certificate",
            "certificate_pem",
        ),
        (
            json!({"certificate_pem": cert_pem, "private_key_pem": cert_pem}),
            "invalid_private_key",
            "private_key_pem",
        ),
        (
            json!({"certificate_pem": cert_pem, "private_key_pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"}),
            "invalid_private_key",
            "private_key_pem",
        ),
    ] {
        let r = upload(&app, &body).await;
        assert_eq!((r.status, r.error_code()), (422, code), "{}", r.text);
        assert_eq!(r.json["error"]["details"]["field"], field);
    }
    let after = config_row(&app).await;
    assert_eq!(after.entra_thumbprint.as_deref(), Some(thumbprint.as_str()));
    assert_eq!(after.entra_secret, Some(sealed));

    // A client secret replaces the certificate, and with it the thumbprint.
    let r = upload(&app, &json!({"client_secret": "abc~DEF123"}))
        .await
        .expect(200);
    assert_eq!(
        r.json["entra_credential"],
        json!({"kind": "client_secret", "thumbprint": null})
    );
    let row = config_row(&app).await;
    assert!(row.entra_certificate_pem.is_none() && row.entra_thumbprint.is_none());
}

#[tokio::test]
async fn exactly_one_form_of_credential_is_accepted_and_only_from_an_admin() {
    let app = spawn_app().await;
    app.get("/api/v1/directory").await.expect(200);
    let (cert, key) = dirsync_entra_emulator::generate_certificate("dirsync").unwrap();
    let cases = [
        json!({}),
        json!({"client_secret": "abc~DEF", "certificate_pem": cert.pem(), "private_key_pem": key}),
        json!({"client_secret": "abc~DEF", "private_key_pem": key}),
        json!({"certificate_pem": cert.pem()}),
        json!({"private_key_pem": key}),
    ];
    for body in cases {
        let r = upload(&app, &body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (422, "invalid_entra_credential"),
            "{body}: {}",
            r.text
        );
    }
    // An unknown field is a mistake too (a PKCS#12 upload is not read).
    let r = upload(&app, &json!({"pfx": "MIIK", "client_secret": "abc~DEF"})).await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));
    assert!(config_row(&app).await.entra_secret.is_none());

    for role in ["operator", "reader"] {
        let token = app.api_key(role).await;
        let r = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/directory/entra-credential",
                Some(&token),
                Some(&json!({"client_secret": "abc~DEF"})),
            )
            .await;
        assert_eq!((r.status, r.error_code()), (403, "forbidden"), "{role}");
        let r = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/directory",
                Some(&token),
                Some(&entra_settings()),
            )
            .await;
        assert_eq!((r.status, r.error_code()), (403, "forbidden"), "{role}");
    }
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/directory/entra-credential",
            None,
            Some(&json!({"client_secret": "abc~DEF"})),
        )
        .await;
    assert_eq!(r.status, 401);
    let row = config_row(&app).await;
    assert!(row.entra_secret.is_none() && row.tenant_id.is_none());
}

#[tokio::test]
async fn switching_provider_is_refused_while_directory_users_exist_and_then_forgets_the_old_one() {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    let env = spawn_with_google(d).await;
    let app = &env.app;
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(dirsync_entity::directory_state::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .is_some());

    let r = app.put("/api/v1/directory", &entra_settings()).await;
    assert_eq!(
        (r.status, r.error_code()),
        (409, "provider_switch_blocked"),
        "{}",
        r.text
    );
    let synced = app
        .get("/api/v1/users?auth_method=directory")
        .await
        .expect(200)
        .json["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(synced >= 1);
    assert_eq!(r.json["error"]["details"]["directory_users"], synced);
    assert_eq!(r.json["error"]["details"]["from"], "google_workspace");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("delete those users")
            && message.contains("Keep provider google_workspace"),
        "{message}"
    );
    // Leaving Google for no directory would lose where those users came from: refused too.
    let r = app
        .put("/api/v1/directory", &json!({"provider": "none"}))
        .await;
    assert_eq!((r.status, r.error_code()), (409, "provider_switch_blocked"));
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(got.json["provider"], "google_workspace");
    assert!(got.json["service_account"].is_object());
    // Saving Google's settings again is no switch.
    env.configure(json!({"schedule_minutes": 60}))
        .await
        .expect(200);

    // An installation that left Google for `none` before Entra existed (its users kept) may go
    // back to Google, not on to Entra.
    let row = config_row(app).await;
    let mut am: directory_config::ActiveModel = row.into();
    am.provider = Set(dirsync_core::directory::Provider::None);
    am.update(&app.db).await.unwrap();
    let r = app.put("/api/v1/directory", &entra_settings()).await;
    assert_eq!((r.status, r.error_code()), (409, "provider_switch_blocked"));
    env.configure(json!({})).await.expect(200);

    // Without directory users the switch goes through, and forgets Google: its key and the
    // incremental state; the Entra credential uploaded for it stays.
    let users = app
        .get("/api/v1/users?auth_method=directory")
        .await
        .expect(200);
    for u in users.json["items"].as_array().unwrap() {
        let id = u["id"].as_str().unwrap();
        let r = app.delete(&format!("/api/v1/users/{id}")).await;
        assert!(r.status < 300, "{}", r.text);
    }
    // The Entra credential may wait for the switch.
    upload(app, &json!({"client_secret": "abc~DEF123"}))
        .await
        .expect(200);
    let r = app
        .put("/api/v1/directory", &entra_settings())
        .await
        .expect(200);
    assert_eq!(r.json["provider"], "microsoft_entra");
    assert!(r.json["service_account"].is_null(), "{}", r.text);
    assert_eq!(r.json["entra_credential"]["kind"], "client_secret");
    assert!(r.json["incremental"]["cursor"].is_null());
    let row = config_row(app).await;
    assert!(row.sa_private_key.is_none() && row.sa_client_email.is_none());
    assert!(row.admin_email.is_none() && row.customer_id.is_none());
    assert!(dirsync_entity::directory_state::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .is_none());
    let audit = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    assert!(audit.text.contains("provider_switch"), "{}", audit.text);

    // And back: Entra's credential is forgotten in turn.
    env.upload_key(&env.google.service_account_key_json())
        .await
        .expect(200);
    let r = env.configure(json!({})).await.expect(200);
    assert_eq!(r.json["provider"], "google_workspace");
    assert!(r.json["entra_credential"].is_null() && r.json["tenant_id"].is_null());
    let row = config_row(app).await;
    assert!(row.entra_secret.is_none() && row.entra_credential_kind.is_none());
    assert!(r.json["service_account"].is_object());
}

#[tokio::test]
async fn switching_provider_is_refused_while_a_sync_job_is_queued_or_running() {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    let env = spawn_with_google(d).await;
    let app = &env.app;
    // A slow Google keeps the job running while the switch is tried; nobody is synced yet, so
    // only the job stands in the way.
    env.google
        .control()
        .set_latency(std::time::Duration::from_secs(2));
    let started = app
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await
        .expect(202);
    let id = started.json["id"].as_str().unwrap().to_string();

    let r = app.put("/api/v1/directory", &entra_settings()).await;
    assert_eq!(
        (r.status, r.error_code()),
        (409, "sync_in_progress"),
        "{}",
        r.text
    );
    assert_eq!(r.json["error"]["details"]["job_id"], id.as_str());
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("then switch provider"),
        "{}",
        r.text
    );
    let got = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(got.json["provider"], "google_workspace");
    assert!(got.json["service_account"].is_object(), "{}", got.text);

    // Cancelled and ended (it wrote nobody), the job no longer stands in the way.
    app.post(&format!("/api/v1/sync-jobs/{id}/cancel"), &json!({}))
        .await
        .expect(200);
    let job = app.wait(&id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    env.google.control().set_latency(std::time::Duration::ZERO);
    let r = app
        .put("/api/v1/directory", &entra_settings())
        .await
        .expect(200);
    assert_eq!(r.json["provider"], "microsoft_entra");
}
