//! Talking to the server under test over HTTP: configuration, sync jobs, API keys.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// A server's base URL, a token and a client.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Bearer token (the bootstrap admin key).
    pub token: String,
    /// Keep-alive client.
    pub http: reqwest::Client,
}

/// A finished sync job as the benchmark saw it.
pub struct SyncRun {
    /// From sending the POST to seeing the job final (polled every 20 ms).
    pub elapsed: Duration,
    /// The finished job.
    pub job: Value,
    /// When each phase was first seen (from the request), the final status last.
    pub phases: Vec<(String, Duration)>,
}

impl SyncRun {
    /// `phase@seconds …`, for the log.
    pub fn timeline(&self) -> String {
        self.phases
            .iter()
            .map(|(p, t)| format!("{p}@{:.2}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Api {
    /// A client for `base` with `token`.
    pub fn new(base: String, token: String) -> Api {
        Api {
            base,
            token,
            // Straight to 127.0.0.1, whatever proxy the environment names.
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP client"),
        }
    }

    /// Sends a request; returns status and JSON body (`Null` when not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        raw_body: Option<String>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        if let Some(b) = raw_body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("while calling {method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Like [`Api::call`], failing unless the status is `want`.
    pub async fn expect(
        &self,
        want: u16,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.call(method.clone(), path, body, None).await?;
        if status != want {
            bail!("{method} {path} answered {status}, expected {want}: {json}");
        }
        Ok(json)
    }

    /// Uploads the service-account key and sets the directory configuration.
    pub async fn configure_directory(
        &self,
        key_json: &str,
        sync_groups: &[String],
    ) -> anyhow::Result<()> {
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                "/api/v1/directory/service-account",
                None,
                Some(key_json.to_string()),
            )
            .await?;
        if status != 200 {
            bail!("uploading the service-account key answered {status}: {body}");
        }
        self.set_sync_groups(sync_groups).await
    }

    /// Sets the directory configuration with these sync groups (empty: everyone).
    pub async fn set_sync_groups(&self, sync_groups: &[String]) -> anyhow::Result<()> {
        self.set_directory(sync_groups, None).await
    }

    /// Sets the directory configuration with these sync groups and incremental schedule.
    pub async fn set_directory(
        &self,
        sync_groups: &[String],
        incremental_seconds: Option<u32>,
    ) -> anyhow::Result<()> {
        self.expect(
            200,
            reqwest::Method::PUT,
            "/api/v1/directory",
            Some(json!({
                "provider": "google_workspace",
                "admin_email": crate::google::ADMIN,
                "customer_id": "my_customer",
                "domain": null,
                "sync_groups": sync_groups,
                "auto_delete_users": false,
                "deletion_limit": null,
                "schedule_minutes": null,
                "incremental_seconds": incremental_seconds
            })),
        )
        .await
        .map(drop)
    }

    /// Starts an apply job and returns its id and the instant the request was sent.
    pub async fn start_sync(&self) -> anyhow::Result<(String, Instant)> {
        self.start_job(json!({"dry_run": false})).await
    }

    /// Starts a job with `body`; returns its id and when it was asked for.
    pub async fn start_job(&self, body: Value) -> anyhow::Result<(String, Instant)> {
        let t0 = Instant::now();
        let started = self
            .expect(202, reqwest::Method::POST, "/api/v1/sync-jobs", Some(body))
            .await?;
        let id = started["id"]
            .as_str()
            .context("the started job has no id")?
            .to_string();
        Ok((id, t0))
    }

    /// The job as it is now.
    pub async fn job(&self, id: &str) -> anyhow::Result<Value> {
        self.expect(
            200,
            reqwest::Method::GET,
            &format!("/api/v1/sync-jobs/{id}"),
            None,
        )
        .await
    }

    /// Waits (polling every 20 ms, at most `timeout`) for a job to end; fails unless it
    /// succeeded.
    pub async fn finish_sync(
        &self,
        id: &str,
        t0: Instant,
        timeout: Duration,
    ) -> anyhow::Result<SyncRun> {
        let mut phases: Vec<(String, Duration)> = Vec::new();
        loop {
            let job = self.job(id).await?;
            let status = job["status"].as_str().unwrap_or_default();
            let phase = job["progress"]["phase"].as_str().unwrap_or(status);
            if phases.last().is_none_or(|(p, _)| p != phase) {
                phases.push((phase.to_string(), t0.elapsed()));
            }
            if !matches!(status, "queued" | "running") {
                let elapsed = t0.elapsed();
                if status != "succeeded" {
                    bail!("sync job {id} ended {status}: {job}");
                }
                phases.push((status.to_string(), elapsed));
                return Ok(SyncRun {
                    elapsed,
                    job,
                    phases,
                });
            }
            if t0.elapsed() > timeout {
                bail!("sync job {id} did not end within {timeout:?}: {job}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs an apply job to its end.
    pub async fn sync(&self, timeout: Duration) -> anyhow::Result<SyncRun> {
        let (id, t0) = self.start_sync().await?;
        self.finish_sync(&id, t0, timeout).await
    }

    /// Runs an incremental job and waits for its end.
    pub async fn sync_incremental(&self, timeout: Duration) -> anyhow::Result<SyncRun> {
        let (id, t0) = self.start_job(json!({"kind": "incremental"})).await?;
        self.finish_sync(&id, t0, timeout).await
    }

    /// Creates an API key with `role` and returns it.
    pub async fn api_key(&self, role: &str) -> anyhow::Result<String> {
        let r = self
            .expect(
                201,
                reqwest::Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": format!("bench-{role}"), "role": role})),
            )
            .await?;
        Ok(r["key"]
            .as_str()
            .context("no key in the answer")?
            .to_string())
    }
}
