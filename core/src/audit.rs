//! The audit trail: who changed which setting, privilege, user or key, and when. Callers pass
//! details with secrets already left out; [`redact`] helps with that.

use chrono::Utc;
use dirsync_entity::{audit_events, AuditDetails, JsonText};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::paging::{Page, PageRequest};
use crate::Result;

/// Field names whose values are replaced by `"[redacted]"` wherever they appear in details.
const SECRET_FIELDS: &[&str] = &[
    "private_key",
    "client_secret",
    "password",
    "password_hash",
    "token",
    "key",
    "key_hash",
    "sa_private_key",
];

/// Replaces the values of secret-looking fields, at any depth.
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    if SECRET_FIELDS.contains(&k.as_str()) && !val.is_null() {
                        *val = Value::String("[redacted]".into());
                    } else {
                        walk(val);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// One recorded change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing id.
    pub id: i64,
    /// When it happened.
    pub occurred_at: chrono::DateTime<Utc>,
    /// Who did it (`api_key:<name>`, `user:<name>`, `bootstrap`, `system`).
    pub actor: String,
    /// What was done, e.g. `user.create`.
    pub action: String,
    /// Kind of thing changed.
    pub target_type: String,
    /// Which one, when it has an id.
    pub target_id: Option<String>,
    /// Before/after or other details, secrets redacted.
    pub details: Value,
}

/// Records an event, inside the caller's transaction when one is passed.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    details: Value,
) -> Result<()> {
    audit_events::ActiveModel {
        occurred_at: Set(Utc::now()),
        actor: Set(actor.to_string()),
        action: Set(action.to_string()),
        target_type: Set(target_type.to_string()),
        target_id: Set(target_id),
        details: Set(JsonText(AuditDetails(redact(details)))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Newest first.
pub async fn list<C: ConnectionTrait>(db: &C, page: PageRequest<i64>) -> Result<Page<AuditEvent>> {
    use sea_orm::ColumnTrait;
    let mut q = audit_events::Entity::find().order_by_desc(audit_events::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(audit_events::Column::Id.lt(after));
    }
    // Details that do not decode fail the read (`stored_data_invalid`): a trail that hides a
    // damaged entry behind `null` would not be a trail.
    let rows = q.limit(page.limit + 1).all(db).await?;
    let rows: Vec<AuditEvent> = rows
        .into_iter()
        .map(|m| AuditEvent {
            id: m.id,
            occurred_at: m.occurred_at,
            actor: m.actor,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            details: m.details.into_inner().0,
        })
        .collect();
    Ok(Page::from_rows(rows, page.limit, |e| e.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_at_any_depth() {
        let v = redact(
            serde_json::json!({"a": {"client_secret": "s"}, "b": [{"password": "p"}], "c": 1}),
        );
        assert_eq!(v["a"]["client_secret"], "[redacted]");
        assert_eq!(v["b"][0]["password"], "[redacted]");
        assert_eq!(v["c"], 1);
    }
}
