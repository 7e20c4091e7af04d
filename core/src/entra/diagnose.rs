//! The connection test (issue 16, item 5): each step of talking to Microsoft, stopping at the
//! first failure with an instruction for the administrator.

use url::Url;

use super::client::{GraphClient, GROUP_MEMBER_READ_ALL, USER_READ_ALL};
use super::EntraError;
use crate::directory::TestStep;

/// The steps, in order.
pub const STEPS: [&str; 4] = [
    "credential_parsed",
    "token_obtained",
    "users_readable",
    "groups_readable",
];

fn passed(name: &str, message: String) -> TestStep {
    TestStep {
        name: name.to_string(),
        ok: true,
        message,
        code: None,
    }
}

fn failed(name: &str, e: &EntraError) -> TestStep {
    TestStep {
        name: name.to_string(),
        ok: false,
        message: e.to_string(),
        code: Some(e.code().to_string()),
    }
}

#[derive(serde::Deserialize)]
struct Any {}

impl GraphClient {
    /// The connection test: the credential parses, a fresh token is issued (whatever the cache
    /// holds: a cached token would hide a secret revoked since), and Graph lists one user and
    /// one group. Stops at the first failure; every step passed when the last is
    /// `groups_readable` and ok. Messages never hold the secret, the assertion or the token.
    #[tracing::instrument(skip(self), fields(tenant = %self.config.tenant_id, client_id = %self.config.client_id))]
    pub async fn test_connection(&self) -> Vec<TestStep> {
        let mut steps = Vec::with_capacity(STEPS.len());
        match self.tokens.signer() {
            Ok(s) => steps.push(passed(
                "credential_parsed",
                format!(
                    "application {} authenticates with {}",
                    self.config.client_id,
                    s.describe()
                ),
            )),
            Err(e) => {
                steps.push(failed("credential_parsed", &e));
                return steps;
            }
        }
        match self.tokens.fresh().await {
            Ok(_) => steps.push(passed(
                "token_obtained",
                format!(
                    "Microsoft Entra ID issued an access token for Microsoft Graph in tenant {}",
                    self.config.tenant_id
                ),
            )),
            Err(e) => {
                steps.push(failed("token_obtained", &e));
                return steps;
            }
        }
        let probes: [(&str, &str, &'static str, &'static str); 2] = [
            ("users_readable", "users", "users.list", USER_READ_ALL),
            (
                "groups_readable",
                "groups",
                "groups.list",
                GROUP_MEMBER_READ_ALL,
            ),
        ];
        for (step, collection, endpoint, permission) in probes {
            let url = self.probe_url(collection);
            match self
                .get_json::<Any>(endpoint, permission, url, collection)
                .await
            {
                Ok(_) => steps.push(passed(
                    step,
                    format!(
                        "Microsoft Graph lists the tenant's {collection} ({permission} granted)"
                    ),
                )),
                Err(e) => {
                    steps.push(failed(step, &e));
                    return steps;
                }
            }
        }
        steps
    }

    /// `/v1.0/{collection}?$select=id&$top=1`: the cheapest read that needs the permission.
    fn probe_url(&self, collection: &str) -> Url {
        let mut url = self.url(&[collection]);
        url.query_pairs_mut()
            .append_pair("$select", "id")
            .append_pair("$top", "1");
        url
    }
}
