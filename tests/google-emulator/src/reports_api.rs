//! Reports API v1 `activities.list` for `applicationName=admin`: the admin activity log
//! (`shared/reference/google-reports-api.md` §1–§5), served from [`crate::Directory::activities`].
//!
//! As Google: newest first; `startTime` and `endTime` inclusive; `eventName` and `filters`
//! (`NAME==VALUE`, `NAME<>VALUE`, comma-separated) narrow the result; `items` is absent when
//! nothing matched and `nextPageToken` on the last page; page tokens are bound to the query. An
//! activity becomes visible only once the configured lag has passed since its `id.time`
//! (`Control::set_event_lag`; Google's admin log lags by minutes). The token needs the audit
//! scope, and its subject must be a super administrator. Windows reaching past 180 days, or with
//! a start not before the end, are refused with Google's 400. Filtered queries count against
//! Google's separate 250-per-minute budget (503 beyond it).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration as Age, SecondsFormat, Utc};

use crate::activity::{Activity, REPORTS_SCOPE};
use crate::directory_api::{
    authorize_with, page_from, respond_list, short_hash, slice_page, Listing, Params, SortEntry,
};
use crate::errors::{bad_request, invalid, ApiError};
use crate::server::preamble;
use crate::state::{Endpoint, State};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/activity/users/{userKey}/applications/{applicationName}",
        web::get().to(activities_list),
    );
}

/// Applications `activities.list` knows; only `admin` has entries here.
const APPLICATIONS: &[&str] = &[
    "admin",
    "groups_enterprise",
    "groups",
    "login",
    "token",
    "drive",
    "calendar",
    "mobile",
    "saml",
    "user_accounts",
    "chat",
    "meet",
    "gmail",
    "rules",
    "jamboard",
    "access_transparency",
    "context_aware_access",
    "gcp",
    "chrome",
    "data_studio",
    "keep",
    "vault",
    "directory_sync",
    "profile",
];

const WINDOW_MESSAGE: &str = "Invalid request: Start time and end time should be within last 180 days. Start time should be less than end time.";

/// One `filters` term.
struct Filter {
    name: String,
    equal: bool,
    value: String,
}

fn parse_filters(s: &str) -> Result<Vec<Filter>, ApiError> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (name, equal, value) = if let Some((n, v)) = t.split_once("==") {
                (n, true, v)
            } else if let Some((n, v)) = t.split_once("<>") {
                (n, false, v)
            } else {
                return Err(invalid(&format!("Invalid value '{t}' for filters")));
            };
            Ok(Filter {
                name: name.trim().to_string(),
                equal,
                value: value.trim().to_string(),
            })
        })
        .collect()
}

fn parse_time(p: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match p.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| invalid(&format!("Invalid value '{v}' for {name}"))),
    }
}

fn matches(a: &Activity, event_name: Option<&str>, filters: &[Filter]) -> bool {
    if event_name.is_some_and(|n| n != a.name) {
        return false;
    }
    filters.iter().all(|f| match a.parameter(&f.name) {
        Some(v) => (v == f.value) == f.equal,
        // A parameter foreign to the event: Google's report is empty for it.
        None => false,
    })
}

async fn activities_list(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    if let Some(r) = preamble(&state, Endpoint::Activities).await {
        return Ok(r);
    }
    let (user_key, application) = path.into_inner();
    let p = Params::from(&req);
    let dir = state.directory.read().expect("directory lock");
    authorize_with(&state, &req, &dir, |scopes| scopes.contains(REPORTS_SCOPE))?;
    if !APPLICATIONS.contains(&application.as_str()) {
        return Err(invalid(&format!(
            "Invalid value '{application}'. Values must match the following regular expression: '(admin)|(calendar)|(drive)|(login)|(mobile)|(token)|(groups)|(saml)|(chat)|(gplus)|(rules)|(jamboard)|(meet)|(user_accounts)|(access_transparency)|(groups_enterprise)|(gcp)|(context_aware_access)|(data_studio)|(chrome)|(keep)|(vault)|(directory_sync)|(profile)'"
        )));
    }
    // For `admin` the user is the actor: `all`, or an administrator by address or id.
    let actor = match user_key.as_str() {
        "all" => None,
        key => match dir.user(key) {
            Some(u) => Some(u.id.clone()),
            None => return Err(bad_request("Bad Request")),
        },
    };
    let max = p.max_results(1000, 1000)?;
    let now = Utc::now();
    let start = parse_time(&p, "startTime")?;
    let end = parse_time(&p, "endTime")?;
    let oldest = now - Age::days(180);
    if start.is_some_and(|s| s < oldest || s >= end.unwrap_or(now))
        || end.is_some_and(|e| e < oldest)
    {
        return Err(invalid(WINDOW_MESSAGE));
    }
    let event_name = p.get("eventName").filter(|v| !v.is_empty());
    let filters = parse_filters(p.get("filters").unwrap_or_default())?;
    if (event_name.is_some() || !filters.is_empty() || actor.is_some())
        && !state.take_filter_query()
    {
        return Err(ApiError {
            status: 503,
            reason: "backendError",
            message: "Quota exceeded for quota metric 'Filter queries' and limit 'Filter queries per minute'.".into(),
        });
    }
    let visible_before = now - Age::from_std(state.event_lag()).unwrap_or(Age::zero());
    let end = end.unwrap_or(now);
    let time = |a: &Activity| a.time.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut sorted: Vec<SortEntry<'_, &Activity>> = Vec::new();
    let qualifiers: Vec<String> = dir
        .activities()
        .iter()
        .map(|a| a.unique_qualifier.to_string())
        .collect();
    for (a, q) in dir.activities().iter().zip(&qualifiers) {
        let in_window = start.is_none_or(|s| a.time >= s) && a.time <= end;
        let visible = a.time <= visible_before;
        let by_actor = actor.as_ref().is_none_or(|id| *id == a.actor_profile_id);
        if in_window && visible && by_actor && matches(a, event_name, &filters) {
            sorted.push((time(a), q.as_str(), a));
        }
    }
    // Newest first; ties broken by the qualifier, so that paging is stable.
    sorted.sort_by(|x, y| (y.0.as_str(), y.1).cmp(&(x.0.as_str(), x.1)));
    let fingerprint = short_hash((
        "activities",
        &user_key,
        &application,
        p.get("startTime"),
        p.get("endTime"),
        event_name,
        p.get("filters"),
    ));
    let page = page_from(&state, &p, &fingerprint)?;
    let (items, next) = if application == "admin" {
        let (items, next) = slice_page(&sorted, &page.after, max, true);
        let items = items
            .iter()
            .map(|(_, _, a)| a.to_json(dir.customer_id(), dir.domain()))
            .collect();
        (items, next)
    } else {
        (Vec::new(), None)
    };
    respond_list(
        &state,
        Listing {
            endpoint: Endpoint::Activities,
            kind: "admin#reports#activities",
            items_key: "items",
            items,
            next,
            page,
            fingerprint,
            params: &p,
        },
    )
}
