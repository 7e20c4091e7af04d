//! Building and running the application: database, secrets, HTTP server (plain or TLS) and the
//! background loops, under one `select!` so that a loop that dies is reported.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use anyhow::Context;
use std::time::Duration;

use dirsync_core::{
    jobs::Worker,
    secrets::Cipher,
    settings::Settings,
    sync::{runner::SyncRunner, schedule},
};
use sea_orm::DatabaseConnection;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::error;
use crate::middleware::{self, RouteTable};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;

/// Largest JSON body accepted by ordinary endpoints. The key-file upload has its own, larger limit.
pub const JSON_LIMIT: usize = 64 * 1024;

/// The OpenAPI document of the API: the routes' own annotations plus the common parts.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    crate::openapi::apply_common(&mut doc);
    doc
}

/// A built, bound, not yet running application.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Connects the database (migrating it), loads the secret key and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = dirsync_core::db::connect_and_migrate(&settings).await?;
        let cipher = Cipher::from_settings(&settings)?;
        Self::build_with(settings, db, cipher)
    }

    /// Like [`Application::build`] with an already opened database.
    pub fn build_with(
        settings: Settings,
        db: DatabaseConnection,
        cipher: Cipher,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("while binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        // One access-token cache for the process: jobs, the connection test and the group
        // listing reuse one token per key and admin.
        let metrics = dirsync_core::metrics::Metrics::new();
        let directory =
            dirsync_core::directory::DirectoryAccess::from_settings(&settings, metrics.clone());
        let runner = SyncRunner::new(cipher.clone(), directory.clone());
        let worker = Worker::new(
            db.clone(),
            runner,
            Duration::from_secs(settings.job_lease_seconds),
            metrics.clone(),
            &settings.host_name,
        );
        let notifier = dirsync_core::notifications::Sender::new(
            db.clone(),
            cipher.clone(),
            settings.notification_retry_delays.clone(),
            &settings.outbound,
        )?;
        let oidc = dirsync_core::oidc::GoogleOidc::new(settings.google_discovery_url.clone())
            .with_outbound(&settings.outbound);
        let state = AppState {
            oidc: Arc::new(oidc),
            db,
            settings: Arc::new(settings),
            cipher,
            worker,
            directory,
            metrics,
            notifier,
        };
        let doc = openapi_document();
        let table = RouteTable::from_openapi(&doc);
        let app_state = state.clone();
        let guards = web::Data::new(crate::limits::Guards::new(&state.settings, &state.db));
        let mut server = HttpServer::new(move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .configure(routes::configure)
                .split_for_parts();
            app.app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(table.clone()))
                .app_data(guards.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(JSON_LIMIT)
                        .error_handler(error::json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", doc.clone()),
                )
                // A browser that signed in without `return_to` lands on `/`: send it to the UI.
                .route(
                    "/",
                    web::get().to(|| async {
                        actix_web::HttpResponse::SeeOther()
                            .insert_header((actix_web::http::header::LOCATION, "/swagger-ui/"))
                            .finish()
                    }),
                )
                .default_service(web::to(middleware::fallback))
                .wrap(from_fn(crate::limits::guard))
                .wrap(from_fn(middleware::observe))
        })
        // Signals are handled by `run_until_stopped`, which also hands a running job over.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
        if let Some(n) = state.settings.workers {
            server = server.workers(n);
        }
        let server = match (&state.settings.tls_cert, &state.settings.tls_key) {
            (Some(cert), Some(key)) => {
                let config = tls_config(cert, key)?;
                server.listen_rustls_0_23(listener, config)?
            }
            _ => server.listen(listener)?,
        }
        .run();
        tracing::info!(
            port,
            tls = state.settings.tls_cert.is_some(),
            "dirsync listening"
        );
        Ok(Application {
            port,
            server,
            state,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the HTTP server (tests use it to stop a server they dropped).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared state (database, settings, cipher).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM/Ctrl-C, with the sync worker and the scheduler beside the server. A
    /// background loop that ends ends the process with its error, rather than leaving a server
    /// that no longer syncs.
    ///
    /// On SIGTERM/Ctrl-C, two things at once, each within [`SHUTDOWN_GRACE`]: requests in flight
    /// finish (no new connections are accepted), and a sync job running here stops at its next
    /// page or phase, having written nothing, and goes back to the queue for another instance
    /// (see [`Worker::shutdown`]) — not a lease later.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let worker = self.state.worker.clone();
        let scheduler = schedule::run_scheduler(self.state.db.clone(), worker.clone());
        let notifier = self.state.notifier.clone();
        let handle = self.server.handle();
        let server = self.server;
        // Polled in this task (not spawned), so that dropping the task stops the worker too.
        let work = worker.clone().run();
        tokio::pin!(server, work);
        // A delivery in flight when the process stops is sent again by an instance once its
        // lease runs out (at least once, as webhook receivers expect).
        tokio::select! {
            res = &mut server => return res.context("while serving HTTP"),
            res = &mut work => return res.context("the sync worker stopped"),
            res = scheduler => return res.context("the sync scheduler stopped"),
            res = notifier.run() => return res.context("the notification sender stopped"),
            () = shutdown_signal() => {}
        }
        tracing::info!("stopping: finishing requests in flight, handing a running sync job over");
        // The server future is polled beside the stop command: it is what carries it out.
        let (_, served, (), worker_end) = tokio::join!(
            handle.stop(true),
            &mut server,
            worker.shutdown(SHUTDOWN_GRACE),
            tokio::time::timeout(SHUTDOWN_GRACE, &mut work),
        );
        if let Ok(Err(e)) = worker_end {
            tracing::warn!(error = %e, "the sync worker ended with an error while stopping");
        }
        served.context("while serving HTTP")
    }
}

/// How long a stopping instance waits for requests in flight and for a running sync job to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Resolves on SIGTERM (what an orchestrator or systemd sends) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("while reading {}", p.display()))
    };
    let certs = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .context("while parsing DIRSYNC_TLS_CERT")?;
    anyhow::ensure!(!certs.is_empty(), "DIRSYNC_TLS_CERT holds no certificate");
    // The first PKCS#8, PKCS#1 or SEC1 private key of the file, as rustls-pemfile read it.
    let key = match PrivateKeyDer::from_pem_slice(&read(key)?) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            anyhow::bail!("DIRSYNC_TLS_KEY holds no private key")
        }
        Err(e) => return Err(e).context("while parsing DIRSYNC_TLS_KEY"),
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("while loading the TLS certificate and key")?;
    Ok(config)
}
