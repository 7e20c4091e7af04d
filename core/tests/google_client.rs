//! The Google Workspace client against the Google emulator: paging with the fewest calls,
//! retries and their limits, page-token loops, truncated pages, token refresh, and the
//! connection test's diagnoses.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync_core::google::{
    test_connection, Account, ClientConfig, DirectoryClient, GoogleError, MemberType,
    ServiceAccountKey,
};
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, Endpoint, FailSpec};

async fn emulator(d: Directory) -> Emulator {
    Emulator::start(EmulatorOptions::with_directory(d))
        .await
        .expect("emulator starts")
}

fn config_as(emu: &Emulator, admin: &str, account: Account) -> ClientConfig {
    let key = ServiceAccountKey::parse(emu.service_account_key_json().as_bytes())
        .expect("emulator key parses");
    let mut c = ClientConfig::new(key, emu.base_url(), admin, account);
    // The emulator's key file names the emulator's token endpoint.
    c.token_url = emu.token_uri();
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(40);
    c.retry.max_attempts = 4;
    c.request_timeout = Duration::from_secs(10);
    c
}

fn config(emu: &Emulator) -> ClientConfig {
    config_as(emu, "admin@example.com", Account::default())
}

fn client(emu: &Emulator) -> DirectoryClient {
    DirectoryClient::new(config(emu)).unwrap()
}

fn small() -> Directory {
    Directory::generate(1200, 20, 11)
}

#[tokio::test]
async fn a_generated_directory_pages_completely_with_the_fewest_calls() {
    let dir = Directory::generate(3000, 450, 42);
    let expected_member_pages: usize = dir
        .groups()
        .map(|g| g.members.len().div_ceil(200).max(1))
        .sum();
    let expected_members: BTreeMap<String, usize> = dir
        .groups()
        .map(|g| (g.email.clone(), g.members.len()))
        .collect();
    let emu = emulator(dir).await;
    let seen = Arc::new(Mutex::new(BTreeMap::<(String, u16), usize>::new()));
    let mut cfg = config(&emu);
    let s = seen.clone();
    cfg.on_request = Some(Arc::new(move |endpoint: &str, status: u16, _: Duration| {
        *s.lock()
            .unwrap()
            .entry((endpoint.to_string(), status))
            .or_default() += 1;
    }));
    let client = DirectoryClient::new(cfg).unwrap();

    // Users, page by page, with progress.
    let mut pages = client.users();
    let mut users = Vec::new();
    let mut progress = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        assert!(page.len() <= 500);
        users.extend(page);
        progress.push(users.len());
        if progress.len() < 6 {
            assert!(!pages.is_complete(), "complete only after the last page");
        }
    }
    assert!(pages.is_complete());
    assert_eq!(pages.pages_fetched(), 6);
    assert_eq!(progress, vec![500, 1000, 1500, 2000, 2500, 3000]);
    assert_eq!(
        users.iter().map(|u| &u.id).collect::<HashSet<_>>().len(),
        3000
    );
    let admin = users
        .iter()
        .find(|u| u.primary_email == "admin@example.com")
        .unwrap();
    assert!(!admin.full_name.is_empty());
    assert!(users.iter().any(|u| !u.aliases.is_empty()));
    assert!(users.iter().any(|u| !u.non_editable_aliases.is_empty()));
    assert!(users.iter().any(|u| u.suspended) && users.iter().any(|u| u.archived));
    assert!(users
        .iter()
        .all(|u| u.emails.first() == Some(&u.primary_email)));

    let groups = client.list_groups().await.unwrap();
    assert_eq!(groups.len(), 450);
    let mut member_total = 0;
    let mut kinds = HashSet::new();
    for g in &groups {
        let members = client.list_members(&g.email).await.unwrap();
        assert_eq!(members.len(), expected_members[&g.email], "{}", g.email);
        assert_eq!(g.direct_members_count as usize, members.len());
        member_total += members.len();
        kinds.extend(members.iter().map(|m| m.kind));
    }
    assert!(kinds.contains(&MemberType::User) && kinds.contains(&MemberType::Group));
    assert!(kinds.contains(&MemberType::Customer));
    assert_eq!(member_total, expected_members.values().sum::<usize>());

    let c = emu.control();
    assert_eq!(c.request_count(Endpoint::UsersList), 6, "⌈3000/500⌉");
    assert_eq!(c.request_count(Endpoint::GroupsList), 3, "⌈450/200⌉");
    assert_eq!(
        c.request_count(Endpoint::MembersList),
        expected_member_pages
    );
    assert!(expected_member_pages > 450, "some groups page");
    assert_eq!(
        c.request_count(Endpoint::Token),
        1,
        "one cached token for everything"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(seen[&("users.list".to_string(), 200)], 6);
    assert_eq!(seen[&("groups.list".to_string(), 200)], 3);
    assert_eq!(seen[&("token".to_string(), 200)], 1);
}

#[tokio::test]
async fn a_503_is_retried_and_the_fetch_recovers() {
    let emu = emulator(small()).await;
    emu.control().fail_requests(Endpoint::UsersList, 503, 2);
    let users = client(&emu).list_users().await.unwrap();
    assert_eq!(users.len(), 1200);
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 3 + 2);
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let emu = emulator(small()).await;
    emu.control().inject_failure(FailSpec {
        endpoint: Endpoint::GroupsList,
        status: 429,
        reason: Some("rateLimitExceeded".into()),
        message: None,
        retry_after_secs: Some(1),
        times: 1,
    });
    let t0 = Instant::now();
    let groups = client(&emu).list_groups().await.unwrap();
    assert_eq!(groups.len(), 20);
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After: {:?}",
        t0.elapsed()
    );
    assert_eq!(emu.control().request_count(Endpoint::GroupsList), 2);
}

#[tokio::test]
async fn a_403_user_rate_limit_is_retried() {
    let emu = emulator(small()).await;
    for reason in ["userRateLimitExceeded", "quotaExceeded"] {
        emu.control().inject_failure(FailSpec {
            endpoint: Endpoint::UsersList,
            status: 403,
            reason: Some(reason.into()),
            message: Some("Quota exceeded".into()),
            retry_after_secs: None,
            times: 1,
        });
    }
    assert_eq!(client(&emu).list_users().await.unwrap().len(), 1200);
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 3 + 2);
}

#[tokio::test]
async fn a_rate_capped_google_is_waited_out() {
    let emu = emulator(small()).await;
    emu.control().set_rate_limit(
        Some(10),
        dirsync_google_emulator::RateLimitStyle::TooMany429 {
            retry_after_secs: 1,
        },
    );
    let client = client(&emu);
    let groups = client.list_groups().await.unwrap();
    let mut members = 0;
    for g in &groups {
        members += client.list_members(&g.email).await.unwrap().len();
    }
    assert_eq!(members, emu.control().directory().member_count());
    let requests = emu.control().request_count(Endpoint::MembersList)
        + emu.control().request_count(Endpoint::GroupsList);
    assert!(
        requests > 21,
        "some requests were refused and retried ({requests})"
    );
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let emu = emulator(small()).await;
    emu.control().fail_requests(Endpoint::UsersList, 503, 100);
    let err = client(&emu).list_users().await.unwrap_err();
    assert!(
        matches!(
            err,
            GoogleError::Unavailable {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "google_unavailable");
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 4);

    emu.control().clear_faults();
    emu.control().reset_counts();
    emu.control().fail_requests(Endpoint::UsersList, 429, 100);
    let err = client(&emu).list_users().await.unwrap_err();
    assert_eq!(err.code(), "rate_limited", "{err}");
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 4);
}

#[tokio::test]
async fn other_client_errors_fail_at_once_without_retries() {
    let emu = emulator(small()).await;
    let c = emu.control();
    let client = client(&emu);

    c.fail_requests(Endpoint::UsersList, 400, 1);
    let err = client.list_users().await.unwrap_err();
    assert!(
        matches!(err, GoogleError::Api { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(c.request_count(Endpoint::UsersList), 1);

    c.fail_requests(Endpoint::GroupsList, 404, 1);
    let err = client.list_groups().await.unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
    assert_eq!(c.request_count(Endpoint::GroupsList), 1);

    c.fail_requests(Endpoint::MembersList, 403, 1);
    let err = client
        .list_members("everyone@example.com")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "admin_not_authorized", "{err}");
    assert_eq!(c.request_count(Endpoint::MembersList), 1);

    // A group that does not exist.
    let err = client.list_members("nope@example.com").await.unwrap_err();
    assert!(
        matches!(&err, GoogleError::NotFound { what, .. } if what == "group nope@example.com"),
        "{err:?}"
    );
    assert_eq!(c.request_count(Endpoint::MembersList), 2);
    assert!(client
        .get_group("nope@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        client
            .get_group("everyone@example.com")
            .await
            .unwrap()
            .unwrap()
            .email,
        "everyone@example.com"
    );
}

#[tokio::test]
async fn a_truncated_page_fails_the_fetch() {
    let emu = emulator(small()).await;
    emu.control().truncate_page(Endpoint::UsersList, 1);
    let client = client(&emu);
    let mut pages = client.users();
    assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 500);
    let err = pages.next_page().await.unwrap_err();
    assert!(
        matches!(
            err,
            GoogleError::MalformedResponse {
                endpoint: "users.list",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!pages.is_complete());
    assert!(
        pages.next_page().await.unwrap().is_none(),
        "a failed listing stays over"
    );
    assert!(!pages.is_complete());
    assert_eq!(
        emu.control().request_count(Endpoint::UsersList),
        2,
        "not retried"
    );
}

#[tokio::test]
async fn a_repeated_page_token_fails_the_fetch() {
    let emu = emulator(small()).await;
    emu.control().repeat_page_token(Endpoint::UsersList);
    let err = client(&emu).list_users().await.unwrap_err();
    assert!(
        matches!(
            err,
            GoogleError::PageTokenLoop {
                endpoint: "users.list"
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "page_token_loop");
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 2);
}

#[tokio::test]
async fn the_page_cap_stops_a_listing() {
    let emu = emulator(small()).await;
    let mut cfg = config(&emu);
    cfg.max_pages = 2;
    let err = DirectoryClient::new(cfg)
        .unwrap()
        .list_users()
        .await
        .unwrap_err();
    assert!(
        matches!(err, GoogleError::TooManyPages { max_pages: 2, .. }),
        "{err:?}"
    );
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 2);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let emu = emulator(small()).await;
    let c = emu.control();
    let client = client(&emu);
    let mut pages = client.users();
    pages.next_page().await.unwrap();
    c.expire_tokens();
    while pages.next_page().await.unwrap().is_some() {}
    assert!(pages.is_complete());
    assert_eq!(c.request_count(Endpoint::Token), 2);
    assert_eq!(c.request_count(Endpoint::UsersList), 3 + 1);

    // A second 401 in a row is an error, after exactly one refresh.
    c.reset_counts();
    c.fail_requests(Endpoint::GroupsList, 401, 5);
    let err = client.list_groups().await.unwrap_err();
    assert_eq!(err.code(), "unauthenticated", "{err}");
    assert_eq!(c.request_count(Endpoint::GroupsList), 2);
    assert_eq!(c.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn the_token_endpoint_is_retried_on_503_but_not_on_400() {
    let emu = emulator(small()).await;
    let c = emu.control();
    c.fail_requests(Endpoint::Token, 503, 2);
    assert_eq!(client(&emu).list_groups().await.unwrap().len(), 20);
    assert_eq!(c.request_count(Endpoint::Token), 3);

    c.reset_counts();
    c.fail_requests(Endpoint::Token, 503, 5);
    let err = client(&emu).list_groups().await.unwrap_err();
    assert_eq!(err.code(), "token_error", "{err}");
    assert_eq!(
        c.request_count(Endpoint::Token),
        3,
        "three attempts, as google-auth"
    );

    c.clear_faults();
    c.reset_counts();
    c.fail_requests(Endpoint::Token, 400, 5);
    let err = client(&emu).list_groups().await.unwrap_err();
    assert_eq!(err.code(), "invalid_grant", "{err}");
    assert_eq!(c.request_count(Endpoint::Token), 1);
    assert_eq!(c.request_count(Endpoint::GroupsList), 0);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let emu = emulator(small()).await;
    emu.control().set_latency(Duration::from_millis(50));
    let client = Arc::new(client(&emu));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.list_groups().await.map(|g| g.len()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 20);
    }
    assert_eq!(emu.control().request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn a_slow_google_times_out() {
    let emu = emulator(small()).await;
    let mut cfg = config(&emu);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry.max_attempts = 2;
    let client = DirectoryClient::new(cfg).unwrap();
    client.check_token().await.unwrap();
    emu.control().set_latency(Duration::from_millis(1500));
    let err = client.list_users().await.unwrap_err();
    assert!(
        matches!(err, GoogleError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_google_is_reported() {
    let emu = emulator(small()).await;
    let mut cfg = config(&emu);
    // Nothing listens on port 1.
    cfg.directory_base_url = "http://127.0.0.1:1".into();
    cfg.retry.max_attempts = 2;
    let err = DirectoryClient::new(cfg)
        .unwrap()
        .list_users()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "google_unreachable", "{err}");
}

// ---- the connection test's diagnoses ----

#[tokio::test]
async fn the_connection_test_passes_every_step() {
    let emu = emulator(small()).await;
    let key = emu.service_account_key_json();
    let report = test_connection(key.as_bytes(), |k| {
        let mut c = ClientConfig::new(k, emu.base_url(), "admin@example.com", Account::default());
        c.token_url = emu.token_uri();
        c.retry.base_delay = Duration::from_millis(5);
        c
    })
    .await;
    assert!(report.ok(), "{report:?}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "key_parsed",
            "token_obtained",
            "users_readable",
            "groups_readable",
            "events_readable"
        ]
    );
    assert!(report.steps.iter().all(|s| s.ok), "{report:?}");
    assert!(report.steps[0]
        .message
        .contains(&emu.service_account().client_id));
}

#[tokio::test]
async fn a_bad_key_file_stops_at_the_first_step_naming_the_field() {
    let emu = emulator(Directory::empty("example.com")).await;
    let mut key: serde_json::Value = serde_json::from_str(&emu.service_account_key_json()).unwrap();
    key["type"] = "authorized_user".into();
    let report = test_connection(key.to_string().as_bytes(), |k| config_for_key(&emu, k)).await;
    assert_eq!(report.steps.len(), 1);
    let step = &report.steps[0];
    assert_eq!(
        (step.name, step.ok, step.field),
        ("key_parsed", false, Some("type"))
    );
    assert_eq!(step.code, Some("invalid_key_file"));
    assert_eq!(emu.control().request_count(Endpoint::Any), 0);
}

fn config_for_key(emu: &Emulator, k: ServiceAccountKey) -> ClientConfig {
    let mut c = ClientConfig::new(k, emu.base_url(), "admin@example.com", Account::default());
    c.token_url = emu.token_uri();
    c
}

#[tokio::test]
async fn missing_delegation_says_which_client_id_to_grant() {
    let emu = emulator(small()).await;
    let client_id = emu.service_account().client_id.clone();
    emu.control().revoke_delegation(&client_id);
    let report = client(&emu).test_connection().await;
    let failure = report.failure().expect("fails");
    assert_eq!(failure.name, "token_obtained");
    assert_eq!(failure.code, Some("unauthorized_client"));
    assert!(
        failure.message.contains(&format!(
            "grant domain-wide delegation to client id {client_id}"
        )),
        "{}",
        failure.message
    );
    assert!(
        failure
            .message
            .contains("admin.directory.group.member.readonly"),
        "{}",
        failure.message
    );
    assert_eq!(report.steps.len(), 2, "stops at the first failure");
    assert_eq!(emu.control().request_count(Endpoint::UsersList), 0);

    // Granting only some of the scopes is still unauthorized_client.
    emu.control()
        .set_delegation(&client_id, &[dirsync_core::google::SCOPES[0]]);
    let err = client(&emu).check_token().await.unwrap_err();
    assert_eq!(err.code(), "unauthorized_client");
}

#[tokio::test]
async fn an_unknown_admin_is_named() {
    let emu = emulator(small()).await;
    let client =
        DirectoryClient::new(config_as(&emu, "ghost@example.com", Account::default())).unwrap();
    let report = client.test_connection().await;
    let failure = report.failure().expect("fails");
    assert_eq!(
        (failure.name, failure.code),
        ("token_obtained", Some("admin_not_found"))
    );
    assert!(
        failure
            .message
            .contains("admin_email ghost@example.com does not exist"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_non_admin_is_told_apart() {
    let mut d = small();
    d.add_user("clerk@example.com", "Cle", "Rk").unwrap();
    let emu = emulator(d).await;
    let client =
        DirectoryClient::new(config_as(&emu, "clerk@example.com", Account::default())).unwrap();
    let report = client.test_connection().await;
    let failure = report.failure().expect("fails");
    assert_eq!(
        (failure.name, failure.code),
        ("users_readable", Some("admin_not_authorized"))
    );
    assert!(
        failure.message.contains("is not a Workspace administrator"),
        "{}",
        failure.message
    );
    assert_eq!(
        emu.control().request_count(Endpoint::UsersList),
        1,
        "403 forbidden is not retried"
    );
}

#[tokio::test]
async fn a_wrong_customer_or_domain_is_told_apart() {
    let emu = emulator(small()).await;
    for account in [
        Account::Customer("C0nothere".into()),
        Account::Domain("other.test".into()),
    ] {
        let client =
            DirectoryClient::new(config_as(&emu, "admin@example.com", account.clone())).unwrap();
        let report = client.test_connection().await;
        let failure = report.failure().expect("fails");
        assert_eq!(
            (failure.name, failure.code),
            ("users_readable", Some("domain_not_found")),
            "{account}"
        );
        assert!(
            failure.message.contains("check customer_id / domain"),
            "{}",
            failure.message
        );
    }
    // The real customer id and domain work.
    let cid = emu.control().directory().customer_id().to_string();
    for account in [
        Account::Customer(cid),
        Account::Domain("example.com".into()),
    ] {
        let client = DirectoryClient::new(config_as(&emu, "admin@example.com", account)).unwrap();
        assert!(client.test_connection().await.ok());
    }
}

#[tokio::test]
async fn a_deleted_key_is_reported_as_such() {
    let emu = emulator(small()).await;
    emu.control()
        .delete_service_account(&emu.service_account().client_email);
    let err = client(&emu).check_token().await.unwrap_err();
    assert_eq!(err.code(), "invalid_key", "{err}");
    assert!(err
        .to_string()
        .contains(&emu.service_account().private_key_id));
}
