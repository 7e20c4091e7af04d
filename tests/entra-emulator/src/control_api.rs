//! The HTTP control API under `/_emulator` (JSON in, JSON out, no authentication: a test tool
//! bound to loopback by default). It mirrors [`crate::Control`]; the table is in the crate
//! README.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::apps::SYNC_ROLES;
use crate::directory::{Directory, ObjectKind, UserType};
use crate::state::{Control, Endpoint, FailSpec, State};

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
    .route("/app", web::get().to(default_app))
    .route("/apps", web::post().to(new_app))
    .route("/apps/{client_id}/roles", web::put().to(set_roles))
    .route("/apps/{client_id}/secrets", web::post().to(add_secret))
    .route(
        "/apps/{client_id}/certificates",
        web::post().to(add_certificate),
    )
    .route("/apps/{client_id}/enabled", web::put().to(set_enabled))
    .route(
        "/apps/{client_id}/redirect-uris",
        web::post().to(add_redirect_uri),
    )
    .route("/oidc/rotate-key", web::post().to(rotate_key))
    .route("/tokens/expire", web::post().to(expire_tokens))
    .route("/token-lifetime", web::put().to(token_lifetime))
    .route("/delta/expire", web::post().to(expire_delta))
    .route("/faults", web::post().to(add_faults))
    .route("/faults", web::delete().to(clear_faults))
    .route("/ca", web::get().to(ca));
}

fn control(state: &web::Data<State>) -> Control {
    Control {
        state: state.clone().into_inner(),
    }
}

fn bad(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": e.to_string()}))
}

async fn counts(state: web::Data<State>) -> HttpResponse {
    let c = control(&state);
    let mut m = serde_json::Map::new();
    for e in Endpoint::ALL {
        m.insert(e.name().into(), json!(c.request_count(e)));
    }
    m.insert("total".into(), json!(c.request_count(Endpoint::Any)));
    HttpResponse::Ok().json(Value::Object(m))
}

async fn reset_counts(state: web::Data<State>) -> HttpResponse {
    control(&state).reset_counts();
    HttpResponse::NoContent().finish()
}

/// What a client should find: counts of everything a full read returns.
async fn stats(state: web::Data<State>) -> HttpResponse {
    let d = state.directory.read().expect("directory lock");
    HttpResponse::Ok().json(stats_of(&d))
}

pub(crate) fn stats_of(d: &Directory) -> Value {
    let mut direct = serde_json::Map::new();
    let mut transitive = serde_json::Map::new();
    let mut transitive_users = serde_json::Map::new();
    let (mut members, mut transitive_total) = (0, 0);
    for g in d.groups() {
        let m = d.direct_members(&g.id).len();
        let t = d.transitive_members(&g.id);
        members += m;
        transitive_total += t.len();
        direct.insert(g.id.clone(), json!(m));
        transitive.insert(g.id.clone(), json!(t.len()));
        transitive_users.insert(
            g.id.clone(),
            json!(t.iter().filter(|(_, k)| *k == ObjectKind::User).count()),
        );
    }
    json!({
        "tenant_id": d.tenant.id,
        "domains": d.tenant.domains,
        "users": d.users().count(),
        "guests": d.users().filter(|u| u.user_type == UserType::Guest).count(),
        "disabled": d.users().filter(|u| !u.account_enabled).count(),
        "deleted_users": d.deleted_users().count(),
        "groups": d.groups().count(),
        "deleted_groups": d.deleted_groups.len(),
        "members": members,
        "transitive_members": transitive_total,
        "group_members": direct,
        "group_transitive_members": transitive,
        "group_transitive_users": transitive_users,
    })
}

async fn get_directory(state: web::Data<State>) -> HttpResponse {
    let json = state.directory.read().expect("directory lock").to_json();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json)
}

async fn put_directory(state: web::Data<State>, body: String) -> HttpResponse {
    match Directory::from_json(&body) {
        Ok(d) => {
            control(&state).set_directory(d);
            HttpResponse::NoContent().finish()
        }
        Err(e) => bad(format!("{e:#}")),
    }
}

/// A directory change, as the control API takes it.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Change {
    CreateUser {
        upn: String,
        #[serde(default)]
        given_name: String,
        #[serde(default)]
        surname: String,
    },
    RenameUpn {
        user: String,
        new_upn: String,
    },
    SetMail {
        user: String,
        mail: Option<String>,
    },
    SetProxyAddresses {
        user: String,
        proxy_addresses: Vec<String>,
    },
    SetAccountEnabled {
        user: String,
        enabled: bool,
    },
    DeleteUser {
        user: String,
    },
    RestoreUser {
        user: String,
    },
    PurgeUser {
        user: String,
    },
    CreateGroup {
        display_name: String,
        #[serde(default)]
        mail: Option<String>,
    },
    RenameGroup {
        group: String,
        display_name: String,
    },
    DeleteGroup {
        group: String,
    },
    RestoreGroup {
        group: String,
    },
    AddMember {
        group: String,
        member: String,
    },
    RemoveMember {
        group: String,
        member: String,
    },
}

impl Change {
    /// Applies it; a created object's id, else null.
    fn apply(self, d: &mut Directory) -> anyhow::Result<Value> {
        Ok(match self {
            Change::CreateUser {
                upn,
                given_name,
                surname,
            } => json!(d.create_user(&upn, &given_name, &surname)?),
            Change::RenameUpn { user, new_upn } => json!(d.rename_upn(&user, &new_upn)?),
            Change::SetMail { user, mail } => json!(d.set_mail(&user, mail.as_deref())?),
            Change::SetProxyAddresses {
                user,
                proxy_addresses,
            } => json!(d.set_proxy_addresses(&user, &proxy_addresses)?),
            Change::SetAccountEnabled { user, enabled } => {
                json!(d.set_account_enabled(&user, enabled)?)
            }
            Change::DeleteUser { user } => json!(d.delete_user(&user)?),
            Change::RestoreUser { user } => json!(d.restore_user(&user)?),
            Change::PurgeUser { user } => json!(d.purge_user(&user)?),
            Change::CreateGroup { display_name, mail } => {
                json!(d.create_group(&display_name, mail.as_deref())?)
            }
            Change::RenameGroup {
                group,
                display_name,
            } => json!(d.rename_group(&group, &display_name)?),
            Change::DeleteGroup { group } => json!(d.delete_group(&group)?),
            Change::RestoreGroup { group } => json!(d.restore_group(&group)?),
            Change::AddMember { group, member } => json!(d.add_member(&group, &member)?),
            Change::RemoveMember { group, member } => json!(d.remove_member(&group, &member)?),
        })
    }
}

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

/// Applies changes in order on a copy, which replaces the directory only if all succeed.
async fn changes(state: web::Data<State>, body: web::Json<OneOrMany<Change>>) -> HttpResponse {
    let mut d = state.directory.write().expect("directory lock");
    let mut copy = d.clone();
    let mut results = Vec::new();
    for (i, c) in body.into_inner().into_vec().into_iter().enumerate() {
        match c.apply(&mut copy) {
            Ok(v) => results.push(v),
            Err(e) => return bad(format!("change {i}: {e:#}")),
        }
    }
    *d = copy;
    HttpResponse::Ok().json(json!({ "results": results }))
}

async fn default_app(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(control(&state).default_app())
}

#[derive(Deserialize)]
struct NewApp {
    name: String,
    /// Default: both sync roles.
    roles: Option<Vec<String>>,
}

async fn new_app(state: web::Data<State>, body: web::Json<NewApp>) -> HttpResponse {
    let NewApp { name, roles } = body.into_inner();
    let roles = roles.unwrap_or_else(|| SYNC_ROLES.iter().map(|r| r.to_string()).collect());
    let s = state.clone().into_inner();
    // RSA key generation: off the async runtime.
    match tokio::task::spawn_blocking(move || s.register_app(&name, &roles)).await {
        Ok(Ok(creds)) => HttpResponse::Ok().json(creds),
        Ok(Err(e)) => bad(format!("{e:#}")),
        Err(e) => HttpResponse::InternalServerError().json(json!({"error": e.to_string()})),
    }
}

#[derive(Deserialize)]
struct Roles {
    roles: Vec<String>,
}

async fn set_roles(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Roles>,
) -> HttpResponse {
    let roles: Vec<&str> = body.roles.iter().map(String::as_str).collect();
    match control(&state).set_roles(&path, &roles) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct NewSecret {
    /// Days until it expires; negative: already expired. Default 365.
    #[serde(default = "year")]
    expires_in_days: i64,
}

fn year() -> i64 {
    365
}

async fn add_secret(
    state: web::Data<State>,
    path: web::Path<String>,
    body: Option<web::Json<NewSecret>>,
) -> HttpResponse {
    let days = body.map(|b| b.expires_in_days).unwrap_or(365);
    let at = chrono::Utc::now() + chrono::Duration::days(days);
    match control(&state).add_secret(&path, at) {
        Ok(secret) => HttpResponse::Ok().json(json!({ "secret": secret })),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Pem {
    pem: String,
}

async fn add_certificate(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Pem>,
) -> HttpResponse {
    match control(&state).add_certificate(&path, &body.pem) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => bad(format!("{e:#}")),
    }
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_enabled(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Enabled>,
) -> HttpResponse {
    match control(&state).set_app_enabled(&path, body.enabled) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Uri {
    uri: String,
}

async fn add_redirect_uri(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Uri>,
) -> HttpResponse {
    match control(&state).add_redirect_uri(&path, &body.uri) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Rotate {
    #[serde(default = "keep")]
    keep_old: bool,
}

fn keep() -> bool {
    true
}

async fn rotate_key(state: web::Data<State>, body: Option<web::Json<Rotate>>) -> HttpResponse {
    let keep_old = body.map(|b| b.keep_old).unwrap_or(true);
    let c = control(&state);
    match tokio::task::spawn_blocking(move || {
        c.rotate_signing_key(keep_old)
            .map(|kid| (kid, c.signing_kids()))
    })
    .await
    {
        Ok(Ok((kid, kids))) => HttpResponse::Ok().json(json!({"kid": kid, "kids": kids})),
        Ok(Err(e)) => bad(format!("{e:#}")),
        Err(e) => HttpResponse::InternalServerError().json(json!({"error": e.to_string()})),
    }
}

async fn expire_tokens(state: web::Data<State>) -> HttpResponse {
    control(&state).expire_tokens();
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Expiry {
    /// 400 (default) or 410.
    #[serde(default)]
    status: Option<u16>,
}

async fn expire_delta(state: web::Data<State>, body: Option<web::Json<Expiry>>) -> HttpResponse {
    let status = body.and_then(|b| b.status).unwrap_or(400);
    control(&state).expire_delta_tokens(status);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Seconds {
    seconds: u64,
}

async fn token_lifetime(state: web::Data<State>, body: web::Json<Seconds>) -> HttpResponse {
    control(&state).set_token_lifetime(body.seconds);
    HttpResponse::NoContent().finish()
}

/// A fault, as the control API takes it.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Fault {
    Fail(FailSpec),
    Latency {
        ms: u64,
    },
    RateLimit {
        max_per_second: Option<u32>,
        #[serde(default = "one_sec")]
        retry_after_secs: u64,
    },
}

fn one_sec() -> u64 {
    1
}

async fn add_faults(state: web::Data<State>, body: web::Json<OneOrMany<Fault>>) -> HttpResponse {
    let c = control(&state);
    for f in body.into_inner().into_vec() {
        match f {
            Fault::Fail(spec) => c.inject(spec),
            Fault::Latency { ms } => c.set_latency(Duration::from_millis(ms)),
            Fault::RateLimit {
                max_per_second,
                retry_after_secs,
            } => c.set_rate_limit(max_per_second, retry_after_secs),
        }
    }
    HttpResponse::NoContent().finish()
}

async fn clear_faults(state: web::Data<State>) -> HttpResponse {
    control(&state).clear_faults();
    HttpResponse::NoContent().finish()
}

async fn ca(state: web::Data<State>) -> HttpResponse {
    match &state.ca_pem {
        Some(pem) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(pem.clone()),
        None => HttpResponse::NotFound().json(json!({"error": "the emulator serves plain HTTP"})),
    }
}
