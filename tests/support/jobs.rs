//! Sync jobs and the connection test through the API, whichever directory the server reads:
//! what every sync test does, on any provider's environment.

use serde_json::{json, Value};

use crate::TestApp;

impl TestApp {
    /// Runs the connection test (200 expected); returns its report.
    pub async fn test_connection(&self) -> Value {
        self.post("/api/v1/directory/test", &json!({}))
            .await
            .expect(200)
            .json
    }

    /// Starts a job (202 expected) and waits until it ends; returns the finished job.
    pub async fn sync(&self, dry_run: bool) -> Value {
        self.sync_with(json!({ "dry_run": dry_run })).await
    }

    /// Runs a job like [`TestApp::sync`] and reads it as the server's own type: a field
    /// renamed on one side fails here, not silently as a missing JSON key.
    pub async fn sync_typed(&self, dry_run: bool) -> dirsync_core::jobs::Job {
        serde_json::from_value(self.sync(dry_run).await).expect("a job as the server sends it")
    }

    /// Starts a job with the given body and waits until it ends.
    pub async fn sync_with(&self, body: Value) -> Value {
        let started = self.post("/api/v1/sync-jobs", &body).await.expect(202);
        let id = started.json["id"].as_str().unwrap().to_string();
        self.wait(&id).await
    }

    /// Waits until a job ends (at most two minutes).
    pub async fn wait(&self, id: &str) -> Value {
        for _ in 0..12 {
            let r = self
                .get(&format!("/api/v1/sync-jobs/{id}?wait=10"))
                .await
                .expect(200);
            let status = r.json["status"].as_str().unwrap();
            if !matches!(status, "queued" | "running") {
                return r.json;
            }
        }
        panic!("sync job {id} did not end in two minutes");
    }

    /// Every change of a job (all pages), optionally of one kind.
    pub async fn changes(&self, id: &str, kind: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/sync-jobs/{id}/changes?limit=500");
            if let Some(k) = kind {
                path.push_str(&format!("&kind={k}"));
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path).await.expect(200);
            out.extend(r.json["items"].as_array().unwrap().iter().cloned());
            match r.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}
