//! ID-token validation, done by hand on top of one signature check so that every refusal has
//! its own reason: RS256 only (`none` and HS256 — the algorithm-confusion attack with the public
//! key — are refused before any key is used), the key by `kid` from the provider's JWKS, `iss`
//! (Google's, or exactly the Entra tenant's, with `tid` the tenant), `aud` (exactly the client
//! id: an extra audience is not trusted), `azp`, `exp`/`nbf`/`iat` with a small leeway, `nonce`,
//! `at_hash`. The same checks for every provider: only the issuer rule differs.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::provider::{IdpKind, KeyError, OidcProvider};

/// The issuers Google signs as.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 120;

/// What a valid ID token says about the user.
#[derive(Debug, Clone)]
pub struct IdClaims {
    /// The subject: Google's user id (= the Directory API `id`); at Microsoft a pairwise id,
    /// different per application, never used to find a user.
    pub sub: String,
    /// Microsoft: the user's object id in the tenant (= the Graph `id`), which finds the user.
    pub oid: Option<String>,
    /// The address, if the `email` scope was granted.
    pub email: Option<String>,
    /// Whether Google verified the address (`true` or the legacy string `"true"`).
    pub email_verified: bool,
    /// The Workspace domain; absent for consumer accounts.
    pub hd: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Microsoft's `preferred_username` (usually the UPN): shown in messages, never matched.
    pub username: Option<String>,
}

/// Who must have issued the token.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Issuer<'a> {
    /// Google ([`GOOGLE_ISSUERS`]).
    Google,
    /// Exactly `iss`, with the claim `tid` exactly `tenant` (Microsoft's tenant GUID).
    Tenant { iss: &'a str, tenant: &'a str },
}

/// What the token must match.
pub(crate) struct Expected<'a> {
    pub issuer: Issuer<'a>,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub access_token: Option<&'a str>,
}

fn rejected(kind: IdpKind, reason: &'static str, message: impl Into<String>) -> crate::Error {
    crate::Error::unauthenticated(
        reason,
        format!(
            "{}'s ID token was refused: {}; start the sign-in again",
            kind.name(),
            message.into()
        ),
    )
}

fn segment(s: &str) -> Option<Value> {
    let raw = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&raw)
        .ok()
        .filter(Value::is_object)
}

/// Validates `token`; the error code names the check that failed.
pub(crate) async fn verify(
    provider: &OidcProvider,
    token: &str,
    expected: Expected<'_>,
) -> Result<IdClaims, crate::Error> {
    let kind = provider.kind();
    let name = kind.name();
    let rejected = |reason, message: &str| rejected(kind, reason, message);
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err(rejected(
            "malformed_id_token",
            "it is not a JWS in compact form",
        ));
    };
    let header =
        segment(h).ok_or_else(|| rejected("malformed_id_token", "its header does not decode"))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" {
        return Err(rejected(
            "unsupported_alg",
            &format!("it is signed with {alg:?}; only RS256 is accepted"),
        ));
    }
    let kid = header["kid"]
        .as_str()
        .ok_or_else(|| rejected("unknown_kid", "its header names no key (kid)"))?;
    let key = match provider.decoding_key(kid).await {
        Ok(k) => k,
        Err(KeyError::Unknown) => {
            return Err(rejected(
                "unknown_kid",
                &format!("it is signed with a key {name} does not publish"),
            ))
        }
        Err(KeyError::RecentlyFetched { retry_in }) => {
            return Err(crate::Error::unauthenticated(
                "unknown_kid",
                format!(
                    "{name}'s ID token is signed with a key (kid) that was not among {name}'s \
                     keys when they were fetched moments ago; if {name} has just rotated its \
                     keys, retry the sign-in in {} seconds",
                    (retry_in.as_millis() as u64).div_ceil(1000).max(1)
                ),
            ))
        }
        Err(KeyError::Unavailable(e)) => return Err(e),
    };
    let signed = format!("{h}.{c}");
    let good =
        jsonwebtoken::crypto::verify(s, signed.as_bytes(), &key, Algorithm::RS256).unwrap_or(false);
    if !good {
        return Err(rejected("bad_signature", "its signature does not verify"));
    }
    let claims =
        segment(c).ok_or_else(|| rejected("malformed_id_token", "its claims do not decode"))?;
    check_claims(kind, &claims, &expected, chrono::Utc::now().timestamp())
}

fn check_claims(
    kind: IdpKind,
    claims: &Value,
    expected: &Expected<'_>,
    now: i64,
) -> Result<IdClaims, crate::Error> {
    let rejected = |reason, message: &str| rejected(kind, reason, message);
    let iss = claims["iss"].as_str().unwrap_or_default();
    match expected.issuer {
        Issuer::Google => {
            if !GOOGLE_ISSUERS.contains(&iss) {
                return Err(rejected(
                    "wrong_issuer",
                    &format!("its issuer {iss:?} is not Google"),
                ));
            }
        }
        Issuer::Tenant { iss: want, tenant } => {
            // Exactly the tenant's issuer: not the login URL's host, not the `{tenantid}`
            // template, not a v1.0 `sts.windows.net` issuer.
            if iss != want {
                return Err(rejected(
                    "wrong_issuer",
                    &format!("its issuer {iss:?} is not the configured tenant's ({want:?})"),
                ));
            }
            // The tenant the user belongs to: a user of another tenant is nobody here, even
            // with an object id that happens to be known.
            let tid = claims["tid"].as_str().unwrap_or_default();
            if tid.is_empty() || !tid.eq_ignore_ascii_case(tenant) {
                return Err(rejected(
                    "wrong_tenant",
                    &format!(
                        "it is for the tenant {tid:?}, not the configured tenant {tenant:?} (tid)"
                    ),
                ));
            }
        }
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(rejected(
            "wrong_audience",
            "it was issued to another application (aud)",
        ));
    }
    if audiences.iter().any(|a| *a != expected.client_id) {
        return Err(rejected(
            "untrusted_audience",
            "it is also addressed to another application (aud)",
        ));
    }
    if let Some(azp) = claims.get("azp") {
        if azp.as_str() != Some(expected.client_id) {
            return Err(rejected(
                "wrong_azp",
                "it was requested by another application (azp)",
            ));
        }
    }
    let (Some(exp), Some(iat)) = (claims["exp"].as_i64(), claims["iat"].as_i64()) else {
        return Err(rejected("missing_claim", "it lacks exp or iat"));
    };
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(rejected("expired", "it has expired (exp)"));
    }
    if let Some(nbf) = claims.get("nbf") {
        let Some(nbf) = nbf.as_i64() else {
            return Err(rejected("malformed_id_token", "its nbf is not a time"));
        };
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(rejected(
                "not_yet_valid",
                "it is not valid yet (nbf); check this server's clock",
            ));
        }
    }
    if iat > now.saturating_add(LEEWAY_SECS) {
        return Err(rejected(
            "issued_in_future",
            "it claims to be issued in the future (iat); check this server's clock",
        ));
    }
    let nonce = claims["nonce"].as_str().unwrap_or_default();
    if nonce.is_empty() || !bool::from(nonce.as_bytes().ct_eq(expected.nonce.as_bytes())) {
        return Err(rejected(
            "nonce_mismatch",
            "its nonce does not belong to this sign-in",
        ));
    }
    if let (Some(at_hash), Some(access_token)) = (claims["at_hash"].as_str(), expected.access_token)
    {
        let digest = Sha256::digest(access_token.as_bytes());
        if URL_SAFE_NO_PAD.encode(&digest[..16]) != at_hash.trim_end_matches('=') {
            return Err(rejected(
                "at_hash_mismatch",
                "it does not belong to the access token it came with (at_hash)",
            ));
        }
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if sub.is_empty() {
        return Err(rejected("missing_claim", "it names no user (sub)"));
    }
    let email_verified = match &claims["email_verified"] {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    };
    let text = |k: &str| claims[k].as_str().map(str::to_string);
    Ok(IdClaims {
        sub: sub.to_string(),
        oid: text("oid").filter(|o| !o.is_empty()),
        email: text("email"),
        email_verified,
        hd: text("hd"),
        name: text("name"),
        username: text("preferred_username"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn good() -> Value {
        json!({"iss": "https://accounts.google.com", "aud": "cid", "azp": "cid", "sub": "42",
               "iat": NOW, "exp": NOW + 3600, "nonce": "n", "email": "a@example.com",
               "email_verified": true, "hd": "example.com"})
    }

    fn check(patch: Value) -> Result<IdClaims, &'static str> {
        let mut c = good();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let e = Expected {
            issuer: Issuer::Google,
            client_id: "cid",
            nonce: "n",
            access_token: None,
        };
        check_claims(IdpKind::Google, &c, &e, NOW).map_err(|e| e.code())
    }

    #[test]
    fn each_claim_rule_has_its_reason() {
        assert!(check(json!({})).is_ok());
        assert!(check(json!({"iss": "accounts.google.com"})).is_ok());
        assert!(check(json!({"azp": null})).is_ok());
        assert!(check(json!({"aud": ["cid"]})).is_ok());
        assert!(
            check(json!({"email_verified": "true"}))
                .unwrap()
                .email_verified
        );
        assert!(
            !check(json!({"email_verified": "false"}))
                .unwrap()
                .email_verified
        );
        assert!(
            !check(json!({"email_verified": null}))
                .unwrap()
                .email_verified
        );
        assert!(check(json!({"exp": NOW - 60})).is_ok(), "within leeway");
        for (patch, reason) in [
            (
                json!({"iss": "https://accounts.google.com.evil"}),
                "wrong_issuer",
            ),
            (json!({"iss": null}), "wrong_issuer"),
            (json!({"aud": "other"}), "wrong_audience"),
            (json!({"aud": ["cid", "other"]}), "untrusted_audience"),
            (json!({"aud": null}), "wrong_audience"),
            (json!({"azp": "other"}), "wrong_azp"),
            (json!({"exp": NOW - 3600}), "expired"),
            (json!({"iat": NOW + 3600}), "issued_in_future"),
            (json!({"exp": null}), "missing_claim"),
            (json!({"nonce": null}), "nonce_mismatch"),
            (json!({"nonce": "m"}), "nonce_mismatch"),
            (json!({"sub": ""}), "missing_claim"),
        ] {
            assert_eq!(check(patch.clone()).err(), Some(reason), "{patch}");
        }
    }

    #[test]
    fn microsoft_tokens_need_the_tenants_exact_issuer_and_tid() {
        const TID: &str = "9122040d-6c67-4c5b-b112-36a304b66dad";
        let iss = format!("https://login.microsoftonline.com/{TID}/v2.0");
        let check = |patch: Value| {
            let mut c = json!({"iss": iss, "tid": TID, "aud": "cid", "sub": "pairwise",
                "oid": "00000000-0000-0000-66f3-3332eca7ea81", "iat": NOW, "nbf": NOW,
                "exp": NOW + 3600, "nonce": "n"});
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            let e = Expected {
                issuer: Issuer::Tenant {
                    iss: &iss,
                    tenant: TID,
                },
                client_id: "cid",
                nonce: "n",
                access_token: None,
            };
            check_claims(IdpKind::Microsoft, &c, &e, NOW).map_err(|e| e.code())
        };
        let ok = check(json!({})).unwrap();
        assert_eq!(
            ok.oid.as_deref(),
            Some("00000000-0000-0000-66f3-3332eca7ea81")
        );
        assert!(check(json!({"tid": TID.to_uppercase()})).is_ok());
        assert!(check(json!({"nbf": NOW + 60})).is_ok(), "within leeway");
        let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        for (patch, reason) in [
            (
                json!({"iss": "https://login.microsoftonline.com/{tenantid}/v2.0"}),
                "wrong_issuer",
            ),
            (
                json!({"iss": format!("https://sts.windows.net/{TID}/")}),
                "wrong_issuer",
            ),
            (
                json!({"iss": format!("http://127.0.0.1:9/{TID}/v2.0")}),
                "wrong_issuer",
            ),
            (
                json!({"iss": format!("https://login.microsoftonline.com/{other}/v2.0")}),
                "wrong_issuer",
            ),
            (json!({"iss": null}), "wrong_issuer"),
            (json!({"tid": other}), "wrong_tenant"),
            (json!({"tid": null}), "wrong_tenant"),
            (json!({"nbf": NOW + 3600}), "not_yet_valid"),
            (json!({"nbf": "soon"}), "malformed_id_token"),
            (json!({"aud": "other"}), "wrong_audience"),
            (json!({"nonce": "m"}), "nonce_mismatch"),
        ] {
            assert_eq!(check(patch.clone()).err(), Some(reason), "{patch}");
        }
    }

    #[test]
    fn at_hash_binds_the_access_token() {
        let digest = Sha256::digest(b"ya29.token");
        let mut c = good();
        c["at_hash"] = json!(URL_SAFE_NO_PAD.encode(&digest[..16]));
        let e = |t| Expected {
            issuer: Issuer::Google,
            client_id: "cid",
            nonce: "n",
            access_token: Some(t),
        };
        assert!(check_claims(IdpKind::Google, &c, &e("ya29.token"), NOW).is_ok());
        assert_eq!(
            check_claims(IdpKind::Google, &c, &e("ya29.other"), NOW)
                .err()
                .map(|e| e.code()),
            Some("at_hash_mismatch")
        );
    }
}

/// Fuzzing of the validator: any token text and any claims give a value or a refusal, never a
/// panic, and nothing but a well-formed RS256 token with Google's issuer and our audience passes
/// the claim checks.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![
                Just("https://accounts.google.com".to_string()),
                Just("cid".to_string()),
                Just("n".to_string()),
                ".{0,24}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    fn claims() -> impl Strategy<Value = Value> {
        let names = [
            "iss",
            "aud",
            "azp",
            "exp",
            "iat",
            "nonce",
            "sub",
            "email",
            "email_verified",
            "hd",
            "at_hash",
            "name",
        ];
        proptest::collection::vec(
            (proptest::sample::select(names.to_vec()), any_json()),
            0..12,
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn claim_checks_never_panic(c in claims(), now in any::<i64>()) {
            let expected = Expected { issuer: Issuer::Google, client_id: "cid", nonce: "n", access_token: Some("at") };
            if check_claims(IdpKind::Google, &c, &expected, now).is_ok() {
                prop_assert!(GOOGLE_ISSUERS.contains(&c["iss"].as_str().unwrap()));
                prop_assert_eq!(&c["nonce"], &json!("n"));
            }
        }

        #[test]
        fn time_checks_never_overflow(
            exp in prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>()],
            iat in prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>()],
            now in prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>()],
        ) {
            let c = json!({"iss": "https://accounts.google.com", "aud": "cid", "exp": exp,
                "iat": iat, "nonce": "n", "sub": "1"});
            let expected = Expected { issuer: Issuer::Google, client_id: "cid", nonce: "n", access_token: None };
            let _ = check_claims(IdpKind::Google, &c, &expected, now);
        }

        #[test]
        fn token_parsing_never_panics(
            raw in ".{0,200}",
            header in proptest::option::of(any_json()),
            c in claims(),
            sig in "[A-Za-z0-9_-]{0,40}",
        ) {
            let google = OidcProvider::google("http://127.0.0.1:9/.well-known/openid-configuration");
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let expected = || Expected { issuer: Issuer::Google, client_id: "cid", nonce: "n", access_token: None };
            // Arbitrary text, and structured tokens with arbitrary headers and claims.
            prop_assert!(rt.block_on(verify(&google, &raw, expected())).is_err());
            let h = header.unwrap_or_else(|| json!({"alg": "RS256", "kid": "k"}));
            let token = format!("{}.{}.{}", b64(&h), b64(&c), sig);
            prop_assert!(rt.block_on(verify(&google, &token, expected())).is_err());
        }
    }
}
