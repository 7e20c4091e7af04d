//! Google's admin activity log (Reports API `activities.list` with `applicationName=admin`), as
//! the emulator keeps it: one activity per change an administrator makes through the control API
//! or [`crate::Directory`]'s change methods, with the event names and parameters of
//! `shared/reference/google-reports-api.md` §3.
//!
//! What the log deliberately shares with Google's, because a client must cope with it:
//! - events name addresses **at the time of the event**, never ids (a rename is `RENAME_USER`
//!   with the old address in `USER_EMAIL` and the new one in `NEW_VALUE`);
//! - a membership event's `USER_EMAIL` may be a nested group's address;
//! - a CSV upload (`BULK_UPLOAD`, `GROUP_MEMBER_BULK_UPLOAD`) names no user or group;
//! - group alias changes are not logged at all;
//! - Google keeps a renamed user's old address as an alias; the emulator's rename drops it (see
//!   [`crate::Directory::rename_user`]), so it logs the alias removal an administrator would make.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The scope `activities.list` requires.
pub const REPORTS_SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";

/// One logged activity (always exactly one event: the emulator makes one change at a time).
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// When the change was made (`id.time`, millisecond precision).
    pub time: DateTime<Utc>,
    /// `id.uniqueQualifier`: a random signed 64-bit number, sent as a string.
    pub unique_qualifier: i64,
    /// The administrator who made the change (`actor.email`).
    pub actor_email: String,
    /// The administrator's user id (`actor.profileId`).
    pub actor_profile_id: String,
    /// `events[0].type`: `USER_SETTINGS` or `GROUP_SETTINGS`.
    pub event_type: &'static str,
    /// `events[0].name`, e.g. `RENAME_USER`.
    pub name: &'static str,
    /// `events[0].parameters`, each a string `value`.
    pub parameters: Vec<(&'static str, String)>,
}

impl Activity {
    /// The value of a parameter.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The activity as `activities.list` returns it.
    pub(crate) fn to_json(&self, customer_id: &str, domain: &str) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        json!({
            "kind": "admin#reports#activity",
            "etag": format!("\"emu/{}\"", self.unique_qualifier),
            "id": {
                "time": self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
                "uniqueQualifier": self.unique_qualifier.to_string(),
                "applicationName": "admin",
                "customerId": customer_id,
            },
            "actor": {
                "callerType": "USER",
                "email": self.actor_email,
                "profileId": self.actor_profile_id,
            },
            "ipAddress": "203.0.113.9",
            "ownerDomain": domain,
            "events": [{
                "type": self.event_type,
                "name": self.name,
                "parameters": parameters,
            }],
        })
    }
}

/// `USER_SETTINGS` or `GROUP_SETTINGS`, by event name.
pub(crate) fn event_type(name: &str) -> &'static str {
    if name.contains("GROUP") {
        "GROUP_SETTINGS"
    } else {
        "USER_SETTINGS"
    }
}

/// Now, at the millisecond precision of `id.time`.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
