//! The Graph client against the Entra emulator, in-process: tokens (secret and certificate),
//! paging, the mapping end to end, members, re-reads, throttling, listings cut short, and every
//! diagnostic of the connection test.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dirsync_entra_emulator::{
    generate_certificate, AppCredentials, Directory, Emulator, EmulatorOptions, Endpoint, FailSpec,
};
use secrecy::SecretString;

use super::*;
use crate::provider::DirectoryProvider;
use crate::sync::snapshot::Edge;

const TENANT: &str = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";

pub(super) fn access(emu: &Emulator) -> EntraAccess {
    EntraAccess {
        login_url: emu.base_url(),
        graph_url: emu.base_url(),
        metrics: crate::metrics::Metrics::new(),
        outbound: crate::outbound::Outbound::default(),
        tokens: TokenCache::new(),
    }
}

pub(super) fn secret_config(app: &AppCredentials) -> EntraConfig {
    EntraConfig {
        tenant_id: app.tenant_id.clone(),
        client_id: app.client_id.clone(),
        credential: Credential::ClientSecret(SecretString::from(app.client_secret.clone())),
        include_guests: false,
    }
}

fn cert_config(app: &AppCredentials) -> EntraConfig {
    EntraConfig {
        credential: Credential::Certificate {
            certificate_pem: app.certificate_pem.clone().expect("a certificate"),
            private_key_pem: SecretString::from(app.private_key_pem.clone().expect("a key")),
        },
        ..secret_config(app)
    }
}

/// Retries in milliseconds, so that tests of exhausted retries stay quick.
pub(super) fn fast() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            token_max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    }
}

pub(super) fn client(emu: &Emulator, config: EntraConfig) -> GraphClient {
    GraphClient::with_options(config, &access(emu), fast()).unwrap()
}

pub(super) async fn start(directory: Directory) -> Emulator {
    Emulator::start(EmulatorOptions::with_directory(directory))
        .await
        .unwrap()
}

/// A small tenant with every oddity the mapping handles, groups nested in a cycle, and a group
/// without an address.
fn fixture() -> Directory {
    Directory::from_json(&format!(
        r#"{{
        "tenant": {{"id": "{TENANT}", "displayName": "Contoso", "domains": ["contoso.com", "contoso.onmicrosoft.com"]}},
        "users": [
          {{"id": "00000000-0000-0000-0000-00000000000a", "userPrincipalName": "ann@contoso.com",
            "mail": "Ann.Lee@contoso.com", "displayName": "Ann Lee",
            "proxyAddresses": ["smtp:ann@contoso.onmicrosoft.com", "SMTP:Ann.Lee@contoso.com",
                               "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=ann",
                               "SIP:ann@contoso.com", "smtp:ANN.LEE@contoso.com", "smtp:al@contoso.com"],
            "otherMails": ["ann@gmail.com"]}},
          {{"id": "00000000-0000-0000-0000-00000000000b", "userPrincipalName": "bob@contoso.com",
            "mail": "robert@contoso.com", "displayName": "Bob", "accountEnabled": false}},
          {{"id": "00000000-0000-0000-0000-00000000000c", "userPrincipalName": "carl@contoso.com",
            "displayName": "Carl, no mailbox"}},
          {{"id": "00000000-0000-0000-0000-00000000000d", "userPrincipalName": "gail_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "mail": "gail@fabrikam.com", "displayName": "Gail Guest", "userType": "Guest"}}
        ],
        "groups": [
          {{"id": "00000000-0000-0000-0000-0000000000f1", "displayName": "Staff", "mail": "Staff@Contoso.com",
            "mailEnabled": true, "members": ["ann@contoso.com", "team@contoso.com"]}},
          {{"id": "00000000-0000-0000-0000-0000000000f2", "displayName": "Team", "mail": "team@contoso.com",
            "mailEnabled": true, "members": ["bob@contoso.com", "Staff@Contoso.com", "gail_fabrikam.com#EXT#@contoso.onmicrosoft.com"]}},
          {{"id": "00000000-0000-0000-0000-0000000000f3", "displayName": "Security only",
            "members": ["carl@contoso.com"]}}
        ]
      }}"#
    ))
    .unwrap()
}

async fn all_users(c: &GraphClient) -> (Vec<crate::sync::plan::RemoteUser>, bool, usize) {
    let mut pages = c.user_pages();
    let mut users = Vec::new();
    let mut n = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        n += 1;
        users.extend(page);
    }
    (users, pages.is_complete(), n)
}

#[tokio::test]
async fn a_token_is_obtained_with_a_secret_or_a_certificate_and_cached_across_clients() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let shared = access(&emu);
    for config in [secret_config(&app), cert_config(&app)] {
        emu.control().reset_counts();
        let a = GraphClient::with_options(config.clone(), &shared, fast()).unwrap();
        let b = GraphClient::with_options(config, &shared, fast()).unwrap();
        let (users, complete, _) = all_users(&a).await;
        assert!(complete);
        assert_eq!(users.len(), 3);
        let (users, _, _) = all_users(&b).await;
        assert_eq!(users.len(), 3);
        assert_eq!(
            emu.control().request_count(Endpoint::Token),
            1,
            "one token for both clients of the same access and credential"
        );
    }
    // Both credentials were counted, the way Google's requests are.
    let metrics = shared.metrics.render();
    assert!(
        metrics.contains(r#"dirsync_microsoft_requests_total{endpoint="token",status="200"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"dirsync_microsoft_requests_total{endpoint="users.list",status="200"} 4"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_is_replaced_shortly_before_it_expires() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    // Two seconds: replaced after half its lifetime (the margin is at most 5 minutes, at most
    // half the lifetime).
    emu.control().set_token_lifetime(2);
    let c = client(&emu, secret_config(&app));
    all_users(&c).await;
    all_users(&c).await;
    assert_eq!(emu.control().request_count(Endpoint::Token), 1, "cached");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (users, complete, _) = all_users(&c).await;
    assert!(complete);
    assert_eq!(users.len(), 3);
    assert_eq!(
        emu.control().request_count(Endpoint::Token),
        2,
        "replaced before it expired"
    );
    assert_eq!(
        emu.control().request_count(Endpoint::UsersList),
        3,
        "no request was refused for an expired token"
    );
}

#[tokio::test]
async fn a_token_rejected_by_graph_is_replaced_once() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let c = client(&emu, secret_config(&app));
    assert_eq!(all_users(&c).await.0.len(), 3);
    emu.control().expire_tokens();
    assert_eq!(all_users(&c).await.0.len(), 3);
    assert_eq!(emu.control().request_count(Endpoint::Token), 2);
}

#[tokio::test]
async fn every_user_is_read_through_pages_of_999() {
    let dir = Directory::generate(2500, 3, 7);
    let expected: HashSet<String> = dir
        .users()
        .filter(|u| u.user_type == dirsync_entra_emulator::UserType::Member)
        .map(|u| u.id.clone())
        .collect();
    let total = dir.users().count();
    assert!(expected.len() < total, "the generated tenant has guests");
    let emu = start(dir).await;
    let app = emu.control().default_app();

    let (users, complete, pages) = all_users(&client(&emu, secret_config(&app))).await;
    assert!(complete);
    assert_eq!(pages, 3);
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 3);
    let ids: HashSet<String> = users.iter().map(|u| u.id.as_str().to_string()).collect();
    assert_eq!(ids.len(), users.len(), "nobody twice");
    assert_eq!(ids, expected, "every member, no guest");

    let with_guests = EntraConfig {
        include_guests: true,
        ..secret_config(&app)
    };
    let (users, complete, _) = all_users(&client(&emu, with_guests)).await;
    assert!(complete);
    assert_eq!(users.len(), total);
}

#[tokio::test]
async fn users_are_mapped_as_product_md_says() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let (users, _, _) = all_users(&client(&emu, secret_config(&app))).await;
    let by_upn = |upn: &str| {
        users
            .iter()
            .find(|u| u.user_name.as_deref() == Some(upn))
            .unwrap_or_else(|| panic!("{upn} listed"))
    };

    let ann = by_upn("ann@contoso.com");
    assert_eq!(ann.id.as_str(), "00000000-0000-0000-0000-00000000000a");
    assert_eq!(ann.primary_email, "Ann.Lee@contoso.com");
    assert_eq!(
        ann.addresses,
        [
            "Ann.Lee@contoso.com",
            "ann@contoso.onmicrosoft.com",
            "al@contoso.com"
        ],
        "smtp aliases only: no X500, SIP, otherMails, nor the primary again"
    );
    assert_eq!(ann.full_name, "Ann Lee");
    assert!(!ann.disabled);

    let bob = by_upn("bob@contoso.com");
    assert!(bob.disabled, "accountEnabled false");
    assert_eq!(
        bob.primary_email, "robert@contoso.com",
        "mail without proxies"
    );

    let carl = by_upn("carl@contoso.com");
    assert_eq!(
        carl.primary_email, "carl@contoso.com",
        "the UPN, lacking all else"
    );
    assert_eq!(carl.addresses, ["carl@contoso.com"]);

    assert!(
        !users.iter().any(|u| u.primary_email == "gail@fabrikam.com"),
        "guests are out unless included"
    );

    // A re-read by id gives what the listing gave.
    let c = client(&emu, secret_config(&app));
    let again = c.user_by_id(ann.id.as_str()).await.unwrap();
    assert_eq!(again.as_ref(), Some(ann));
}

#[tokio::test]
async fn a_guest_is_read_only_when_guests_are_included() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let gail = "00000000-0000-0000-0000-00000000000d";
    let without = client(&emu, secret_config(&app));
    assert_eq!(without.user_by_id(gail).await.unwrap(), None);

    let with = client(
        &emu,
        EntraConfig {
            include_guests: true,
            ..secret_config(&app)
        },
    );
    let g = with.user_by_id(gail).await.unwrap().expect("the guest");
    assert_eq!(g.primary_email, "gail@fabrikam.com");
    assert_eq!(
        g.user_name.as_deref(),
        Some("gail_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    );
    let (users, _, _) = all_users(&with).await;
    assert_eq!(users.len(), 4);
}

#[tokio::test]
async fn an_unknown_user_id_is_none_and_other_failures_are_errors() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let c = client(&emu, secret_config(&app));
    assert_eq!(
        c.user_by_id("11111111-2222-3333-4444-555555555555")
            .await
            .unwrap(),
        None
    );
    // Deleted users are gone too.
    emu.control()
        .delete_user("00000000-0000-0000-0000-00000000000c")
        .unwrap();
    assert_eq!(
        c.user_by_id("00000000-0000-0000-0000-00000000000c")
            .await
            .unwrap(),
        None
    );
    // A failure that is not "does not exist" must never read as a departure.
    emu.control().fail_requests(Endpoint::UsersGet, 503, 3);
    let e = c
        .user_by_id("00000000-0000-0000-0000-00000000000a")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "entra_unavailable");
}

#[tokio::test]
async fn group_members_follow_users_and_nested_groups() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let c = client(&emu, secret_config(&app));

    let staff = c
        .group_members("00000000-0000-0000-0000-0000000000f1")
        .await
        .unwrap();
    assert_eq!(
        staff.members,
        [
            Edge::User("00000000-0000-0000-0000-00000000000a".into()),
            Edge::Group("00000000-0000-0000-0000-0000000000f2".into()),
        ]
    );
    assert_eq!(
        staff.group_addresses,
        [(
            "00000000-0000-0000-0000-0000000000f2".to_string(),
            "team@contoso.com".to_string()
        )]
    );
    assert_eq!((staff.listed, staff.pages), (2, 1));

    let e = c
        .group_members("99999999-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");

    // Groups come with their id and their address lower-cased; one without an address has none.
    let mut pages = c.group_pages();
    let mut groups = Vec::new();
    while let Some(p) = pages.next_page().await.unwrap() {
        groups.extend(p);
    }
    assert!(pages.is_complete());
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    let emails: Vec<&str> = groups.iter().map(|g| g.email.as_str()).collect();
    assert_eq!(emails, ["staff@contoso.com", "team@contoso.com", ""]);

    let listed = c.list_groups().await.unwrap();
    let staff = listed.iter().find(|g| g.name == "Staff").unwrap();
    assert_eq!(staff.email.as_deref(), Some("Staff@Contoso.com"));
    let security = listed.iter().find(|g| g.name == "Security only").unwrap();
    assert_eq!(security.email, None);
}

#[tokio::test]
async fn the_engine_scopes_entra_sync_groups_through_nesting_and_cycles() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let c = client(
        &emu,
        EntraConfig {
            include_guests: true,
            ..secret_config(&app)
        },
    );
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let ctl = crate::jobs::JobControl::for_tests(db);
    let mut progress = crate::jobs::Progress::default();
    let groups = ["STAFF@contoso.com".to_string()];
    let fetched = crate::sync::fetch::fetch(&c, &groups, &mut progress, &ctl)
        .await
        .unwrap();
    let in_scope = fetched.remote.in_scope.expect("a scope");
    let expected: HashSet<String> = [
        "00000000-0000-0000-0000-00000000000a",
        "00000000-0000-0000-0000-00000000000b",
        "00000000-0000-0000-0000-00000000000d",
    ]
    .map(String::from)
    .into();
    assert_eq!(in_scope, expected, "Ann, Bob through Team, and the guest");
    assert_eq!(fetched.remote.users.len(), 4);
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    let c = client(&emu, secret_config(&app));
    emu.control().inject(FailSpec {
        endpoint: Endpoint::UsersList,
        status: 429,
        code: None,
        retry_after_secs: Some(1),
        times: 1,
    });
    let started = Instant::now();
    let (users, complete, _) = all_users(&c).await;
    assert!(complete);
    assert_eq!(users.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was waited"
    );
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 2);

    // Transient 5xx the same way.
    emu.control().fail_requests(Endpoint::UsersList, 502, 2);
    let (users, complete, _) = all_users(&c).await;
    assert!(complete);
    assert_eq!(users.len(), 3);

    // Throttling that persists is an error after the bounded attempts, and no listing.
    emu.control().reset_counts();
    emu.control().inject(FailSpec {
        endpoint: Endpoint::UsersList,
        status: 429,
        code: None,
        retry_after_secs: Some(0),
        times: 3,
    });
    let mut pages = c.user_pages();
    let e = pages.next_page().await.unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    assert!(!pages.is_complete());
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 3);
}

#[tokio::test]
async fn a_listing_that_fails_midway_is_never_complete() {
    let emu = start(Directory::generate(2500, 3, 7)).await;
    let app = emu.control().default_app();
    let c = client(&emu, secret_config(&app));
    let mut pages = c.user_pages();
    assert!(!pages.next_page().await.unwrap().unwrap().is_empty());
    emu.control().fail_requests(Endpoint::UsersList, 503, 3);
    let e = pages.next_page().await.unwrap_err();
    assert_eq!(e.code(), "entra_unavailable");
    assert_eq!(
        pages.next_page().await.unwrap(),
        None,
        "over after an error"
    );
    assert!(!pages.is_complete(), "a partial read never deletes anyone");

    // The engine refuses it as a whole.
    emu.control().fail_requests(Endpoint::UsersList, 503, 3);
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let ctl = crate::jobs::JobControl::for_tests(db);
    let mut progress = crate::jobs::Progress::default();
    assert!(crate::sync::fetch::fetch(&c, &[], &mut progress, &ctl)
        .await
        .is_err());
}

#[tokio::test]
async fn a_next_link_outside_the_graph_url_is_never_followed() {
    let mut opts = EmulatorOptions::with_directory(Directory::generate(1200, 1, 3));
    // The emulator advertises next links on another origin.
    opts.public_url = Some("http://graph.attacker.example:8080".into());
    let emu = Emulator::start(opts).await.unwrap();
    let app = emu.control().default_app();
    let config = EntraConfig {
        include_guests: true,
        ..secret_config(&app)
    };
    let real = format!("http://{}", emu.local_addr());
    let reach = EntraAccess {
        login_url: real.clone(),
        graph_url: real,
        ..access(&emu)
    };
    let c = GraphClient::with_options(config, &reach, fast()).unwrap();
    let mut pages = c.user_pages();
    // The page that carries the link fails as a whole: the listing stops there.
    let e = pages.next_page().await.unwrap_err();
    assert_eq!(e.code(), "next_link_not_allowed");
    assert_eq!(pages.next_page().await.unwrap(), None);
    assert!(!pages.is_complete());
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 1);
}

// ---- the connection test ----

fn codes(steps: &[crate::directory::TestStep]) -> Vec<(&str, bool, Option<&str>)> {
    steps
        .iter()
        .map(|s| (s.name.as_str(), s.ok, s.code.as_deref()))
        .collect()
}

/// The one failed step, last; its message never holds the secret.
fn failure<'a>(
    steps: &'a [crate::directory::TestStep],
    config: &EntraConfig,
) -> &'a crate::directory::TestStep {
    let last = steps.last().unwrap();
    assert!(!last.ok, "{steps:?}");
    assert!(steps[..steps.len() - 1].iter().all(|s| s.ok));
    if let Credential::ClientSecret(s) = &config.credential {
        use secrecy::ExposeSecret;
        assert!(!last.message.contains(s.expose_secret()));
    }
    last
}

#[tokio::test]
async fn the_connection_test_passes_every_step_with_either_credential() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    for config in [secret_config(&app), cert_config(&app)] {
        let steps = client(&emu, config).test_connection().await;
        assert_eq!(
            codes(&steps),
            [
                ("credential_parsed", true, None),
                ("token_obtained", true, None),
                ("users_readable", true, None),
                ("groups_readable", true, None),
            ]
        );
    }
}

#[tokio::test]
async fn the_connection_test_names_each_token_failure() {
    let emu = start(fixture()).await;
    let control = emu.control();
    let app = control.default_app();

    let wrong = EntraConfig {
        credential: Credential::ClientSecret(SecretString::from(
            "Abc~wrongwrongwrongwrong".to_string(),
        )),
        ..secret_config(&app)
    };
    let steps = client(&emu, wrong.clone()).test_connection().await;
    let f = failure(&steps, &wrong);
    assert_eq!(
        (f.name.as_str(), f.code.as_deref()),
        ("token_obtained", Some("invalid_client_secret"))
    );
    assert!(
        f.message.contains("Value, not its Secret ID"),
        "{}",
        f.message
    );

    let expired_secret = control
        .add_secret(
            &app.client_id,
            chrono::Utc::now() - chrono::Duration::days(1),
        )
        .unwrap();
    let expired = EntraConfig {
        credential: Credential::ClientSecret(SecretString::from(expired_secret)),
        ..secret_config(&app)
    };
    let steps = client(&emu, expired.clone()).test_connection().await;
    let f = failure(&steps, &expired);
    assert_eq!(f.code.as_deref(), Some("client_secret_expired"));
    assert!(f.message.contains("New client secret"), "{}", f.message);

    let unknown_app = EntraConfig {
        client_id: "11111111-1111-1111-1111-111111111111".into(),
        ..secret_config(&app)
    };
    let steps = client(&emu, unknown_app.clone()).test_connection().await;
    let f = failure(&steps, &unknown_app);
    assert_eq!(f.code.as_deref(), Some("unknown_application"));
    assert!(f.message.contains("11111111-1111-1111-1111-111111111111"));

    let unknown_tenant = EntraConfig {
        tenant_id: "fabrikam.onmicrosoft.com".into(),
        ..secret_config(&app)
    };
    let steps = client(&emu, unknown_tenant.clone()).test_connection().await;
    let f = failure(&steps, &unknown_tenant);
    assert_eq!(f.code.as_deref(), Some("unknown_tenant"));
    assert!(f.message.contains("fabrikam.onmicrosoft.com"));

    let (other_cert, other_key) =
        tokio::task::spawn_blocking(|| generate_certificate("not registered"))
            .await
            .unwrap()
            .unwrap();
    let unregistered = EntraConfig {
        credential: Credential::Certificate {
            certificate_pem: other_cert.pem(),
            private_key_pem: SecretString::from(other_key),
        },
        ..secret_config(&app)
    };
    let steps = client(&emu, unregistered.clone()).test_connection().await;
    let f = failure(&steps, &unregistered);
    assert_eq!(f.code.as_deref(), Some("certificate_not_registered"));

    // The app's own certificate with another key: the signature does not verify (the same
    // AADSTS700027).
    let mismatched = EntraConfig {
        credential: Credential::Certificate {
            certificate_pem: app.certificate_pem.clone().unwrap(),
            private_key_pem: SecretString::from(match &unregistered.credential {
                Credential::Certificate {
                    private_key_pem, ..
                } => secrecy::ExposeSecret::expose_secret(private_key_pem).to_string(),
                _ => unreachable!(),
            }),
        },
        ..secret_config(&app)
    };
    let steps = client(&emu, mismatched.clone()).test_connection().await;
    assert_eq!(
        failure(&steps, &mismatched).code.as_deref(),
        Some("certificate_not_registered")
    );

    let garbled = EntraConfig {
        credential: Credential::Certificate {
            certificate_pem: "not a certificate".into(),
            private_key_pem: SecretString::from("not a key".to_string()),
        },
        ..secret_config(&app)
    };
    let steps = client(&emu, garbled.clone()).test_connection().await;
    assert_eq!(
        codes(&steps),
        [("credential_parsed", false, Some("invalid_entra_credential"))]
    );
}

#[tokio::test]
async fn the_connection_test_names_the_missing_permission() {
    let emu = start(fixture()).await;
    let control = emu.control();
    let c2 = control.clone();
    let bare = tokio::task::spawn_blocking(move || c2.register_app("no consent", &[]))
        .await
        .unwrap()
        .unwrap();

    let config = secret_config(&bare);
    let steps = client(&emu, config.clone()).test_connection().await;
    let f = failure(&steps, &config);
    assert_eq!(
        (f.name.as_str(), f.code.as_deref()),
        ("users_readable", Some("missing_permission"))
    );
    assert!(f.message.contains("User.Read.All"), "{}", f.message);
    assert!(f.message.contains("grant admin consent"), "{}", f.message);
    assert!(!f.message.contains("GroupMember.Read.All"));

    control
        .set_roles(&bare.client_id, &["User.Read.All"])
        .unwrap();
    let steps = client(&emu, config.clone()).test_connection().await;
    let f = failure(&steps, &config);
    assert_eq!(
        (f.name.as_str(), f.code.as_deref()),
        ("groups_readable", Some("missing_permission"))
    );
    assert!(f.message.contains("GroupMember.Read.All"), "{}", f.message);
    assert!(f.message.contains("grant admin consent"), "{}", f.message);

    // A sync with that token fails on the first group read, with the same instruction.
    let c = client(&emu, config);
    let e = c.group_pages().next_page().await.unwrap_err();
    assert_eq!(e.code(), "missing_permission");
}

#[tokio::test]
async fn a_bad_configuration_is_refused_before_any_request() {
    let emu = start(fixture()).await;
    let app = emu.control().default_app();
    for tenant in ["common", "", "a/b"] {
        let config = EntraConfig {
            tenant_id: tenant.into(),
            ..secret_config(&app)
        };
        let e = GraphClient::new(config, &access(&emu)).unwrap_err();
        assert_eq!(e.code(), "invalid_entra_config", "{tenant:?}");
    }
    let mut bad_url = access(&emu);
    bad_url.graph_url = "ftp://graph.example".into();
    let e = GraphClient::new(secret_config(&app), &bad_url).unwrap_err();
    assert_eq!(e.code(), "invalid_entra_config");
    assert_eq!(emu.control().request_count(Endpoint::Any), 0);
}
