//! Microsoft Graph v1.0 reads (reference §2, §4): users, groups, members and transitive
//! members, with `$select`, `$top`, `$filter`, `$count`, absolute `@odata.nextLink`s pointing at
//! the emulator, application permissions, and Graph's error JSON.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::directory::{Directory, Group, ObjectKind, User, UserType};
use crate::filter::{self, Filter};
use crate::server::preamble;
use crate::state::{Endpoint, State, TokenInfo};

const JSON_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Roles that allow reading users (§2.7).
pub(crate) const USER_ROLES: [&str; 4] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Roles that allow reading groups and their members.
pub(crate) const GROUP_ROLES: [&str; 6] = [
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Properties a user list returns without `$select`.
pub(crate) const USER_DEFAULT: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_list))
        // msgraph-sdk sends `delta()`; the docs write `delta`.
        .route("/users/delta", web::get().to(crate::delta::users_delta))
        .route("/users/delta()", web::get().to(crate::delta::users_delta))
        .route(
            "/users/microsoft.graph.delta()",
            web::get().to(crate::delta::users_delta),
        )
        .route("/users/{id}", web::get().to(users_get))
        .route("/users/{id}/memberOf", web::get().to(member_of))
        .route("/groups", web::get().to(groups_list))
        // msgraph-sdk sends `delta()`; the docs write `delta`.
        .route("/groups/delta", web::get().to(crate::delta::groups_delta))
        .route("/groups/delta()", web::get().to(crate::delta::groups_delta))
        .route(
            "/groups/microsoft.graph.delta()",
            web::get().to(crate::delta::groups_delta),
        )
        .route("/groups/{id}", web::get().to(groups_get))
        .route("/groups/{id}/members", web::get().to(members))
        .route("/groups/{id}/members/{cast}", web::get().to(members_cast))
        .route(
            "/groups/{id}/transitiveMembers",
            web::get().to(transitive_members),
        )
        .route(
            "/groups/{id}/transitiveMembers/{cast}",
            web::get().to(transitive_members_cast),
        );
}

/// The ids Graph puts on every response, and the one the client sent.
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    pub fn of(req: &HttpRequest) -> RequestIds {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

/// A Graph error (reference §4).
pub(crate) fn graph_error(
    status: u16,
    code: &str,
    message: &str,
    ids: &RequestIds,
) -> HttpResponse {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": ids.request_id,
            "client-request-id": ids.client_request_id,
        }
    }});
    let mut r = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    r.insert_header((header::CONTENT_TYPE, JSON_TYPE))
        .insert_header(("request-id", ids.request_id.as_str()))
        .insert_header(("client-request-id", ids.client_request_id.as_str()));
    if status == 401 {
        r.insert_header((
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ));
    }
    r.body(body.to_string())
}

/// The default error code and message for a status (injected failures).
pub(crate) fn default_error(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("BadRequest", "Bad request."),
        401 => ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
        403 => ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
        404 => ("Request_ResourceNotFound", "Resource does not exist."),
        410 => ("resyncRequired", "Resync required."),
        429 => ("TooManyRequests", "Too many requests from Identifier:emulator under category:throttle.aad.ags.appId.large. Please try again later."),
        503 => ("serviceNotAvailable", "Service unavailable."),
        501 => ("NotImplemented", "This operation target is not yet supported."),
        _ => ("UnknownError", ""),
    }
}

pub(crate) fn ok_json(v: &Value, ids: &RequestIds) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, JSON_TYPE))
        .insert_header(("request-id", ids.request_id.as_str()))
        .insert_header(("client-request-id", ids.client_request_id.as_str()))
        .body(v.to_string())
}

/// The bearer token's grant, or Graph's 401 / 403.
// The error is the response itself, built at most once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn authorize(
    state: &State,
    req: &HttpRequest,
    roles: &[&str],
    ids: &RequestIds,
) -> Result<TokenInfo, HttpResponse> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            ids,
        ));
    };
    let info = state
        .tokens
        .lock()
        .expect("tokens lock")
        .get(token)
        .cloned();
    let Some(info) = info else {
        // What Graph says about a token that is not a JWT, and about one it did not issue.
        let message = if token.contains('.') {
            "Access token validation failure. Invalid audience."
        } else {
            "IDX14100: JWT is not well formed, there are no dots (.)."
        };
        return Err(graph_error(401, "InvalidAuthenticationToken", message, ids));
    };
    if info.expires_at <= Instant::now() {
        return Err(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            ids,
        ));
    }
    if !roles.iter().any(|r| info.roles.contains(*r)) {
        return Err(graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            ids,
        ));
    }
    Ok(info)
}

/// Every property the emulator knows of a user, as Graph spells and types them.
pub(crate) fn user_json(u: &User) -> Map<String, Value> {
    let v = json!({
        "id": u.id,
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": null,
        "mail": u.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": u.surname,
        "userPrincipalName": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "otherMails": u.other_mails,
        "proxyAddresses": u.proxy_addresses,
        "userType": match u.user_type { UserType::Member => "Member", UserType::Guest => "Guest" },
        "mailNickname": u.user_principal_name.split(['@', '#']).next().unwrap_or_default(),
        "onPremisesSyncEnabled": null,
        "onPremisesImmutableId": null,
        "onPremisesSamAccountName": null,
        "onPremisesUserPrincipalName": null,
        "employeeId": null,
        "department": null,
        "createdDateTime": null,
        "deletedDateTime": u.deleted_date_time,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Every property the emulator knows of a group; a group list returns all of them by default.
pub(crate) fn group_json(g: &Group) -> Map<String, Value> {
    let nickname = g
        .mail
        .as_deref()
        .and_then(|m| m.split('@').next())
        .map(str::to_string)
        .unwrap_or_else(|| g.display_name.replace(' ', "").to_lowercase());
    let v = json!({
        "id": g.id,
        "deletedDateTime": g.deleted_date_time,
        "classification": null,
        "createdDateTime": null,
        "creationOptions": [],
        "description": g.description,
        "displayName": g.display_name,
        "expirationDateTime": null,
        "groupTypes": g.group_types,
        "isAssignableToRole": null,
        "mail": g.mail,
        "mailEnabled": g.mail_enabled,
        "mailNickname": nickname,
        "membershipRule": null,
        "membershipRuleProcessingState": null,
        "onPremisesDomainName": null,
        "onPremisesLastSyncDateTime": null,
        "onPremisesNetBiosName": null,
        "onPremisesSamAccountName": null,
        "onPremisesSecurityIdentifier": null,
        "onPremisesSyncEnabled": null,
        "preferredDataLocation": null,
        "preferredLanguage": null,
        "proxyAddresses": g.proxy_addresses,
        "renewedDateTime": null,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": g.security_enabled,
        "securityIdentifier": null,
        "theme": null,
        "visibility": null,
        "onPremisesProvisioningErrors": [],
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The query options of a read.
pub(crate) struct Query {
    /// Everything but `$skiptoken`, in the order sent: what a nextLink repeats.
    pub raw: Vec<(String, String)>,
    pub select: Option<Vec<String>>,
    pub top: usize,
    pub filter: Option<Filter>,
    pub count: bool,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
}

// As for `authorize`: the error is the response.
#[allow(clippy::result_large_err)]
/// Parses and checks the query options against the entity's properties (`known`); `Err` is
/// Graph's 400.
pub(crate) fn parse_query(
    req: &HttpRequest,
    known: &[&str],
    entity: &str,
    ids: &RequestIds,
) -> Result<Query, HttpResponse> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let eventual = req
        .headers()
        .get("ConsistencyLevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let bad = |code: &str, msg: String| graph_error(400, code, &msg, ids);
    let mut q = Query {
        raw: Vec::new(),
        select: None,
        top: 100,
        filter: None,
        count: false,
        skiptoken: None,
        deltatoken: None,
    };
    let mut advanced = false;
    for (k, v) in pairs {
        // Graph accepts the options with or without `$`, in any case.
        let name = k.trim_start_matches('$').to_ascii_lowercase();
        match name.as_str() {
            "skiptoken" => {
                q.skiptoken = Some(v);
                continue;
            }
            "deltatoken" => {
                q.deltatoken = Some(v);
                continue;
            }
            "select" => {
                let mut names = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let Some(canon) = known.iter().find(|k| k.eq_ignore_ascii_case(p)) else {
                        return Err(bad(
                            "Request_BadRequest",
                            format!("Could not find a property named '{p}' on type 'microsoft.graph.{entity}'."),
                        ));
                    };
                    names.push(canon.to_string());
                }
                q.select = Some(names);
            }
            "top" => {
                let n: i64 = v.parse().map_err(|_| {
                    bad(
                        "BadRequest",
                        format!("Invalid value '{v}' for query option '$top'."),
                    )
                })?;
                if !(1..=999).contains(&n) {
                    return Err(bad(
                        "Request_UnsupportedQuery",
                        format!("Invalid page size specified: '{n}'. Must be between 1 and 999 inclusive."),
                    ));
                }
                q.top = n as usize;
            }
            "filter" => {
                let (f, adv) = filter::parse(&v)
                    .map_err(|e| bad("BadRequest", format!("Invalid filter clause: {e}")))?;
                let mut props = Vec::new();
                f.properties(&mut props);
                if let Some(p) = props
                    .iter()
                    .find(|p| !known.iter().any(|k| k.eq_ignore_ascii_case(p)))
                {
                    return Err(bad(
                        "BadRequest",
                        format!("Invalid filter clause: Could not find a property named '{p}' on type 'microsoft.graph.{entity}'."),
                    ));
                }
                advanced |= adv;
                q.filter = Some(f);
            }
            "count" => q.count = v.eq_ignore_ascii_case("true"),
            "search" | "orderby" => {
                if !eventual {
                    return Err(bad(
                        "Request_UnsupportedQuery",
                        format!("Request with ${name} query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"),
                    ));
                }
                return Err(graph_error(
                    501,
                    "NotImplemented",
                    &format!("${name} is not emulated."),
                    ids,
                ));
            }
            "skip" => {
                return Err(bad(
                    "Request_BadRequest",
                    format!("'$skip' is not supported by the service for entity '{entity}'."),
                ))
            }
            "expand" => {
                return Err(graph_error(
                    501,
                    "NotImplemented",
                    "$expand is not emulated.",
                    ids,
                ))
            }
            _ => {}
        }
        q.raw.push((k, v));
    }
    if advanced && !(eventual && q.count) {
        return Err(bad(
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property of resource. Operators ne, not and endsWith need the header ConsistencyLevel: eventual and $count=true.".into(),
        ));
    }
    if q.count && !eventual {
        return Err(bad(
            "Request_BadRequest",
            "$count is not currently supported.".into(),
        ));
    }
    Ok(q)
}

/// Applies `$select` (or the default set) to a full object.
pub(crate) fn project(
    full: &Map<String, Value>,
    select: Option<&[String]>,
    default: Option<&[&str]>,
) -> Map<String, Value> {
    match (select, default) {
        (Some(names), _) => names
            .iter()
            .filter_map(|n| full.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
        (None, Some(names)) => names
            .iter()
            .filter_map(|n| full.get(*n).map(|v| (n.to_string(), v.clone())))
            .collect(),
        (None, None) => full.clone(),
    }
}

/// `{base}/v1.0/$metadata#<what>[(<select>)]`.
fn context(state: &State, what: &str, select: Option<&[String]>, suffix: &str) -> String {
    match select {
        Some(s) => format!(
            "{}/v1.0/$metadata#{what}({}){suffix}",
            state.base_url,
            s.join(",")
        ),
        None => format!("{}/v1.0/$metadata#{what}{suffix}", state.base_url),
    }
}

/// The absolute link to the next page: the same path and options, and `$skiptoken`.
pub(crate) fn next_link(state: &State, req: &HttpRequest, q: &Query, token: &str) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q.raw {
        ser.append_pair(k, v);
    }
    ser.append_pair("$skiptoken", token);
    format!("{}{}?{}", state.base_url, req.path(), ser.finish())
}

/// A page token: the listing it belongs to and a position in it.
pub(crate) fn encode_token(kind: &str, pos: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}|{pos}"))
}

pub(crate) fn decode_token(kind: &str, token: &str) -> Option<String> {
    let s = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (k, pos) = s.split_once('|')?;
    (k == kind).then(|| pos.to_string())
}

fn bad_token(ids: &RequestIds) -> HttpResponse {
    graph_error(400, "Request_BadRequest", "Invalid paging token.", ids)
}

/// A listed object, rendered to JSON only when a page (or a `$filter`) needs it: a listing of
/// 100,000 users renders the 999 users of its page, not every user for every page.
#[derive(Clone, Copy)]
enum Obj<'a> {
    User(&'a User),
    Group(&'a Group),
}

impl Obj<'_> {
    fn json(self) -> Map<String, Value> {
        match self {
            Obj::User(u) => user_json(u),
            Obj::Group(g) => group_json(g),
        }
    }
}

/// A listing of full objects in a stable order, for [`page`].
struct Listing<'a> {
    /// Names the listing in its page tokens.
    kind: &'a str,
    /// `@odata.context`.
    context: String,
    /// (position key, object, `@odata.type`); the key is the id for users and groups.
    items: Vec<(&'a str, Obj<'a>, Option<&'static str>)>,
    /// Page tokens hold an index (member lists) rather than the last id (users, groups).
    by_index: bool,
    /// Properties of untyped items without `$select` (`None`: all).
    default: Option<&'a [&'a str]>,
}

/// One page of a listing: `$filter`, then `$top` items from the page token's position.
fn page(
    state: &State,
    req: &HttpRequest,
    q: &Query,
    listing: Listing,
    ids: &RequestIds,
) -> HttpResponse {
    let Listing {
        kind,
        context: ctx,
        items,
        by_index,
        default,
    } = listing;
    let items: Vec<_> = match &q.filter {
        Some(f) => items
            .into_iter()
            .filter(|(_, obj, _)| f.matches(&Value::Object(obj.json())))
            .collect(),
        None => items,
    };
    let total = items.len();
    let start = match &q.skiptoken {
        None => 0,
        Some(t) => match decode_token(kind, t) {
            None => return bad_token(ids),
            Some(pos) if by_index => match pos.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return bad_token(ids),
            },
            Some(after) => items.partition_point(|(id, _, _)| *id <= after.as_str()),
        },
    };
    let end = (start + q.top).min(total);
    let mut value = Vec::new();
    for (_, obj, odata_type) in &items[start.min(total)..end] {
        let mut m = Map::new();
        if let Some(t) = odata_type {
            m.insert("@odata.type".into(), json!(t));
        }
        // Without $select a member carries its own type's default properties.
        let default = match odata_type {
            Some("#microsoft.graph.user") => Some(&USER_DEFAULT[..]),
            Some(_) => None,
            None => default,
        };
        m.extend(project(&obj.json(), q.select.as_deref(), default));
        value.push(Value::Object(m));
    }
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx));
    if q.count && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), json!(total));
    }
    if end < total {
        let pos = if by_index {
            end.to_string()
        } else {
            items[end - 1].0.to_string()
        };
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(state, req, q, &encode_token(kind, &pos))),
        );
    }
    body.insert("value".into(), Value::Array(value));
    ok_json(&Value::Object(body), ids)
}

pub(crate) const USER_PROPS: [&str; 24] = [
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "otherMails",
    "proxyAddresses",
    "userType",
    "mailNickname",
    "onPremisesSyncEnabled",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesUserPrincipalName",
    "employeeId",
    "department",
    "createdDateTime",
    "deletedDateTime",
];

pub(crate) fn group_props() -> Vec<&'static str> {
    let g = group_json(&Group {
        id: String::new(),
        display_name: String::new(),
        description: None,
        mail: None,
        mail_enabled: false,
        security_enabled: false,
        group_types: vec![],
        proxy_addresses: vec![],
        members: vec![],
        deleted_date_time: None,
        changed: 0,
        member_log: vec![],
    });
    GROUP_PROPS
        .iter()
        .copied()
        .filter(|p| g.contains_key(*p))
        .collect()
}

const GROUP_PROPS: [&str; 33] = [
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "creationOptions",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
    "members",
];

async fn users_list(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::UsersList).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &USER_ROLES, &ids) {
        return r;
    }
    let q = match parse_query(&req, &USER_PROPS, "user", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    // Read-locked until the page is rendered.
    let d = state.directory.read().expect("directory lock");
    let items = d
        .users()
        .map(|u| (u.id.as_str(), Obj::User(u), None))
        .collect();
    let ctx = context(&state, "users", q.select.as_deref(), "");
    let listing = Listing {
        kind: "users",
        context: ctx,
        items,
        by_index: false,
        default: Some(&USER_DEFAULT),
    };
    page(&state, &req, &q, listing, &ids)
}

async fn users_get(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::UsersGet).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &USER_ROLES, &ids) {
        return r;
    }
    let q = match parse_query(&req, &USER_PROPS, "user", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let key = path.into_inner();
    let full = {
        let d = state.directory.read().expect("directory lock");
        d.user(&key).map(user_json)
    };
    let Some(full) = full else {
        return not_found(&key, &ids);
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&state, "users", q.select.as_deref(), "/$entity")),
    );
    body.extend(project(&full, q.select.as_deref(), Some(&USER_DEFAULT)));
    ok_json(&Value::Object(body), &ids)
}

fn not_found(key: &str, ids: &RequestIds) -> HttpResponse {
    graph_error(
        404,
        "Request_ResourceNotFound",
        &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        ids,
    )
}

async fn groups_list(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::GroupsList).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &GROUP_ROLES, &ids) {
        return r;
    }
    let props = group_props();
    let q = match parse_query(&req, &props, "group", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    // Read-locked until the page is rendered.
    let d = state.directory.read().expect("directory lock");
    let items = d
        .groups()
        .map(|g| (g.id.as_str(), Obj::Group(g), None))
        .collect();
    let ctx = context(&state, "groups", q.select.as_deref(), "");
    let listing = Listing {
        kind: "groups",
        context: ctx,
        items,
        by_index: false,
        default: None,
    };
    page(&state, &req, &q, listing, &ids)
}

async fn groups_get(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::GroupsGet).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &GROUP_ROLES, &ids) {
        return r;
    }
    let props = group_props();
    let q = match parse_query(&req, &props, "group", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let id = path.into_inner().to_ascii_lowercase();
    let full = {
        let d = state.directory.read().expect("directory lock");
        d.groups.get(&id).map(group_json)
    };
    let Some(full) = full else {
        return not_found(&id, &ids);
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&state, "groups", q.select.as_deref(), "/$entity")),
    );
    body.extend(project(&full, q.select.as_deref(), None));
    ok_json(&Value::Object(body), &ids)
}

#[derive(Clone, Copy)]
enum Cast {
    None,
    User,
    Group,
}

async fn members(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    member_list(state, req, path.into_inner(), false, Cast::None).await
}

async fn transitive_members(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    member_list(state, req, path.into_inner(), true, Cast::None).await
}

async fn members_cast(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, cast) = path.into_inner();
    with_cast(state, req, id, cast, false).await
}

async fn transitive_members_cast(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, cast) = path.into_inner();
    with_cast(state, req, id, cast, true).await
}

async fn with_cast(
    state: web::Data<State>,
    req: HttpRequest,
    id: String,
    cast: String,
    transitive: bool,
) -> HttpResponse {
    let c = match cast.as_str() {
        "microsoft.graph.user" => Cast::User,
        "microsoft.graph.group" => Cast::Group,
        _ => {
            let ids = RequestIds::of(&req);
            return graph_error(
                400,
                "Request_BadRequest",
                &format!("Unsupported segment type. ODataQuery: groups/{id}/members/{cast}"),
                &ids,
            );
        }
    };
    member_list(state, req, id, transitive, c).await
}

/// `GET /users/{id}/memberOf`: the live groups the live user is a direct member of (Graph
/// also lists directory roles and administrative units, which this tenant has none of), with
/// `@odata.type`, `$select` and paging as for members. A soft-deleted user is not found.
async fn member_of(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::MemberOf).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &GROUP_ROLES, &ids) {
        return r;
    }
    let q = match parse_query(&req, &group_props(), "directoryObject", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let key = path.into_inner();
    // Read-locked until the page is rendered.
    let guard = state.directory.read().expect("directory lock");
    let d: &Directory = &guard;
    let Some(uid) = d.user(&key).map(|u| u.id.clone()) else {
        return not_found(&key, &ids);
    };
    let items: Vec<_> = d
        .groups()
        .filter(|g| g.members.contains(&uid))
        .map(|g| (g.id.as_str(), Obj::Group(g), Some("#microsoft.graph.group")))
        .collect();
    let kind = format!("mo:{uid}");
    let ctx = context(&state, "directoryObjects", q.select.as_deref(), "");
    let listing = Listing {
        kind: &kind,
        context: ctx,
        items,
        by_index: true,
        default: None,
    };
    page(&state, &req, &q, listing, &ids)
}

/// `members` and `transitiveMembers`: directory objects with `@odata.type`; `$select` applies
/// to each object by its own type (a property the type lacks is left out).
async fn member_list(
    state: web::Data<State>,
    req: HttpRequest,
    group: String,
    transitive: bool,
    cast: Cast,
) -> HttpResponse {
    let endpoint = if transitive {
        Endpoint::TransitiveMembers
    } else {
        Endpoint::Members
    };
    if let Some(r) = preamble(&state, &req, endpoint).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, &GROUP_ROLES, &ids) {
        return r;
    }
    let mut props: Vec<&str> = USER_PROPS.to_vec();
    for p in group_props() {
        if !props.contains(&p) {
            props.push(p);
        }
    }
    let q = match parse_query(&req, &props, "directoryObject", &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let gid = group.to_ascii_lowercase();
    // Read-locked until the page is rendered.
    let guard = state.directory.read().expect("directory lock");
    let d: &Directory = &guard;
    if !d.groups.contains_key(&gid) {
        return not_found(&group, &ids);
    }
    let list = if transitive {
        d.transitive_members(&gid)
    } else {
        d.direct_members(&gid)
    };
    let items = list
        .into_iter()
        .filter(|(_, k)| match cast {
            Cast::None => true,
            Cast::User => *k == ObjectKind::User,
            Cast::Group => *k == ObjectKind::Group,
        })
        .map(|(id, kind)| match kind {
            ObjectKind::User => {
                let u = &d.users[&id];
                (u.id.as_str(), Obj::User(u), Some("#microsoft.graph.user"))
            }
            ObjectKind::Group => {
                let g = &d.groups[&id];
                (g.id.as_str(), Obj::Group(g), Some("#microsoft.graph.group"))
            }
        })
        .collect::<Vec<_>>();
    let kind = format!("{}:{gid}", if transitive { "tm" } else { "m" });
    let ctx = context(&state, "directoryObjects", q.select.as_deref(), "");
    let listing = Listing {
        kind: &kind,
        context: ctx,
        items,
        by_index: true,
        default: None,
    };
    page(&state, &req, &q, listing, &ids)
}
