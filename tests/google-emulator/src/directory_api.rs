//! Directory API v1: users, groups and members (read-only methods).
//!
//! Listing order is by id (stable across renames). Page tokens are opaque: base64url of a small
//! JSON cursor (listing fingerprint, per-listing nonce, page index, last key) followed by a MAC,
//! so a forged, corrupted or foreign token answers 400 `invalid`. A cursor names the last item
//! served, so changes between pages neither repeat nor skip the items that remain.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::ops::Bound;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::directory::{Directory, Group, Member, MemberType, Owner, User};
use crate::errors::{
    bad_request, domain_not_found, forbidden, insufficient_scopes, invalid, invalid_parameter,
    not_found, unauthenticated, ApiError,
};
use crate::fields::Fields;
use crate::server::preamble;
use crate::state::{Endpoint, State, TokenInfo};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_list))
        .route("/users/{userKey}", web::get().to(users_get))
        .route("/groups", web::get().to(groups_list))
        .route("/groups/{groupKey}", web::get().to(groups_get))
        .route("/groups/{groupKey}/members", web::get().to(members_list))
        .route(
            "/groups/{groupKey}/members/{memberKey}",
            web::get().to(members_get),
        )
        .route(
            "/groups/{groupKey}/hasMember/{memberKey}",
            web::get().to(has_member),
        );
}

const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/admin.directory.";
const USER_SCOPES: &[&str] = &["user.readonly", "user"];
const GROUP_SCOPES: &[&str] = &["group.readonly", "group"];
const MEMBER_SCOPES: &[&str] = &[
    "group.member.readonly",
    "group.member",
    "group.readonly",
    "group",
];

/// Query parameters (first occurrence wins; unknown ones such as `alt`, `quotaUser` ignored).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from(req: &HttpRequest) -> Params {
        Params(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub(crate) fn max_results(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("maxResults") {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(invalid(&format!(
                    "Invalid value '{v}'. Values must be within the range: [1, {max}]"
                ))),
            },
        }
    }
}

/// Bearer token → token info, with the scope and admin checks Google does (`scopes` are
/// suffixes of the Directory scope prefix).
fn authorize(
    state: &State,
    req: &HttpRequest,
    dir: &Directory,
    scopes: &[&str],
) -> Result<TokenInfo, ApiError> {
    authorize_with(state, req, dir, |granted| {
        scopes
            .iter()
            .any(|s| granted.contains(&format!("{SCOPE_PREFIX}{s}")))
    })
}

/// Bearer token → token info: the token must be live, `allowed` must accept its scopes, and the
/// impersonated user must be a super administrator.
pub(crate) fn authorize_with(
    state: &State,
    req: &HttpRequest,
    dir: &Directory,
    allowed: impl Fn(&std::collections::HashSet<String>) -> bool,
) -> Result<TokenInfo, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = match header.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err(unauthenticated()),
    };
    let info = {
        let tokens = state.tokens.lock().expect("tokens lock");
        match tokens.get(token) {
            Some(i) if i.expires_at > std::time::Instant::now() => i.clone(),
            _ => return Err(unauthenticated()),
        }
    };
    if !allowed(&info.scopes) {
        return Err(insufficient_scopes());
    }
    let is_admin = info
        .subject
        .as_deref()
        .and_then(|s| dir.user(s))
        .is_some_and(|u| u.is_admin);
    if !is_admin {
        return Err(forbidden());
    }
    Ok(info)
}

/// `customer` / `domain` check shared by users.list and groups.list.
fn check_account(p: &Params, dir: &Directory) -> Result<(), ApiError> {
    match (p.get("customer"), p.get("domain")) {
        (Some(c), None) => {
            if c == "my_customer" || c.eq_ignore_ascii_case(dir.customer_id()) {
                Ok(())
            } else {
                Err(domain_not_found())
            }
        }
        (None, Some(d)) => {
            if d.eq_ignore_ascii_case(dir.domain()) {
                Ok(())
            } else {
                Err(domain_not_found())
            }
        }
        _ => Err(bad_request("Bad Request")),
    }
}

pub(crate) fn short_hash<T: Hash>(v: T) -> String {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    URL_SAFE_NO_PAD.encode(h.finish().to_be_bytes())
}

fn etag(v: impl Hash) -> String {
    format!("\"emu{}/{}\"", short_hash("etag"), short_hash(v))
}

// ---- page tokens ----

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Fingerprint of the listing (endpoint and filters).
    l: String,
    /// Per-listing nonce.
    n: u32,
    /// Index of the page this token asks for.
    p: usize,
    /// Sort key and id of the last item served.
    k: String,
    i: String,
}

fn mac(state: &State, payload: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(state.page_secret);
    h.update(payload);
    h.finalize()[..8].try_into().expect("8 bytes")
}

fn encode_cursor(state: &State, c: &Cursor) -> String {
    let mut bytes = serde_json::to_vec(c).expect("cursor");
    let m = mac(state, &bytes);
    bytes.extend_from_slice(&m);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(state: &State, token: &str, listing: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    if bytes.len() < 9 {
        return None;
    }
    let (payload, m) = bytes.split_at(bytes.len() - 8);
    if mac(state, payload) != m {
        return None;
    }
    let c: Cursor = serde_json::from_slice(payload).ok()?;
    (c.l == listing).then_some(c)
}

/// Where a listing resumes.
pub(crate) struct Page {
    pub index: usize,
    pub nonce: u32,
    pub after: Option<(String, String)>,
}

pub(crate) fn page_from(state: &State, p: &Params, listing: &str) -> Result<Page, ApiError> {
    match p.get("pageToken").filter(|t| !t.is_empty()) {
        None => Ok(Page {
            index: 0,
            nonce: rand::random(),
            after: None,
        }),
        Some(t) => match decode_cursor(state, t, listing) {
            Some(c) => Ok(Page {
                index: c.p,
                nonce: c.n,
                after: Some((c.k, c.i)),
            }),
            None => Err(invalid("Invalid Input: pageToken")),
        },
    }
}

/// An item with its sort key and id.
pub(crate) type SortEntry<'a, T> = (String, &'a str, T);

/// Takes up to `max` items from `sorted` (sorted by `cmp` on `(key, id)`) after the cursor.
/// Returns the page and the cursor of its last item when more items follow.
pub(crate) fn slice_page<'a, T>(
    sorted: &'a [SortEntry<'a, T>],
    after: &Option<(String, String)>,
    max: usize,
    desc: bool,
) -> (&'a [SortEntry<'a, T>], Option<(String, String)>) {
    let cmp = |a: (&str, &str), b: (&str, &str)| {
        let o = a.0.cmp(b.0).then_with(|| a.1.cmp(b.1));
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    let start = match after {
        None => 0,
        Some((k, i)) => {
            sorted.partition_point(|(k2, i2, _)| cmp((k2, i2), (k, i)) != Ordering::Greater)
        }
    };
    let end = (start + max).min(sorted.len());
    let page = &sorted[start..end];
    let next = (end < sorted.len()).then(|| {
        let last = &sorted[end - 1];
        (last.0.clone(), last.1.to_string())
    });
    (page, next)
}

pub(crate) struct Listing<'a> {
    pub endpoint: Endpoint,
    pub kind: &'static str,
    pub items_key: &'static str,
    pub items: Vec<Value>,
    pub next: Option<(String, String)>,
    pub page: Page,
    pub fingerprint: String,
    pub params: &'a Params,
}

/// Builds the list body, applies `fields`, the truncation and repeat-token faults.
pub(crate) fn respond_list(state: &State, l: Listing<'_>) -> Result<HttpResponse, ApiError> {
    let mut body = Map::new();
    body.insert("kind".into(), json!(l.kind));
    body.insert(
        "etag".into(),
        json!(etag((&l.fingerprint, l.page.index, l.items.len()))),
    );
    let next_token = l.next.map(|(k, i)| {
        encode_cursor(
            state,
            &Cursor {
                l: l.fingerprint.clone(),
                n: l.page.nonce,
                p: l.page.index + 1,
                k,
                i,
            },
        )
    });
    let next_token = match (next_token, l.params.get("pageToken")) {
        (Some(_), Some(asked)) if state.take_repeat_token(l.endpoint) => Some(asked.to_string()),
        (t, _) => t,
    };
    if !l.items.is_empty() {
        body.insert(l.items_key.into(), Value::Array(l.items));
    }
    if let Some(t) = next_token {
        body.insert("nextPageToken".into(), json!(t));
    }
    let truncate = state.take_truncation(l.endpoint, l.page.index);
    render(Value::Object(body), l.params, truncate)
}

/// Serializes a response (pretty by default, as Google does; `prettyPrint=false` compacts),
/// after applying `fields`.
fn render(v: Value, p: &Params, truncate: bool) -> Result<HttpResponse, ApiError> {
    let v = match p.get("fields").filter(|f| !f.is_empty()) {
        None => v,
        Some(f) => match Fields::parse(f) {
            Ok(sel) => sel.apply(&v),
            Err(msg) => return Err(invalid_parameter(&msg)),
        },
    };
    let pretty = !p
        .get("prettyPrint")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let mut body = if pretty {
        serde_json::to_vec_pretty(&v)
    } else {
        serde_json::to_vec(&v)
    }
    .expect("json");
    if truncate {
        body.truncate(body.len() / 2);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=UTF-8")
        .insert_header(("Vary", "Origin, X-Origin, Referer"))
        .body(body))
}

// ---- JSON shapes ----

fn user_json(dir: &Directory, u: &User) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("admin#directory#user"));
    m.insert("id".into(), json!(u.id));
    m.insert(
        "etag".into(),
        json!(etag((
            &u.id,
            &u.primary_email,
            u.suspended,
            u.archived,
            &u.given_name,
            &u.family_name,
            &u.aliases,
            u.is_admin
        ))),
    );
    m.insert("primaryEmail".into(), json!(u.primary_email));
    m.insert(
        "name".into(),
        json!({"givenName": u.given_name, "familyName": u.family_name, "fullName": u.full_name()}),
    );
    m.insert("isAdmin".into(), json!(u.is_admin));
    m.insert("isDelegatedAdmin".into(), json!(false));
    m.insert("lastLoginTime".into(), json!(u.last_login_time));
    m.insert("creationTime".into(), json!(u.creation_time));
    if let Some(t) = &u.deletion_time {
        m.insert("deletionTime".into(), json!(t));
    }
    m.insert("agreedToTerms".into(), json!(true));
    m.insert("suspended".into(), json!(u.suspended));
    if u.suspended {
        m.insert(
            "suspensionReason".into(),
            json!(u.suspension_reason.as_deref().unwrap_or("ADMIN")),
        );
    }
    m.insert("archived".into(), json!(u.archived));
    m.insert("changePasswordAtNextLogin".into(), json!(false));
    m.insert("ipWhitelisted".into(), json!(false));
    let mut emails = vec![json!({"address": u.primary_email, "primary": true})];
    emails.extend(u.aliases.iter().map(|a| json!({"address": a})));
    emails.extend(u.non_editable_aliases.iter().map(|a| json!({"address": a})));
    m.insert("emails".into(), Value::Array(emails));
    if !u.aliases.is_empty() {
        m.insert("aliases".into(), json!(u.aliases));
    }
    if !u.non_editable_aliases.is_empty() {
        m.insert("nonEditableAliases".into(), json!(u.non_editable_aliases));
    }
    m.insert("customerId".into(), json!(dir.customer_id()));
    m.insert("orgUnitPath".into(), json!(u.org_unit_path));
    m.insert("isMailboxSetup".into(), json!(true));
    m.insert("isEnrolledIn2Sv".into(), json!(false));
    m.insert("isEnforcedIn2Sv".into(), json!(false));
    m.insert("includeInGlobalAddressList".into(), json!(true));
    Value::Object(m)
}

fn group_json(g: &Group) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("admin#directory#group"));
    m.insert("id".into(), json!(g.id));
    m.insert(
        "etag".into(),
        json!(etag((&g.id, &g.email, &g.name, g.members.len()))),
    );
    m.insert("email".into(), json!(g.email));
    m.insert("name".into(), json!(g.name));
    m.insert(
        "directMembersCount".into(),
        json!(g.members.len().to_string()),
    );
    m.insert("description".into(), json!(g.description));
    m.insert("adminCreated".into(), json!(g.admin_created));
    if !g.aliases.is_empty() {
        m.insert("aliases".into(), json!(g.aliases));
    }
    if !g.non_editable_aliases.is_empty() {
        m.insert("nonEditableAliases".into(), json!(g.non_editable_aliases));
    }
    Value::Object(m)
}

fn member_json(dir: &Directory, m: &Member) -> Value {
    let kind = m.member_type();
    let mut o = Map::new();
    o.insert("kind".into(), json!("admin#directory#member"));
    o.insert(
        "etag".into(),
        json!(etag((&m.id, &m.email, m.role.as_str()))),
    );
    o.insert("id".into(), json!(m.id));
    if kind != MemberType::Customer {
        if let Some(e) = &m.email {
            o.insert("email".into(), json!(e));
        }
    }
    o.insert("role".into(), json!(m.role.as_str()));
    o.insert("type".into(), json!(kind.as_str()));
    let status = match kind {
        MemberType::User => {
            let suspended = dir.users_by_id().get(&m.id).is_some_and(|u| u.suspended);
            Some(if suspended { "SUSPENDED" } else { "ACTIVE" })
        }
        MemberType::Group | MemberType::Customer => Some("ACTIVE"),
        MemberType::External => None,
    };
    if let Some(s) = status {
        o.insert("status".into(), json!(s));
    }
    if kind == MemberType::User {
        o.insert("delivery_settings".into(), json!("ALL_MAIL"));
    }
    Value::Object(o)
}

// ---- user query syntax ----

enum Op {
    Eq,
    Contains,
    Prefix,
}

struct Clause {
    field: String,
    op: Op,
    value: String,
}

fn parse_query(q: &str, fields: &[&str]) -> Result<Vec<Clause>, ApiError> {
    let mut out = Vec::new();
    let mut rest = q.trim();
    while !rest.is_empty() {
        // A clause runs to the next whitespace outside single quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            if c == '\'' {
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                end = i;
                break;
            }
        }
        let clause = &rest[..end];
        rest = rest[end..].trim_start();
        let pos = clause.find([':', '=']);
        let Some(pos) = pos else {
            // Free text matches names and addresses.
            out.push(Clause {
                field: "*".into(),
                op: Op::Contains,
                value: clause.trim_matches('\'').to_lowercase(),
            });
            continue;
        };
        let field = &clause[..pos];
        if !fields.contains(&field) {
            return Err(invalid("Invalid Input"));
        }
        let mut value = clause[pos + 1..].trim_matches('\'').to_lowercase();
        let op = if clause.as_bytes()[pos] == b'=' {
            Op::Eq
        } else if value.ends_with('*') {
            value.pop();
            Op::Prefix
        } else {
            Op::Contains
        };
        out.push(Clause {
            field: field.into(),
            op,
            value,
        });
    }
    Ok(out)
}

fn text_matches(op: &Op, hay: &str, value: &str) -> bool {
    let hay = hay.to_lowercase();
    match op {
        Op::Eq => hay == value,
        Op::Contains => hay.contains(value),
        Op::Prefix => hay.starts_with(value),
    }
}

fn user_matches(u: &User, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| {
        let addrs = || {
            std::iter::once(&u.primary_email)
                .chain(&u.aliases)
                .chain(&u.non_editable_aliases)
        };
        match c.field.as_str() {
            "email" => addrs().any(|a| text_matches(&c.op, a, &c.value)),
            "givenName" => text_matches(&c.op, &u.given_name, &c.value),
            "familyName" => text_matches(&c.op, &u.family_name, &c.value),
            "name" => text_matches(&c.op, &u.full_name(), &c.value),
            "orgUnitPath" => text_matches(&Op::Eq, &u.org_unit_path, &c.value),
            "isAdmin" => u.is_admin.to_string() == c.value,
            "isSuspended" => u.suspended.to_string() == c.value,
            "isArchived" => u.archived.to_string() == c.value,
            _ => {
                text_matches(&Op::Contains, &u.full_name(), &c.value)
                    || addrs().any(|a| text_matches(&Op::Contains, a, &c.value))
            }
        }
    })
}

fn group_matches(g: &Group, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| match c.field.as_str() {
        "email" => std::iter::once(&g.email)
            .chain(&g.aliases)
            .any(|a| text_matches(&c.op, a, &c.value)),
        "name" => text_matches(&c.op, &g.name, &c.value),
        _ => {
            text_matches(&Op::Contains, &g.name, &c.value)
                || text_matches(&Op::Contains, &g.email, &c.value)
        }
    })
}

// ---- handlers ----

type Reply = Result<HttpResponse, ApiError>;

async fn users_list(state: web::Data<State>, req: HttpRequest) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::UsersList).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, USER_SCOPES)?;
    check_account(&p, &dir)?;
    let max = p.max_results(100, 500)?;
    let clauses = match p.get("query") {
        Some(q) => parse_query(q, USER_QUERY_FIELDS)?,
        None => Vec::new(),
    };
    let order = match p.get("orderBy") {
        None => None,
        Some(o @ ("email" | "givenName" | "familyName")) => Some(o),
        Some(_) => return Err(invalid("Invalid Input: orderBy")),
    };
    let desc = order.is_some()
        && p.get("sortOrder")
            .is_some_and(|s| s.eq_ignore_ascii_case("DESCENDING"));
    let show_deleted = p.flag("showDeleted");
    let fingerprint = short_hash((
        "users",
        p.get("customer"),
        p.get("domain"),
        p.get("query"),
        order,
        desc,
        show_deleted,
    ));
    let page = page_from(&state, &p, &fingerprint)?;
    let source = if show_deleted {
        dir.deleted_users_by_id()
    } else {
        dir.users_by_id()
    };
    let (items, next) = match order {
        // Fast path: walk the id index from the cursor.
        None => {
            let it = source
                .range((lower_bound(&page), Bound::Unbounded))
                .map(|(_, u)| u)
                .filter(|u| user_matches(u, &clauses));
            let (chunk, next) = take_page(it, max, |u| u.id.clone());
            (chunk.iter().map(|u| user_json(&dir, u)).collect(), next)
        }
        Some(order) => {
            let mut sorted: Vec<SortEntry<'_, &User>> = source
                .values()
                .filter(|u| user_matches(u, &clauses))
                .map(|u| {
                    let key = match order {
                        "email" => u.primary_email.to_lowercase(),
                        "givenName" => u.given_name.to_lowercase(),
                        _ => u.family_name.to_lowercase(),
                    };
                    (key, u.id.as_str(), u)
                })
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            if desc {
                sorted.reverse();
            }
            let (chunk, next) = slice_page(&sorted, &page.after, max, desc);
            (
                chunk.iter().map(|(_, _, u)| user_json(&dir, u)).collect(),
                next,
            )
        }
    };
    respond_list(
        &state,
        Listing {
            endpoint: Endpoint::UsersList,
            kind: "admin#directory#users",
            items_key: "users",
            items,
            next,
            page,
            fingerprint,
            params: &p,
        },
    )
}

const USER_QUERY_FIELDS: &[&str] = &[
    "email",
    "givenName",
    "familyName",
    "name",
    "isAdmin",
    "isSuspended",
    "isArchived",
    "orgUnitPath",
];

fn lower_bound(page: &Page) -> Bound<String> {
    match &page.after {
        Some((_, id)) => Bound::Excluded(id.clone()),
        None => Bound::Unbounded,
    }
}

/// Takes up to `max` items, looking one further to know whether a next page exists.
fn take_page<'a, T: 'a>(
    mut it: impl Iterator<Item = &'a T>,
    max: usize,
    id: impl Fn(&T) -> String,
) -> (Vec<&'a T>, Option<(String, String)>) {
    let chunk: Vec<&T> = it.by_ref().take(max).collect();
    let next = match (it.next().is_some(), chunk.last()) {
        (true, Some(last)) => Some((String::new(), id(last))),
        _ => None,
    };
    (chunk, next)
}

async fn users_get(state: web::Data<State>, req: HttpRequest, key: web::Path<String>) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::UsersGet).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, USER_SCOPES)?;
    let u = dir.user(&key).ok_or_else(|| not_found("userKey"))?;
    render(user_json(&dir, u), &p, false)
}

async fn groups_list(state: web::Data<State>, req: HttpRequest) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::GroupsList).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, GROUP_SCOPES)?;
    // Groups of one user (direct memberships), or of the whole account.
    let member_id = match p.get("userKey") {
        Some(k) => {
            if p.get("customer").is_some() {
                return Err(bad_request("Bad Request"));
            }
            let id = dir
                .user(k)
                .map(|u| u.id.clone())
                .or_else(|| dir.group(k).map(|g| g.id.clone()));
            Some(id.ok_or_else(|| not_found("userKey"))?)
        }
        None => {
            check_account(&p, &dir)?;
            None
        }
    };
    let max = p.max_results(200, 200)?;
    let clauses = match p.get("query") {
        Some(q) => parse_query(q, &["email", "name"])?,
        None => Vec::new(),
    };
    let fingerprint = short_hash((
        "groups",
        p.get("customer"),
        p.get("domain"),
        p.get("userKey"),
        p.get("query"),
    ));
    let page = page_from(&state, &p, &fingerprint)?;
    let it = dir
        .groups_by_id()
        .range((lower_bound(&page), Bound::Unbounded))
        .map(|(_, g)| g)
        .filter(|g| member_id.as_ref().is_none_or(|m| g.members.contains_key(m)))
        .filter(|g| group_matches(g, &clauses));
    let (chunk, next) = take_page(it, max, |g| g.id.clone());
    let items = chunk.iter().map(|g| group_json(g)).collect();
    respond_list(
        &state,
        Listing {
            endpoint: Endpoint::GroupsList,
            kind: "admin#directory#groups",
            items_key: "groups",
            items,
            next,
            page,
            fingerprint,
            params: &p,
        },
    )
}

async fn groups_get(state: web::Data<State>, req: HttpRequest, key: web::Path<String>) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::GroupsGet).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, GROUP_SCOPES)?;
    let g = dir.group(&key).ok_or_else(|| not_found("groupKey"))?;
    render(group_json(g), &p, false)
}

async fn members_list(state: web::Data<State>, req: HttpRequest, key: web::Path<String>) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::MembersList).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, MEMBER_SCOPES)?;
    let group = dir.group(&key).ok_or_else(|| not_found("groupKey"))?;
    let max = p.max_results(200, 200)?;
    let roles: Option<Vec<String>> = match p.get("roles") {
        None | Some("") => None,
        Some(r) => {
            let list: Vec<String> = r.split(',').map(|s| s.trim().to_uppercase()).collect();
            if list
                .iter()
                .any(|s| !matches!(s.as_str(), "OWNER" | "MANAGER" | "MEMBER"))
            {
                return Err(invalid("Invalid Input: roles"));
            }
            Some(list)
        }
    };
    let fingerprint = short_hash(("members", &group.id, &roles));
    let page = page_from(&state, &p, &fingerprint)?;
    let it = group
        .members
        .range((lower_bound(&page), Bound::Unbounded))
        .map(|(_, m)| m)
        .filter(|m| {
            roles
                .as_ref()
                .is_none_or(|r| r.iter().any(|x| x == m.role.as_str()))
        });
    let (chunk, next) = take_page(it, max, |m| m.id.clone());
    let items = chunk.iter().map(|m| member_json(&dir, m)).collect();
    respond_list(
        &state,
        Listing {
            endpoint: Endpoint::MembersList,
            kind: "admin#directory#members",
            items_key: "members",
            items,
            next,
            page,
            fingerprint,
            params: &p,
        },
    )
}

async fn members_get(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::MembersGet).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, MEMBER_SCOPES)?;
    let (group_key, member_key) = path.into_inner();
    let group = dir.group(&group_key).ok_or_else(|| not_found("groupKey"))?;
    let member_id = match dir.owner_of(&member_key) {
        Some(Owner::User(id)) | Some(Owner::Group(id)) => id.clone(),
        None => member_key.clone(),
    };
    let found = group.members.get(&member_id).or_else(|| {
        group.members.values().find(|m| {
            m.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&member_key))
        })
    });
    let m = found.ok_or_else(|| not_found("memberKey"))?;
    render(member_json(&dir, m), &p, false)
}

async fn has_member(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Reply {
    if let Some(r) = preamble(&state, Endpoint::HasMember).await {
        return Ok(r);
    }
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize(&state, &req, &dir, MEMBER_SCOPES)?;
    let (group_key, member_key) = path.into_inner();
    if dir.group(&group_key).is_none() {
        return Err(not_found("groupKey"));
    }
    let is_member = dir
        .has_member(&group_key, &member_key)
        .ok_or_else(|| invalid("Invalid Input: memberKey"))?;
    render(json!({"isMember": is_member}), &p, false)
}
