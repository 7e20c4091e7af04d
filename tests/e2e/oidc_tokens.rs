//! Forged and broken ID tokens, one test each: the emulator tampers with the next token it
//! issues, and the sign-in must be refused with the reason — no session.

use dirsync_google_emulator::{Endpoint, IdTokenTamper};
use dirsync_tests::oidc::{directory, spawn_with_oidc, OidcEnv};
use serde_json::json;

async fn env() -> OidcEnv {
    spawn_with_oidc(directory()).await
}

/// Signs ada in with the next ID token tampered; expects a 401 with `code` and no session.
async fn refused_with(tamper: IdTokenTamper, code: &str) -> OidcEnv {
    let o = env().await;
    o.env.google.control().tamper_next_id_token(tamper);
    let r = o.sign_in("ada@example.com").await;
    assert_eq!(r.status, 401, "{tamper:?}: {}", r.text);
    assert_eq!(r.error_code(), code, "{tamper:?}: {}", r.text);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ID token was refused"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("eyJ"), "no token in the answer");
    assert_eq!(o.session_count().await, 0, "{tamper:?}: no session");
    // The next, untampered, sign-in works.
    o.sign_in("ada@example.com").await.expect(200);
    o
}

#[tokio::test]
async fn alg_none_is_refused() {
    refused_with(IdTokenTamper::AlgNone, "unsupported_alg").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    refused_with(IdTokenTamper::Hs256WithPublicKey, "unsupported_alg").await;
}

#[tokio::test]
async fn a_flipped_signature_byte_is_refused() {
    refused_with(IdTokenTamper::FlipSignatureByte, "bad_signature").await;
}

#[tokio::test]
async fn a_key_not_in_the_jwks_is_refused_after_one_refetch() {
    let o = env().await;
    let c = o.env.google.control();
    o.sign_in("bob@example.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 1);
    c.tamper_next_id_token(IdTokenTamper::UnknownKid);
    let r = o.sign_in("ada@example.com").await.expect(401);
    assert_eq!(r.error_code(), "unknown_kid");
    assert_eq!(c.request_count(Endpoint::Jwks), 2, "one refetch");
    assert_eq!(o.session_count().await, 1);
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    refused_with(IdTokenTamper::WrongIssuer, "wrong_issuer").await;
}

#[tokio::test]
async fn the_legacy_issuer_is_accepted() {
    let o = env().await;
    o.env
        .google
        .control()
        .tamper_next_id_token(IdTokenTamper::LegacyIssuer);
    o.sign_in("ada@example.com").await.expect(200);
}

#[tokio::test]
async fn a_foreign_audience_is_refused() {
    refused_with(IdTokenTamper::ForeignAudience, "wrong_audience").await;
}

#[tokio::test]
async fn an_extra_untrusted_audience_is_refused() {
    refused_with(IdTokenTamper::ExtraAudience, "untrusted_audience").await;
}

#[tokio::test]
async fn a_wrong_azp_is_refused() {
    refused_with(IdTokenTamper::WrongAzp, "wrong_azp").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    refused_with(IdTokenTamper::Expired, "expired").await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    refused_with(IdTokenTamper::IssuedInFuture, "issued_in_future").await;
}

#[tokio::test]
async fn a_missing_nonce_is_refused() {
    refused_with(IdTokenTamper::NonceMissing, "nonce_mismatch").await;
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    refused_with(IdTokenTamper::NonceWrong, "nonce_mismatch").await;
}

#[tokio::test]
async fn a_legacy_string_email_verified_is_accepted() {
    let o = env().await;
    o.env
        .google
        .control()
        .tamper_next_id_token(IdTokenTamper::EmailVerifiedString);
    o.sign_in("ada@example.com").await.expect(200);
}

#[tokio::test]
async fn claims_changed_after_signing_break_the_signature_or_at_hash() {
    let o = env().await;
    let c = o.env.google.control();
    // Signed correctly, but bound to another access token.
    c.next_id_token_override(|claims, _| claims["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA"));
    let r = o.sign_in("ada@example.com").await.expect(401);
    assert_eq!(r.error_code(), "at_hash_mismatch");
    // A sub of someone else, correctly signed, is that someone else: the override proves the
    // user is found by sub, not by the e-mail claim.
    let bob_id = o.user("bob@example.com").await.directory_id.unwrap();
    c.next_id_token_override(move |claims, _| claims["sub"] = json!(bob_id));
    let r = o.sign_in("ada@example.com").await.expect(200);
    assert_eq!(r.json["user"]["user_name"], "bob@example.com");
}
