//! The HTTP control API under `/_emulator` (JSON in, JSON out; no authentication: the emulator
//! is a test tool bound to loopback by default). It mirrors [`crate::Control`].
//!
//! | method and path | body | effect / answer |
//! |---|---|---|
//! | `GET /_emulator/health` | | `{"ok":true}` |
//! | `GET /_emulator/counts` | | `{"token":n,"users_list":n,"users_get":n,"groups_list":n,"groups_get":n,"members_list":n,"members_get":n,"has_member":n,"activities":n,"other":n,"total":n,"gzip_requests":n}` (`gzip_requests`: Directory requests with `Accept-Encoding: gzip` and a User-Agent containing "gzip") |
//! | `POST /_emulator/counts/reset` | | zeroes the counts |
//! | `GET /_emulator/stats` | | `{"domain","customer_id","users","groups","members","admins":[..],"group_members":{"<group email>":n}}` |
//! | `GET /_emulator/directory` | | the directory as a JSON fixture |
//! | `PUT /_emulator/directory` | a JSON fixture | replaces the directory |
//! | `POST /_emulator/directory/changes` | one change or an array of changes (below) | applies them in order, all or nothing; answers `{"results":[..]}` (a new user's or group's id, else null) or 400 `{"error": ".."}` |
//! | `GET /_emulator/service-account` | | the key file (google-apis.md §1) |
//! | `POST /_emulator/service-accounts` | `{"name":"reader"}` | registers a new service account (no delegation) and answers its key file |
//! | `PUT /_emulator/delegation` | `{"client_id":"..","scopes":[..]}` | grants domain-wide delegation |
//! | `DELETE /_emulator/delegation/{client_id}` | | revokes it |
//! | `POST /_emulator/tokens/expire` | | every issued access token becomes invalid (next call: 401) |
//! | `POST /_emulator/faults` | one fault or an array (below) | queues / sets them |
//! | `DELETE /_emulator/faults` | | clears faults, the rate cap and latency |
//! | `POST /_emulator/oauth-clients` | `{"client_id","client_secret","redirect_uris":[..]}` | registers an OAuth client for OpenID Connect |
//! | `POST /_emulator/oidc/rotate-key` | `{"keep_old":true}` (optional) | signs with a new key; answers `{"kid","kids":[..]}` |
//! | `PUT /_emulator/oidc/jwks-max-age` | `{"seconds":n}` | `Cache-Control: max-age` of the JWKS |
//! | `POST /_emulator/oidc/tamper` | `{"tamper":"alg_none"}` or an array of them | tampers with the next ID tokens (names: see `IdTokenTamper`) |
//!
//! Changes (`"op"` selects): `{"op":"add_user","primary_email","given_name","family_name","is_admin"?}`,
//! `{"op":"rename_user","old","new"}`, `{"op":"suspend_user","email","suspended":true}`,
//! `{"op":"archive_user","email","archived":true}`, `{"op":"delete_user","email"}`,
//! `{"op":"set_admin","email","admin":true}`, `{"op":"set_name","email","given_name","family_name"}`,
//! `{"op":"add_alias","email","alias"}`, `{"op":"remove_alias","email","alias"}`,
//! `{"op":"add_group","email","name"}`, `{"op":"delete_group","email"}`,
//! `{"op":"add_member","group","member","type":"USER"|"GROUP"|"CUSTOMER"|"EXTERNAL","role"?}`,
//! `{"op":"remove_member","group","member"}`,
//! `{"op":"move_member","from","to","member"}` (remove from one group, add to another, same type and role),
//! `{"op":"rename_group","old","new"}`, `{"op":"add_group_alias","email","alias"}` (logged by
//! no activity, as at Google), `{"op":"undelete_user","id"}`,
//! `{"op":"move_org_unit","email","org_unit_path"}`,
//! `{"op":"bulk_upload","users":[{"primary_email","given_name","family_name"}]}` (one
//! `BULK_UPLOAD` activity naming no user), `{"op":"bulk_add_members","group","members":[".."]}`
//! (one `GROUP_MEMBER_BULK_UPLOAD` activity). Every other change logs the admin activity of
//! `shared/reference/google-reports-api.md` §3 (see `crate::activity`).
//!
//! Faults (`"kind"` selects; `endpoint` is one of `token`, `users_list`, `users_get`, `groups_list`,
//! `groups_get`, `members_list`, `members_get`, `has_member`, `activities`, `discovery`, `authorize`, `jwks`,
//! `userinfo`, `any`):
//! `{"kind":"fail","endpoint","status":503,"times":2,"reason"?,"message"?,"retry_after_secs"?}`,
//! `{"kind":"truncate","endpoint","page_index":1}`, `{"kind":"repeat_page_token","endpoint"}`,
//! `{"kind":"latency","ms":250}`,
//! `{"kind":"rate_limit","max_per_second":10,"style":"forbidden403"}` or
//! `{"kind":"rate_limit","max_per_second":10,"style":"too_many429","retry_after_secs":1}`
//! (`max_per_second: null` lifts the cap),
//! `{"kind":"quota","per_minute":2400}` (Google's per-minute quota on Directory and Reports
//! requests: 429 with `Retry-After` beyond it; `null` lifts it),
//! `{"kind":"endpoint_latency","endpoint":"users_list","ms":50}` (`ms: null`: back to the global
//! latency), `{"kind":"event_lag","seconds":120}` (how long an admin activity stays invisible to
//! `activities.list`). `GET /_emulator/activities` lists the whole log, visible or not.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::directory::{Directory, MemberType, Role};
use crate::state::{Control, Endpoint, FailSpec, RateLimitStyle, State};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/health",
        web::get().to(|| async { HttpResponse::Ok().json(json!({"ok": true})) }),
    )
    .route("/counts", web::get().to(counts))
    .route("/counts/reset", web::post().to(reset_counts))
    .route("/stats", web::get().to(stats))
    .route("/directory", web::get().to(get_directory))
    .route("/directory", web::put().to(put_directory))
    .route("/directory/changes", web::post().to(changes))
    .route("/activities", web::get().to(activities))
    .route("/service-account", web::get().to(service_account))
    .route("/service-accounts", web::post().to(new_service_account))
    .route("/delegation", web::put().to(set_delegation))
    .route(
        "/delegation/{client_id}",
        web::delete().to(revoke_delegation),
    )
    .route("/tokens/expire", web::post().to(expire_tokens))
    .route("/faults", web::post().to(add_faults))
    .route("/faults", web::delete().to(clear_faults))
    .route("/oauth-clients", web::post().to(add_oauth_client))
    .route("/oidc/rotate-key", web::post().to(rotate_key))
    .route("/oidc/jwks-max-age", web::put().to(jwks_max_age))
    .route("/oidc/tamper", web::post().to(tamper));
}

fn control(state: &web::Data<State>) -> Control {
    Control {
        state: state.clone().into_inner(),
    }
}

fn error(status: u16, msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"error": msg.to_string()}))
}

/// One value or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

async fn counts(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(control(&state).counts())
}

async fn reset_counts(state: web::Data<State>) -> HttpResponse {
    control(&state).reset_counts();
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn stats(state: web::Data<State>) -> HttpResponse {
    let dir = state.directory.read().expect("directory lock");
    let group_members: serde_json::Map<String, Value> = dir
        .groups()
        .map(|g| (g.email.clone(), json!(g.members.len())))
        .collect();
    HttpResponse::Ok().json(json!({
        "domain": dir.domain(),
        "customer_id": dir.customer_id(),
        "users": dir.user_count(),
        "deleted_users": dir.deleted_users_by_id().len(),
        "groups": dir.group_count(),
        "members": dir.member_count(),
        "admins": dir.admin_emails(),
        "group_members": group_members,
    }))
}

async fn activities(state: web::Data<State>) -> HttpResponse {
    let dir = state.directory.read().expect("directory lock");
    let items: Vec<Value> = dir
        .activities()
        .iter()
        .map(|a| a.to_json(dir.customer_id(), dir.domain()))
        .collect();
    HttpResponse::Ok().json(json!({ "items": items }))
}

async fn get_directory(state: web::Data<State>) -> HttpResponse {
    let json = state.directory.read().expect("directory lock").to_json();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json)
}

async fn put_directory(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => return error(400, "body is not UTF-8"),
    };
    match Directory::from_json(text) {
        Ok(d) => {
            control(&state).set_directory(d);
            HttpResponse::Ok().json(json!({"ok": true}))
        }
        Err(e) => error(400, format!("{e:#}")),
    }
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Change {
    AddUser {
        primary_email: String,
        #[serde(default)]
        given_name: String,
        #[serde(default)]
        family_name: String,
        #[serde(default)]
        is_admin: bool,
    },
    RenameUser {
        old: String,
        new: String,
    },
    SuspendUser {
        email: String,
        #[serde(default = "yes")]
        suspended: bool,
    },
    ArchiveUser {
        email: String,
        #[serde(default = "yes")]
        archived: bool,
    },
    DeleteUser {
        email: String,
    },
    SetAdmin {
        email: String,
        #[serde(default = "yes")]
        admin: bool,
    },
    SetName {
        email: String,
        given_name: String,
        family_name: String,
    },
    AddAlias {
        email: String,
        alias: String,
    },
    RemoveAlias {
        email: String,
        alias: String,
    },
    AddGroup {
        email: String,
        #[serde(default)]
        name: String,
    },
    DeleteGroup {
        email: String,
    },
    AddMember {
        group: String,
        #[serde(default)]
        member: String,
        #[serde(rename = "type", default)]
        kind: Option<MemberType>,
        #[serde(default)]
        role: Role,
    },
    RemoveMember {
        group: String,
        member: String,
    },
    RenameGroup {
        old: String,
        new: String,
    },
    AddGroupAlias {
        email: String,
        alias: String,
    },
    UndeleteUser {
        id: String,
    },
    MoveOrgUnit {
        email: String,
        org_unit_path: String,
    },
    BulkUpload {
        users: Vec<NewUser>,
    },
    BulkAddMembers {
        group: String,
        members: Vec<String>,
    },
    MoveMember {
        from: String,
        to: String,
        member: String,
    },
}

#[derive(Deserialize)]
struct NewUser {
    primary_email: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
}

fn yes() -> bool {
    true
}

/// A member's type from its address: a user, a group, else external (`""`: the customer).
fn member_type_of(d: &Directory, member: &str) -> MemberType {
    match d.owner_of(member) {
        _ if member.is_empty() => MemberType::Customer,
        Some(crate::directory::Owner::User(_)) => MemberType::User,
        Some(crate::directory::Owner::Group(_)) => MemberType::Group,
        None => MemberType::External,
    }
}

fn apply(d: &mut Directory, c: Change) -> anyhow::Result<Value> {
    Ok(match c {
        Change::AddUser {
            primary_email,
            given_name,
            family_name,
            is_admin,
        } => {
            let id = d.add_user(&primary_email, &given_name, &family_name)?;
            if is_admin {
                d.set_admin(&id, true)?;
            }
            json!(id)
        }
        Change::RenameUser { old, new } => {
            d.rename_user(&old, &new)?;
            Value::Null
        }
        Change::SuspendUser { email, suspended } => {
            d.set_suspended(&email, suspended)?;
            Value::Null
        }
        Change::ArchiveUser { email, archived } => {
            d.set_archived(&email, archived)?;
            Value::Null
        }
        Change::DeleteUser { email } => {
            d.delete_user(&email)?;
            Value::Null
        }
        Change::SetAdmin { email, admin } => {
            d.set_admin(&email, admin)?;
            Value::Null
        }
        Change::SetName {
            email,
            given_name,
            family_name,
        } => {
            d.set_name(&email, &given_name, &family_name)?;
            Value::Null
        }
        Change::AddAlias { email, alias } => {
            d.add_alias(&email, &alias)?;
            Value::Null
        }
        Change::RemoveAlias { email, alias } => {
            d.remove_alias(&email, &alias)?;
            Value::Null
        }
        Change::AddGroup { email, name } => json!(d.add_group(&email, &name)?),
        Change::DeleteGroup { email } => {
            d.delete_group(&email)?;
            Value::Null
        }
        Change::AddMember {
            group,
            member,
            kind,
            role,
        } => {
            let kind = kind.unwrap_or_else(|| member_type_of(d, &member));
            d.add_member_with_role(&group, &member, kind, role)?;
            Value::Null
        }
        Change::RemoveMember { group, member } => {
            d.remove_member(&group, &member)?;
            Value::Null
        }
        Change::RenameGroup { old, new } => {
            d.rename_group(&old, &new)?;
            Value::Null
        }
        Change::AddGroupAlias { email, alias } => {
            d.add_group_alias(&email, &alias)?;
            Value::Null
        }
        Change::UndeleteUser { id } => {
            d.undelete_user(&id)?;
            Value::Null
        }
        Change::MoveOrgUnit {
            email,
            org_unit_path,
        } => {
            d.move_to_org_unit(&email, &org_unit_path)?;
            Value::Null
        }
        Change::BulkUpload { users } => {
            let users: Vec<(&str, &str, &str)> = users
                .iter()
                .map(|u| {
                    (
                        u.primary_email.as_str(),
                        u.given_name.as_str(),
                        u.family_name.as_str(),
                    )
                })
                .collect();
            json!(d.bulk_upload(&users)?)
        }
        Change::BulkAddMembers { group, members } => {
            let members: Vec<(&str, MemberType)> = members
                .iter()
                .map(|m| (m.as_str(), member_type_of(d, m)))
                .collect();
            d.bulk_add_members(&group, &members)?;
            Value::Null
        }
        Change::MoveMember { from, to, member } => {
            let g = d
                .group(&from)
                .ok_or_else(|| anyhow::anyhow!("no group {from}"))?;
            let m = g
                .members
                .values()
                .find(|m| {
                    m.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&member))
                        || m.id == member
                })
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{member} is not a member of {from}"))?;
            d.remove_member(&from, &member)?;
            let key = m.email.clone().unwrap_or_default();
            d.add_member_with_role(&to, &key, m.member_type(), m.role)?;
            Value::Null
        }
    })
}

async fn changes(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let list: OneOrMany<Change> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(400, format!("invalid change: {e}")),
    };
    let mut dir = state.directory.write().expect("directory lock");
    // All or nothing: work on a copy.
    let mut work = dir.clone();
    let mut results = Vec::new();
    for (i, c) in list.into_vec().into_iter().enumerate() {
        match apply(&mut work, c) {
            Ok(v) => results.push(v),
            Err(e) => return error(400, format!("change #{i}: {e:#}")),
        }
    }
    *dir = work;
    HttpResponse::Ok().json(json!({"results": results}))
}

async fn service_account(state: web::Data<State>) -> HttpResponse {
    let accounts = state.accounts.read().expect("accounts lock");
    match accounts.first() {
        Some(a) => HttpResponse::Ok()
            .content_type("application/json")
            .body(a.key_json.clone()),
        None => error(404, "no service account"),
    }
}

#[derive(Deserialize)]
struct NewAccount {
    #[serde(default = "default_sa_name")]
    name: String,
}

fn default_sa_name() -> String {
    "reader".to_string()
}

async fn new_service_account(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let req: NewAccount = if body.is_empty() {
        NewAccount {
            name: default_sa_name(),
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(400, e),
        }
    };
    let c = control(&state);
    match web::block(move || c.new_service_account(&req.name)).await {
        Ok(Ok(sa)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(sa.key_json),
        Ok(Err(e)) => error(500, e),
        Err(e) => error(500, e),
    }
}

#[derive(Deserialize)]
struct Delegation {
    client_id: String,
    scopes: Vec<String>,
}

async fn set_delegation(state: web::Data<State>, body: web::Json<Delegation>) -> HttpResponse {
    let scopes: Vec<&str> = body.scopes.iter().map(String::as_str).collect();
    control(&state).set_delegation(&body.client_id, &scopes);
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn revoke_delegation(state: web::Data<State>, client_id: web::Path<String>) -> HttpResponse {
    control(&state).revoke_delegation(&client_id);
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn expire_tokens(state: web::Data<State>) -> HttpResponse {
    control(&state).expire_tokens();
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Fault {
    Fail(FailSpec),
    Truncate {
        endpoint: Endpoint,
        page_index: usize,
    },
    RepeatPageToken {
        endpoint: Endpoint,
    },
    Latency {
        ms: u64,
    },
    RateLimit {
        max_per_second: Option<u32>,
        #[serde(flatten)]
        style: RateLimitStyle,
    },
    Quota {
        per_minute: Option<u32>,
    },
    EndpointLatency {
        endpoint: Endpoint,
        ms: Option<u64>,
    },
    EventLag {
        seconds: u64,
    },
}

async fn add_faults(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let list: OneOrMany<Fault> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(400, format!("invalid fault: {e}")),
    };
    let c = control(&state);
    for f in list.into_vec() {
        match f {
            Fault::Fail(spec) => c.inject_failure(spec),
            Fault::Truncate {
                endpoint,
                page_index,
            } => c.truncate_page(endpoint, page_index),
            Fault::RepeatPageToken { endpoint } => c.repeat_page_token(endpoint),
            Fault::Latency { ms } => c.set_latency(Duration::from_millis(ms)),
            Fault::RateLimit {
                max_per_second,
                style,
            } => c.set_rate_limit(max_per_second, style),
            Fault::Quota { per_minute } => c.set_quota_per_minute(per_minute),
            Fault::EndpointLatency { endpoint, ms } => {
                c.set_endpoint_latency(endpoint, ms.map(Duration::from_millis))
            }
            Fault::EventLag { seconds } => c.set_event_lag(Duration::from_secs(seconds)),
        }
    }
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn clear_faults(state: web::Data<State>) -> HttpResponse {
    control(&state).clear_faults();
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct NewClient {
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
}

async fn add_oauth_client(state: web::Data<State>, body: web::Json<NewClient>) -> HttpResponse {
    let uris: Vec<&str> = body.redirect_uris.iter().map(String::as_str).collect();
    control(&state).add_oauth_client(&body.client_id, &body.client_secret, &uris);
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize, Default)]
struct Rotate {
    keep_old: Option<bool>,
}

async fn rotate_key(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let req: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(400, e),
        }
    };
    let c = control(&state);
    if let Some(keep) = req.keep_old {
        c.set_keep_old_signing_keys(keep);
    }
    let c2 = c.clone();
    match web::block(move || c2.rotate_signing_key()).await {
        Ok(kid) => HttpResponse::Ok().json(json!({"kid": kid, "kids": c.signing_key_ids()})),
        Err(e) => error(500, e),
    }
}

#[derive(Deserialize)]
struct MaxAge {
    seconds: u64,
}

async fn jwks_max_age(state: web::Data<State>, body: web::Json<MaxAge>) -> HttpResponse {
    control(&state).set_jwks_max_age(Duration::from_secs(body.seconds));
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct Tamper {
    tamper: crate::oidc::IdTokenTamper,
}

async fn tamper(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let list: OneOrMany<Tamper> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(400, format!("invalid tampering: {e}")),
    };
    let c = control(&state);
    for t in list.into_vec() {
        c.tamper_next_id_token(t.tamper);
    }
    HttpResponse::Ok().json(json!({"ok": true}))
}
