//! The connection test: each step of talking to Google, stopping at the first failure with an
//! instruction for the administrator (product §2).

use serde::Serialize;

use super::{ClientConfig, DirectoryClient, GoogleError, ServiceAccountKey};

/// One step of the connection test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `key_parsed`, `token_obtained`, `users_readable`, `groups_readable` or
    /// `events_readable`.
    pub name: &'static str,
    /// Whether it worked.
    pub ok: bool,
    /// What was found, or what to do.
    pub message: String,
    /// The error code when it failed (`invalid_key_file`, `unauthorized_client`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The offending key-file field, when the key file is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

/// The steps run, in order; the last one failed if any did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    /// Steps run so far (later steps are not run after a failure).
    pub steps: Vec<Step>,
}

impl ConnectionReport {
    /// Every step a full sync needs ran and passed (`events_readable`, which only incremental
    /// sync needs, is [`ConnectionReport::events`]).
    pub fn ok(&self) -> bool {
        STEPS
            .iter()
            .all(|name| self.steps.iter().any(|s| s.name == *name && s.ok))
    }

    /// The `events_readable` step, when it ran.
    pub fn events(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == EVENTS_STEP)
    }

    /// The failed step, if any.
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }
}

/// The steps a full sync needs.
const STEPS: [&str; 4] = [
    "key_parsed",
    "token_obtained",
    "users_readable",
    "groups_readable",
];

/// The step incremental sync needs besides: the admin log, with the audit scope.
pub const EVENTS_STEP: &str = "events_readable";

fn passed(name: &'static str, message: String) -> Step {
    Step {
        name,
        ok: true,
        message,
        code: None,
        field: None,
    }
}

fn failed(name: &'static str, e: &GoogleError) -> Step {
    Step {
        name,
        ok: false,
        message: e.to_string(),
        code: Some(e.code()),
        field: None,
    }
}

/// Runs the whole test from a key file: parses it, then hands the key to `configure` to build
/// the client configuration, then checks token, users and groups.
pub async fn test_connection(
    key_file: &[u8],
    configure: impl FnOnce(ServiceAccountKey) -> ClientConfig,
) -> ConnectionReport {
    let key = match ServiceAccountKey::parse_file(key_file) {
        Ok(k) => k,
        Err(e) => {
            return ConnectionReport {
                steps: vec![Step {
                    name: "key_parsed",
                    ok: false,
                    message: e.message().to_string(),
                    code: Some("invalid_key_file"),
                    field: e.field(),
                }],
            }
        }
    };
    match DirectoryClient::new(configure(key)) {
        Ok(client) => client.test_connection().await,
        Err(e) => ConnectionReport {
            steps: vec![failed("key_parsed", &e)],
        },
    }
}

impl DirectoryClient {
    /// The connection test with this client's (already parsed) key: every step of
    /// [`test_connection`]. Reads one page of users and of groups.
    #[tracing::instrument(skip(self), fields(admin_email = %self.admin_email()))]
    pub async fn test_connection(&self) -> ConnectionReport {
        let key = self.key();
        let mut steps = vec![passed(
            "key_parsed",
            format!(
                "service account {} (client id {}), key {}",
                key.client_email,
                key.delegation_client_id(),
                key.private_key_id
            ),
        )];
        if let Err(e) = self.check_token().await {
            steps.push(failed("token_obtained", &e));
            return ConnectionReport { steps };
        }
        steps.push(passed(
            "token_obtained",
            format!("access token obtained on behalf of {}", self.admin_email()),
        ));
        match self.users().next_page().await {
            Ok(page) => steps.push(passed(
                "users_readable",
                format!(
                    "users readable ({} on the first page)",
                    page.map_or(0, |p| p.len())
                ),
            )),
            Err(e) => {
                steps.push(failed("users_readable", &e));
                return ConnectionReport { steps };
            }
        }
        match self.groups().next_page().await {
            Ok(page) => steps.push(passed(
                "groups_readable",
                format!(
                    "groups readable ({} on the first page)",
                    page.map_or(0, |p| p.len())
                ),
            )),
            Err(e) => {
                steps.push(failed("groups_readable", &e));
                return ConnectionReport { steps };
            }
        }
        // The last minute of the admin log: a token with the audit scope, and the log readable.
        let now = chrono::Utc::now();
        match self
            .activities(now - chrono::Duration::minutes(1), now)
            .next_page()
            .await
        {
            Ok(_) => steps.push(passed(
                EVENTS_STEP,
                "the admin log is readable: incremental sync is available".into(),
            )),
            Err(e) => {
                let mut step = failed(EVENTS_STEP, &e);
                step.message = format!(
                    "{}. Incremental sync is unavailable until then; full syncs keep working",
                    step.message
                );
                steps.push(step);
            }
        }
        ConnectionReport { steps }
    }
}
