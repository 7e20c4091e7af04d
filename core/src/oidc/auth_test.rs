//! Test authentication (the seed's per-user test): an administrator gets an authorization URL
//! for one user (`login_hint` = the user's address); completing it at the directory's provider
//! (Google or Microsoft) runs every check a
//! real sign-in runs, plus "is this the tested user's account", and records the result and the
//! precise reason — without creating a session.

use chrono::{DateTime, Duration, Utc};
use dirsync_entity::{auth_tests, user_emails, users, AuthMethod, EmailKind};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::flow::{authorization_url, LoginRequest, Purpose};
use super::{config, SignInProviders, ATTEMPT_TTL_MINUTES};
use crate::secrets::Cipher;
use crate::Error;

/// Where a test stands (`pending`, `succeeded`, `failed`), stored in `auth_tests.status`.
pub use dirsync_entity::AuthTestStatus;

/// A test of one user's sign-in with the directory's provider.
// The API's `AuthTest`; its doc comments are the OpenAPI descriptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthTest))]
pub struct AuthTestView {
    /// Test id.
    pub id: Uuid,
    /// The tested user.
    pub user_id: Uuid,
    /// `pending`, `succeeded` or `failed`.
    pub status: AuthTestStatus,
    /// Why it failed: `<code>: <explanation>`; codes: `wrong_account`, `user_disabled`,
    /// `login_not_allowed`, `domain_not_allowed`, `email_not_verified`, `user_not_found`,
    /// `expired`, `google_error`, `microsoft_error`, `code_rejected`, and the ID-token checks
    /// (`wrong_issuer`, `wrong_tenant`, …).
    pub reason: Option<String>,
    /// The code part of `reason`.
    // Derived from `reason` when the view is made, so that callers need not split it.
    pub reason_code: Option<String>,
    /// Open this at the provider, signed in as the tested user (its address is the
    /// `login_hint`).
    pub authorization_url: String,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The stable code of a `reason` (`wrong_account`, `user_disabled`, …).
fn reason_code(reason: &str) -> &str {
    reason.split_once(':').map_or(reason, |(c, _)| c)
}

impl From<auth_tests::Model> for AuthTestView {
    fn from(m: auth_tests::Model) -> Self {
        AuthTestView {
            reason_code: m.reason.as_deref().map(|r| reason_code(r).to_owned()),
            id: m.id,
            user_id: m.user_id,
            status: m.status,
            reason: m.reason,
            authorization_url: m.authorization_url,
            created_by: m.created_by,
            created_at: m.created_at,
            finished_at: m.finished_at,
        }
    }
}

/// Starts a test of `user_id`'s sign-in and records `user.auth_test` by `actor` together with
/// it: 404 for an unknown user, 422 for a local or not yet synchronized one, 409
/// `not_configured` when sign-in is not configured.
#[tracing::instrument(skip(db, cipher, providers))]
pub async fn start(
    db: &DatabaseConnection,
    cipher: &Cipher,
    providers: &SignInProviders,
    user_id: Uuid,
    actor: &str,
) -> Result<AuthTestView, crate::Error> {
    let user = users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if user.auth_method != AuthMethod::Directory {
        return Err(Error::invalid(
            "not_a_directory_user",
            format!(
                "{} is a local user: local users sign in with a password, not with the directory",
                user.user_name
            ),
        ));
    }
    if user.directory_id.is_none() {
        return Err(Error::invalid(
            "not_synced",
            format!(
                "{} has no directory account id yet: run a synchronization first",
                user.user_name
            ),
        ));
    }
    let primary = user_emails::Entity::find()
        .filter(user_emails::Column::UserId.eq(user.id))
        .filter(user_emails::Column::Kind.eq(EmailKind::Primary))
        .one(db)
        .await?
        .map(|e| e.address)
        .unwrap_or_else(|| user.user_name.clone());
    let cfg = config::active(db, cipher).await?;
    let idp = providers.current(db).await?;
    let id = Uuid::new_v4();
    let url = authorization_url(
        db,
        cipher,
        &idp,
        &cfg,
        LoginRequest {
            return_to: None,
            login_hint: Some(primary),
            // Started by an administrator's key, for someone else's browser: not a client's.
            client: None,
        },
        Purpose::AuthTest(id),
    )
    .await?;
    let row = auth_tests::ActiveModel {
        id: Set(id),
        user_id: Set(user.id),
        status: Set(AuthTestStatus::Pending),
        reason: Set(None),
        authorization_url: Set(url),
        created_by: Set(actor.to_string()),
        created_at: Set(Utc::now()),
        finished_at: Set(None),
    };
    // The sign-in attempt above is not part of the change: unused, it expires by itself.
    let txn = db.begin().await?;
    let row = row.insert(&txn).await?;
    crate::audit::record(
        &txn,
        actor,
        "user.auth_test",
        "user",
        Some(row.user_id.to_string()),
        serde_json::json!({ "auth_test_id": row.id }),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// Reads a test; one left pending past the attempt's lifetime is reported (and stored) as
/// failed with reason `expired`.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> crate::Result<AuthTestView> {
    let row = auth_tests::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("auth test"))?;
    if row.status == AuthTestStatus::Pending
        && row.created_at + Duration::minutes(ATTEMPT_TTL_MINUTES) < Utc::now()
    {
        finish(
            db,
            id,
            AuthTestStatus::Failed,
            Some(format!(
                "expired: the test was not completed within {ATTEMPT_TTL_MINUTES} minutes"
            )),
        )
        .await?;
        return Ok(auth_tests::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("auth test"))?
            .into());
    }
    Ok(row.into())
}

async fn finish<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    status: AuthTestStatus,
    reason: Option<String>,
) -> Result<(), sea_orm::DbErr> {
    auth_tests::Entity::update_many()
        .col_expr(auth_tests::Column::Status, Expr::value(status))
        .col_expr(auth_tests::Column::Reason, Expr::value(reason))
        .col_expr(auth_tests::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(auth_tests::Column::Id.eq(id))
        .filter(auth_tests::Column::Status.eq(AuthTestStatus::Pending))
        .exec(db)
        .await?;
    Ok(())
}

/// The directory account id the test expects; `None` when the user was deleted or turned local
/// since the test started, so that no account is the tested user's.
pub(crate) async fn tested_directory_id<C: ConnectionTrait>(
    db: &C,
    test_id: Uuid,
) -> Result<Option<String>, crate::Error> {
    let test = auth_tests::Entity::find_by_id(test_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("auth test"))?;
    let user = users::Entity::find_by_id(test.user_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    Ok(user.directory_id)
}

/// Records how a test ended.
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    test_id: Uuid,
    result: Result<Uuid, crate::Error>,
) -> Result<AuthTestView, crate::Error> {
    match result {
        Ok(_) => finish(db, test_id, AuthTestStatus::Succeeded, None).await?,
        Err(e) => {
            finish(
                db,
                test_id,
                AuthTestStatus::Failed,
                Some(format!("{}: {e}", e.code())),
            )
            .await?
        }
    }
    get(db, test_id).await
}
