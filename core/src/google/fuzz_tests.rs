//! Property-based fuzzing of what dirsync parses from outside: key files uploaded by
//! administrators and Google's list responses. Any input must give a value or an error, never a
//! panic. (`cargo fuzz` needs a nightly toolchain, which this project's machines cannot fetch;
//! proptest runs on stable, in the ordinary test suite, for a bounded number of cases.)

use proptest::prelude::*;
use serde_json::{json, Value};

use super::model::{GroupsPage, MembersPage, UsersPage, WirePage};
use super::ServiceAccountKey;

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map("[a-zA-Z_]{0,16}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object using the real field names with arbitrary values.
fn keyish_json() -> impl Strategy<Value = Value> {
    let fields = [
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "token_uri",
        "universe_domain",
        "users",
        "groups",
        "members",
        "nextPageToken",
        "primaryEmail",
        "id",
        "name",
        "emails",
        "aliases",
        "directMembersCount",
    ];
    proptest::collection::vec(
        (proptest::sample::select(fields.to_vec()), any_json()),
        0..10,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn parse_pages(bytes: &[u8]) {
    if let Ok(p) = serde_json::from_slice::<UsersPage>(bytes) {
        let (users, _) = p.split();
        for u in users {
            let _ = (u.all_addresses(), u.is_disabled());
        }
    }
    if let Ok(p) = serde_json::from_slice::<GroupsPage>(bytes) {
        let _ = p.split();
    }
    if let Ok(p) = serde_json::from_slice::<MembersPage>(bytes) {
        let _ = p.split();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn key_file_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ServiceAccountKey::parse(&bytes);
    }

    #[test]
    fn key_file_parser_never_panics_on_json(v in keyish_json()) {
        let parsed = ServiceAccountKey::parse(v.to_string().as_bytes());
        // Only a real service-account key with a loadable RSA key is ever accepted.
        if parsed.is_ok() {
            prop_assert_eq!(&v["type"], &json!("service_account"));
        }
    }

    #[test]
    fn list_parsers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_pages(&bytes);
    }

    #[test]
    fn list_parsers_never_panic_on_json(v in prop_oneof![any_json(), keyish_json()]) {
        parse_pages(v.to_string().as_bytes());
    }

    #[test]
    fn list_parsers_never_panic_on_mutated_pages(
        users in proptest::collection::vec(keyish_json(), 0..5),
        token in proptest::option::of(any_json()),
        cut in any::<usize>(),
    ) {
        let page = json!({"kind": "admin#directory#users", "users": users, "nextPageToken": token});
        let text = page.to_string();
        parse_pages(text.as_bytes());
        // and every truncation of it, as a cut-off response would be
        let at = cut % (text.len() + 1);
        parse_pages(&text.as_bytes()[..at]);
    }
}
