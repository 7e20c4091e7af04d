//! Item 6, sign-in: completed Sign in with Google flows per second through dirsync, against the
//! emulator's own rate for the Google half of the same flow.
//!
//! On a server of its own (started after the API measurements of each database, on the largest
//! directory, the 10 % scope synced so that the users exist and hold `login`): an OAuth client is
//! registered at the emulator and `PUT /api/v1/auth/oidc` configures sign-in as
//! `tests/support/oidc.rs` does (`allowed_domains` = `example.com`). The server reads Google's
//! discovery document from the emulator (`DIRSYNC_GOOGLE_DISCOVERY_URL`) and has its sign-in limit
//! (`DIRSYNC_RATE_LIMIT_SIGNIN_PER_MINUTE`, default 30 starts a minute per client address — every
//! bench client is 127.0.0.1) raised to 10⁹ the way the API limit is: the limiter stays in the
//! request path but never trips.
//!
//! A *completion* is a browser's flow driven by a client that follows no redirects:
//! `GET /oidc/login?login_hint=…` (302 to the emulator's authorization URL with state, nonce and
//! PKCE, and the sign-in cookie) → that URL at the emulator (302 with the code back to the
//! redirect URI) → `GET /oidc/signin?state=…&code=…` with the sign-in cookie (dirsync exchanges the code at the emulator's token endpoint,
//! validates the ID token with its cached JWKS, creates the session) → 303 with a
//! `dirsync_session=dss_…` cookie. Anything else is a failed completion. The first sign-in fills
//! the JWKS cache and its cookie must authenticate `GET /api/v1/me`; the emulator's request counts
//! then show that no measured sign-in fetched the JWKS (reported), that every session came from a
//! code exchange, and the server's `sessions` table must have grown by exactly the completions.
//!
//! The yardstick is the same Google-side work done by the bench client directly: the
//! authorization request (as dirsync builds it, with a fresh S256 challenge) → `POST /token` with
//! the code, the verifier and the client secret → a 200 holding an `id_token`. Both run as closed
//! loops with the same number of clients, in alternating rounds (ABBA), medians; more than 1 %
//! failed completions fails the harness. Report only: no target. The context line adds the
//! absolute rates per round and the server process's CPU time per completion (its database's
//! own CPU not included on PostgreSQL).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dirsync_entity::{sessions, user_privileges, users};
use dirsync_google_emulator::Endpoint;
use rand::distributions::{Alphanumeric, DistString};
use reqwest::header;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::Api;
use crate::google::Google;
use crate::load;
use crate::report::{Row, Target};
use crate::Size;

/// The OAuth client registered at the emulator (Google's id format).
const CLIENT_ID: &str = "123456789012-bench.apps.googleusercontent.com";
/// The domain of the generated directories, the only one allowed to sign in.
const DOMAIN: &str = "example.com";

/// How long and how hard.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Each measured closed-loop run.
    run: Duration,
    /// Each side's discarded warm-up run.
    warm_up: Duration,
    /// Alternating rounds (dirsync, emulator).
    rounds: usize,
    /// Concurrent clients.
    concurrency: usize,
    /// Completions one run may start at most.
    max_per_run: usize,
    /// Distinct users signing in (cycled).
    users: usize,
}

/// The plan for a size: a few seconds a round at `small` (the CI smoke).
pub fn plan(size: Size) -> Plan {
    let (run, rounds) = match size {
        Size::Small => (Duration::from_secs(2), 3),
        Size::Full => (Duration::from_secs(5), 3),
    };
    Plan {
        run,
        warm_up: Duration::from_millis(500),
        rounds,
        concurrency: 16,
        max_per_run: 100_000,
        users: 1000,
    }
}

/// What one database's server achieved.
#[derive(Debug, Clone)]
pub struct SigninResult {
    /// Median completions per second through dirsync.
    pub dirsync: f64,
    /// Median authorize + token exchanges per second at the emulator alone.
    pub emulator: f64,
    /// Per round, for the log and the context.
    rounds: Vec<(f64, f64)>,
    concurrency: usize,
    /// Completions through dirsync in the measured rounds.
    measured: usize,
    /// Failed completions in the measured rounds (dirsync, emulator).
    failed: (usize, usize),
    /// JWKS requests the first sign-in caused (the cold fetch).
    jwks_cold: usize,
    /// JWKS and discovery requests during the measured dirsync rounds.
    jwks_measured: usize,
    discovery_measured: usize,
    /// Users in the server's database, and how many of them signed in.
    users_in_db: usize,
    signers: usize,
    /// The server process's CPU time per measured completion.
    cpu_per_completion: Duration,
}

/// The flow's fixed parts, shared by the clients.
struct Flow {
    http: reqwest::Client,
    /// dirsync's base URL.
    server: String,
    /// `{emulator}/o/oauth2/v2/auth`.
    authorize: String,
    /// `{emulator}/token`.
    token: String,
    /// `{server}/oidc/signin`.
    redirect_uri: String,
    client_secret: String,
    /// Addresses to sign in as (cycled).
    hints: Vec<String>,
}

fn local(url: &str) -> anyhow::Result<()> {
    load::ensure_local(&reqwest::Url::parse(url).with_context(|| format!("not a URL: {url}"))?)
}

fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    Ok(r.headers()
        .get(header::LOCATION)
        .context("a redirect without Location")?
        .to_str()?
        .to_string())
}

/// `r` when it answered `status`; else an error naming `what`, with the first 200 characters
/// of the body.
async fn expect(
    r: reqwest::Response,
    status: u16,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let got = r.status();
    if got != status {
        let body: String = r
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        bail!("{what} answered {got}: {body}");
    }
    Ok(r)
}

impl Flow {
    /// One completion through dirsync; returns the session token from the cookie.
    async fn through_dirsync(&self, i: usize) -> anyhow::Result<String> {
        let hint = &self.hints[i % self.hints.len()];
        let login = reqwest::Url::parse_with_params(
            &format!("{}/oidc/login", self.server),
            &[("login_hint", hint)],
        )?;
        let r = self.http.get(login).send().await?;
        let r = expect(r, 302, "GET /oidc/login").await?;
        let auth = location(&r)?;
        // The sign-in cookie binds the sign-in to this client, as to a browser.
        let binding = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .find(|c| c.starts_with("dirsync_signin="))
            .map(str::to_string)
            .context("GET /oidc/login set no sign-in cookie")?;
        ensure!(
            auth.starts_with(&format!("{}?", self.authorize)),
            "GET /oidc/login sent the browser to {auth}, not to the emulator"
        );
        let r = self.http.get(&auth).send().await?;
        let r = expect(r, 302, "the emulator's authorization endpoint").await?;
        let back = location(&r)?;
        ensure!(
            back.starts_with(&format!("{}?", self.redirect_uri)),
            "the emulator sent the browser to {back}, not to the redirect URI"
        );
        let r = self
            .http
            .get(&back)
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::COOKIE, binding)
            .send()
            .await?;
        let r = expect(r, 303, "GET /oidc/signin").await?;
        ensure!(
            r.headers().contains_key(header::LOCATION),
            "GET /oidc/signin answered 303 without Location"
        );
        let token = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("dirsync_session="))
            .and_then(|c| c.split(';').next())
            .filter(|t| t.starts_with("dss_"))
            .map(str::to_string)
            .context("GET /oidc/signin answered 303 without a session cookie")?;
        r.bytes().await?;
        Ok(token)
    }

    /// The Google half alone: authorize, then the code exchange.
    async fn at_emulator(&self, i: usize) -> anyhow::Result<()> {
        let hint = &self.hints[i % self.hints.len()];
        let (verifier, state, nonce) = {
            let mut rng = rand::thread_rng();
            (
                Alphanumeric.sample_string(&mut rng, 64),
                Alphanumeric.sample_string(&mut rng, 43),
                Alphanumeric.sample_string(&mut rng, 43),
            )
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let auth = reqwest::Url::parse_with_params(
            &self.authorize,
            &[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("scope", "openid email profile"),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("hd", DOMAIN),
                ("login_hint", hint.as_str()),
            ],
        )?;
        let r = self.http.get(auth).send().await?;
        let r = expect(r, 302, "the emulator's authorization endpoint").await?;
        let back = reqwest::Url::parse(&location(&r)?)?;
        let param = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        ensure!(
            param("state").as_deref() == Some(state.as_str()),
            "the emulator's redirect lost the state: {back}"
        );
        let code = param("code").with_context(|| format!("no code in {back}"))?;
        let r = self
            .http
            .post(&self.token)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", self.client_secret.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await?;
        let r = expect(r, 200, "POST /token").await?;
        let answer: serde_json::Value = r.json().await?;
        ensure!(
            answer["id_token"]
                .as_str()
                .is_some_and(|t| t.split('.').count() == 3),
            "POST /token answered no ID token"
        );
        Ok(())
    }
}

/// Addresses of up to `n` users who may sign in: synchronized, enabled and holding `login`
/// here, active at Google. Also returns the number of users in the database.
async fn signers(
    db: &DatabaseConnection,
    google: &Google,
    n: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let all = users::Entity::find().all(db).await?;
    let login: std::collections::HashSet<uuid::Uuid> = user_privileges::Entity::find()
        .filter(user_privileges::Column::Privilege.eq("login"))
        .select_only()
        .column(user_privileges::Column::UserId)
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let dir = google.emu.control().directory();
    let mut hints: Vec<String> = all
        .iter()
        .filter(|u| {
            u.auth_method == dirsync_entity::AuthMethod::Directory
                && !u.disabled
                && login.contains(&u.id)
        })
        .filter_map(|u| dir.user(u.directory_id.as_deref()?))
        .filter(|g| !g.suspended && !g.archived && g.deletion_time.is_none())
        .map(|g| g.primary_email.clone())
        .collect();
    hints.sort();
    let hints = crate::scenario::sample(&hints, n);
    ensure!(
        !hints.is_empty(),
        "none of the {} synchronized users may sign in",
        all.len()
    );
    Ok((hints, all.len()))
}

async fn session_count(db: &DatabaseConnection) -> anyhow::Result<usize> {
    Ok(sessions::Entity::find().count(db).await? as usize)
}

/// Measures item 6 against the server of `api` (its database `db`), whose users were synced
/// from `google`. See the module doc.
pub async fn bench(
    api: &Api,
    db: &DatabaseConnection,
    google: &Google,
    what: &str,
    plan: Plan,
    server_cpu: impl Fn() -> anyhow::Result<f64>,
) -> anyhow::Result<SigninResult> {
    let emu = google.emu.base_url();
    let redirect_uri = format!("{}/oidc/signin", api.base);
    local(&api.base)?;
    local(&emu)?;
    let client_secret = format!("GOCSPX-{}", dirsync_tests::random_secret(28));
    let control = google.emu.control();
    control.add_oauth_client(CLIENT_ID, &client_secret, &[&redirect_uri]);
    api.expect(
        200,
        reqwest::Method::PUT,
        "/api/v1/auth/oidc",
        Some(json!({
            "client_id": CLIENT_ID,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "allowed_domains": [DOMAIN],
            "session_ttl_minutes": 480
        })),
    )
    .await?;
    let (hints, users_in_db) = signers(db, google, plan.users).await?;
    let flow = Arc::new(Flow {
        // A browser that follows nothing by itself, straight to 127.0.0.1.
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?,
        server: api.base.clone(),
        authorize: format!("{emu}/o/oauth2/v2/auth"),
        token: google.emu.token_uri(),
        redirect_uri,
        client_secret,
        hints,
    });
    let sessions0 = session_count(db).await?;

    // One sign-in on a cold cache; its cookie must authenticate.
    let jwks0 = control.request_count(Endpoint::Jwks);
    let token = flow.through_dirsync(0).await.context("the first sign-in")?;
    let jwks_cold = control.request_count(Endpoint::Jwks) - jwks0;
    let me: serde_json::Value = flow
        .http
        .get(format!("{}/api/v1/me", api.base))
        .header(header::COOKIE, format!("dirsync_session={token}"))
        .send()
        .await?
        .error_for_status()
        .context("GET /api/v1/me with the first sign-in's cookie")?
        .json()
        .await?;
    ensure!(
        me["kind"] == "user"
            && me["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&flow.hints[0])),
        "the first sign-in's session is not {}'s: {me}",
        flow.hints[0]
    );
    let mut completions = 1;

    let ours = |d: Duration| {
        let flow = flow.clone();
        load::closed_loop(
            "sign-in completions",
            plan.concurrency,
            d,
            plan.max_per_run,
            move |i| {
                let flow = flow.clone();
                async move { flow.through_dirsync(i).await.map(drop) }
            },
        )
    };
    let theirs = |d: Duration| {
        let flow = flow.clone();
        load::closed_loop(
            "sign-in completions",
            plan.concurrency,
            d,
            plan.max_per_run,
            move |i| {
                let flow = flow.clone();
                async move { flow.at_emulator(i).await }
            },
        )
    };
    // Warm-ups (connections, pools), discarded; dirsync's caches are warm from the first one.
    completions += ours(plan.warm_up).await?.ok;
    theirs(plan.warm_up).await?;

    let (mut a, mut b, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    let (mut measured, mut failed) = (0, (0, 0));
    let (mut jwks_measured, mut discovery_measured) = (0, 0);
    let mut cpu = 0.0;
    for round in 0..plan.rounds {
        let mut pair = (0.0, 0.0);
        // ABBA order, so that a drift in the machine's speed hits both alike.
        for dirsync_side in [round % 2 == 0, round % 2 == 1] {
            if dirsync_side {
                let count = |e| control.request_count(e);
                let (j, d, t) = (
                    count(Endpoint::Jwks),
                    count(Endpoint::Discovery),
                    count(Endpoint::Token),
                );
                let c = server_cpu()?;
                let r = ours(plan.run).await?;
                cpu += server_cpu()? - c;
                jwks_measured += count(Endpoint::Jwks) - j;
                discovery_measured += count(Endpoint::Discovery) - d;
                let exchanges = count(Endpoint::Token) - t;
                ensure!(
                    exchanges >= r.ok,
                    "{} sign-ins completed with only {exchanges} code exchanges at the emulator",
                    r.ok
                );
                completions += r.ok;
                measured += r.ok;
                failed.0 += r.errors;
                pair.0 = r.rps();
                a.push(r.rps());
            } else {
                let r = theirs(plan.run).await?;
                failed.1 += r.errors;
                pair.1 = r.rps();
                b.push(r.rps());
            }
        }
        crate::scenario::note(format!(
            "  sign-in round {}: dirsync {:.0}/s, emulator {:.0}/s",
            round + 1,
            pair.0,
            pair.1
        ));
        rounds.push(pair);
    }
    let created = session_count(db).await? - sessions0;
    ensure!(
        created == completions,
        "{completions} sign-ins completed but {created} sessions were created"
    );
    let (dirsync, emulator) = (crate::scenario::median(&a), crate::scenario::median(&b));
    crate::scenario::note(format!(
        "{what} sign-in: dirsync {dirsync:.0} completions/s, emulator {emulator:.0}/s → {:.2}; JWKS fetched {jwks_cold}× by the first sign-in, {jwks_measured}× in {measured} measured ones; server CPU {:.2} ms a completion",
        dirsync / emulator,
        cpu * 1e3 / measured.max(1) as f64
    ));
    Ok(SigninResult {
        dirsync,
        emulator,
        rounds,
        concurrency: plan.concurrency,
        measured,
        failed,
        jwks_cold,
        jwks_measured,
        discovery_measured,
        users_in_db,
        signers: flow.hints.len(),
        cpu_per_completion: Duration::from_secs_f64(cpu / measured.max(1) as f64),
    })
}

/// The table's item 6 row for one database.
pub fn row(db: &str, r: &SigninResult) -> Row {
    Row::ratio(
        "6",
        format!(
            "sign-in completions/s (`/oidc/login` → emulator → `/oidc/signin` → session cookie) ÷ the emulator's authorize + token rate, {} clients, warm JWKS (fetched {}× in {} measured sign-ins)",
            r.concurrency, r.jwks_measured, r.measured
        ),
        db,
        r.dirsync / r.emulator,
        Target::None,
    )
}

/// Absolute figures behind the row.
pub fn context(db: &str, r: &SigninResult) -> String {
    let rounds = r
        .rounds
        .iter()
        .map(|(a, b)| format!("{a:.0}/{b:.0}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{db}: sign-in {:.0} completions/s (emulator's authorize + token alone {:.0}/s; rounds {rounds}); \
         server CPU {:.2} ms a completion; {} users signing in of {} in the database; failed completions {} (dirsync), {} (emulator); \
         JWKS fetched {}× cold, {}× and discovery {}× over {} measured sign-ins\n",
        r.dirsync,
        r.emulator,
        r.cpu_per_completion.as_secs_f64() * 1e3,
        r.signers,
        r.users_in_db,
        r.failed.0,
        r.failed.1,
        r.jwks_cold,
        r.jwks_measured,
        r.discovery_measured,
        r.measured
    )
}
