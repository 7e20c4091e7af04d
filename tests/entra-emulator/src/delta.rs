//! Delta queries (reference §3): `/users/delta` and `/groups/delta` (also spelled
//! `/microsoft.graph.delta()`), rounds paged by `@odata.nextLink` (`$skiptoken`) and closed by an
//! `@odata.deltaLink` (`$deltatoken`), `@removed` for soft-deleted (`changed`) and purged
//! (`deleted`) objects, `members@delta` on groups, `$deltatoken=latest`, and expired tokens.
//!
//! A token is the directory's change sequence number when its round began, with the query
//! options it was made with: a later round returns what changed after it. Simplifications,
//! said in the README: any change to an object returns it (Graph tracks only the selected
//! properties), and a group's `members@delta` comes whole on one page.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::directory::{Directory, ObjectKind};
use crate::graph::{
    authorize, graph_error, group_json, group_props, ok_json, parse_query, project, user_json,
    RequestIds, GROUP_ROLES, USER_DEFAULT, USER_PROPS, USER_ROLES,
};
use crate::server::preamble;
use crate::state::{Endpoint, State};

/// Objects per delta page: the server's choice at Graph, fixed here.
pub(crate) const DELTA_PAGE: usize = 100;

/// What a delta token or a delta page token stands for.
#[derive(Serialize, Deserialize)]
struct Token {
    /// `users` or `groups`.
    k: String,
    /// Changes after this sequence number; `None`: the initial round (everything).
    since: Option<u64>,
    /// Sequence number when the round began: the next round's `since`.
    round: u64,
    /// Position in the round (page tokens only).
    pos: usize,
    /// `$select`, carried by the token as Graph does.
    sel: Option<Vec<String>>,
    /// Delta generation: tokens of an older one have expired.
    ep: u64,
}

fn encode(t: &Token) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).expect("a token serialises"))
}

fn decode(s: &str) -> Option<Token> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
}

pub(crate) async fn users_delta(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    delta(state, req, ObjectKind::User).await
}

pub(crate) async fn groups_delta(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    delta(state, req, ObjectKind::Group).await
}

async fn delta(state: web::Data<State>, req: HttpRequest, kind: ObjectKind) -> HttpResponse {
    let (endpoint, roles, name): (_, &[&str], _) = match kind {
        ObjectKind::User => (Endpoint::UsersDelta, &USER_ROLES, "users"),
        ObjectKind::Group => (Endpoint::GroupsDelta, &GROUP_ROLES, "groups"),
    };
    if let Some(r) = preamble(&state, &req, endpoint).await {
        return r;
    }
    let ids = RequestIds::of(&req);
    if let Err(r) = authorize(&state, &req, roles, &ids) {
        return r;
    }
    let mut known: Vec<&str> = match kind {
        ObjectKind::User => USER_PROPS.to_vec(),
        ObjectKind::Group => group_props(),
    };
    if kind == ObjectKind::Group {
        known.push("members");
    }
    let q = match parse_query(&req, &known, name, &ids) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let epoch = state.delta_epoch();
    let d = state.directory.read().expect("directory lock");
    let latest = q.skiptoken.is_none() && q.deltatoken.as_deref() == Some("latest");
    let token = match q.skiptoken.as_ref().or(q.deltatoken.as_ref()) {
        None => Token {
            k: name.into(),
            since: None,
            round: d.seq,
            pos: 0,
            sel: q.select.clone(),
            ep: epoch,
        },
        Some(_) if latest => {
            // `latest`: no enumeration, only a link to changes from now on.
            let tok = Token {
                k: name.into(),
                since: Some(d.seq),
                round: d.seq,
                pos: 0,
                sel: q.select.clone(),
                ep: epoch,
            };
            return respond(&state, name, &tok, vec![], None, &ids);
        }
        Some(t) => match decode(t) {
            Some(tok) if tok.k == name && tok.ep == epoch => tok,
            Some(tok) if tok.k == name => return expired(&state, name, &ids),
            _ => {
                return graph_error(
                    400,
                    "Request_BadRequest",
                    "The specified delta token is not valid.",
                    &ids,
                )
            }
        },
    };
    // A deltaLink starts a new round: it takes the changes up to now.
    let token = if q.deltatoken.is_some() && q.skiptoken.is_none() {
        Token {
            since: Some(token.round),
            round: d.seq,
            pos: 0,
            ..token
        }
    } else {
        token
    };
    let entries = match kind {
        ObjectKind::User => user_entries(&d, &token),
        ObjectKind::Group => group_entries(&d, &token),
    };
    let end = (token.pos + DELTA_PAGE).min(entries.len());
    let page = entries[token.pos.min(entries.len())..end].to_vec();
    let next = (end < entries.len()).then(|| Token {
        pos: end,
        ..clone_token(&token)
    });
    drop(d);
    respond(&state, name, &token, page, next, &ids)
}

fn clone_token(t: &Token) -> Token {
    Token {
        k: t.k.clone(),
        since: t.since,
        round: t.round,
        pos: t.pos,
        sel: t.sel.clone(),
        ep: t.ep,
    }
}

fn respond(
    state: &State,
    name: &str,
    token: &Token,
    page: Vec<Value>,
    next: Option<Token>,
    ids: &RequestIds,
) -> HttpResponse {
    let base = format!("{}/v1.0/{name}/delta", state.base_url);
    let ctx = match &token.sel {
        Some(s) => format!("{}/v1.0/$metadata#{name}({})", state.base_url, s.join(",")),
        None => format!("{}/v1.0/$metadata#{name}", state.base_url),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx));
    let truncated = state
        .delta_truncations
        .lock()
        .expect("delta truncations lock")
        .remove(name);
    match next {
        _ if truncated => None,
        Some(n) => body.insert(
            "@odata.nextLink".into(),
            json!(format!("{base}?$skiptoken={}", encode(&n))),
        ),
        None => {
            let closing = Token {
                since: Some(token.round),
                pos: 0,
                ..clone_token(token)
            };
            body.insert(
                "@odata.deltaLink".into(),
                json!(format!("{base}?$deltatoken={}", encode(&closing))),
            )
        }
    };
    body.insert("value".into(), Value::Array(page));
    ok_json(&Value::Object(body), ids)
}

/// An expired token: Graph's `syncStateNotFound`, as 400 or, when so set, as 410 with a
/// `Location` to start over.
fn expired(state: &State, name: &str, ids: &RequestIds) -> HttpResponse {
    let status = state.delta_expiry_status();
    let mut r = graph_error(
        status,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        ids,
    );
    if status == 410 {
        let location = format!("{}/v1.0/{name}/delta", state.base_url);
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&location) {
            r.headers_mut().insert(actix_web::http::header::LOCATION, v);
        }
    }
    r
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// Selected (or default) properties of a full object, leaving out never-set (null) ones as
/// delta responses do; `id` always.
fn entry(
    full: &Map<String, Value>,
    sel: Option<&[String]>,
    default: Option<&[&str]>,
) -> Map<String, Value> {
    let mut m: Map<String, Value> = project(full, sel, default)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    m.insert("id".into(), full["id"].clone());
    m
}

fn user_entries(d: &Directory, t: &Token) -> Vec<Value> {
    let sel = t.sel.as_deref();
    let mut out: Vec<Value> = d
        .users()
        .filter(|u| t.since.is_none_or(|s| u.changed > s))
        .map(|u| Value::Object(entry(&user_json(u), sel, Some(&USER_DEFAULT))))
        .collect();
    if let Some(since) = t.since {
        out.extend(
            d.user_tombstones
                .iter()
                .filter(|x| x.seq > since)
                .map(|x| removed(&x.id, x.reason)),
        );
    }
    out
}

fn group_entries(d: &Directory, t: &Token) -> Vec<Value> {
    let with_members = t
        .sel
        .as_ref()
        .is_none_or(|s| s.iter().any(|p| p == "members"));
    let sel: Option<Vec<String>> = t
        .sel
        .as_ref()
        .map(|s| s.iter().filter(|p| *p != "members").cloned().collect());
    let mut out = Vec::new();
    for g in d.groups() {
        let member_changes: Vec<&(u64, String, bool)> = match t.since {
            None => vec![],
            Some(s) => g.member_log.iter().filter(|(seq, _, _)| *seq > s).collect(),
        };
        let changed = t.since.is_none_or(|s| g.changed > s);
        if !changed && (member_changes.is_empty() || !with_members) {
            continue;
        }
        let mut m = entry(&group_json(g), sel.as_deref(), None);
        if with_members {
            let typed = |id: &str| {
                let kind = match d.live_kind(id) {
                    Some(ObjectKind::Group) => "#microsoft.graph.group",
                    _ => "#microsoft.graph.user",
                };
                json!({"@odata.type": kind, "id": id})
            };
            let members: Vec<Value> = match t.since {
                None => d
                    .direct_members(&g.id)
                    .iter()
                    .map(|(id, _)| typed(id))
                    .collect(),
                Some(_) => member_changes
                    .iter()
                    .map(|(_, id, added)| {
                        let mut v = typed(id);
                        if !added {
                            // Graph says `deleted` even when only the membership went.
                            v["@removed"] = json!({"reason": "deleted"});
                        }
                        v
                    })
                    .collect(),
            };
            m.insert("members@delta".into(), Value::Array(members));
        }
        out.push(Value::Object(m));
    }
    if let Some(since) = t.since {
        out.extend(
            d.group_tombstones
                .iter()
                .filter(|x| x.seq > since)
                .map(|x| removed(&x.id, x.reason)),
        );
    }
    out
}
