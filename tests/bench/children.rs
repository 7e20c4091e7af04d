//! Child processes: the dirsync server under test and the raw-SQL comparison server, both this
//! binary re-executed (so they are always built from the same sources as the benchmark), and
//! their peak resident memory.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dirsync_core::settings::Settings;
use secrecy::ExposeSecret;

/// A running child process serving HTTP on 127.0.0.1.
pub struct Proc {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    name: &'static str,
}

/// A port that was free a moment ago (the child binds it; the race is harmless here).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn command(log: &std::path::Path) -> anyhow::Result<tokio::process::Command> {
    // /proc/self/exe stays valid when cargo replaces the binary during a long run.
    let exe = match std::path::Path::new("/proc/self/exe") {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe().context("while locating the bench binary")?,
    };
    let mut cmd = tokio::process::Command::new(exe);
    // Only the settings given here: nothing inherited from the caller's environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DIRSYNC_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let out =
        std::fs::File::create(log).with_context(|| format!("while creating {}", log.display()))?;
    cmd.stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(cmd)
}

impl Proc {
    /// Starts `dirsync serve` with `settings` (as `DIRSYNC_*` variables), logging to
    /// `<data_dir>/server.log`, and waits until `/health` answers.
    pub async fn dirsync(settings: &Settings) -> anyhow::Result<Proc> {
        let port = free_port()?;
        let mut cmd = command(&settings.data_dir.join("server.log"))?;
        cmd.arg("__serve")
            .env("DIRSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("DIRSYNC_DATA_DIR", &settings.data_dir)
            .env(
                "DIRSYNC_GOOGLE_DIRECTORY_URL",
                &settings.google_directory_url,
            )
            .env(
                "DIRSYNC_GOOGLE_DISCOVERY_URL",
                &settings.google_discovery_url,
            )
            .env("DIRSYNC_GOOGLE_TOKEN_URL", &settings.google_token_url)
            .env("DIRSYNC_MICROSOFT_LOGIN_URL", &settings.microsoft_login_url)
            .env("DIRSYNC_MICROSOFT_GRAPH_URL", &settings.microsoft_graph_url);
        if let Some(url) = &settings.database_url {
            cmd.env("DIRSYNC_DATABASE_URL", url);
        }
        if let Some(k) = &settings.bootstrap_admin_key {
            cmd.env("DIRSYNC_BOOTSTRAP_ADMIN_KEY", k.expose_secret());
        }
        if let Some(w) = settings.workers {
            cmd.env("DIRSYNC_WORKERS", w.to_string());
        }
        cmd.env(
            "DIRSYNC_RATE_LIMIT_API_PER_MINUTE",
            settings.rate_limit_api_per_minute.to_string(),
        );
        cmd.env(
            "DIRSYNC_RATE_LIMIT_SIGNIN_PER_MINUTE",
            settings.rate_limit_signin_per_minute.to_string(),
        );
        Self::spawn(cmd, port, "dirsync server").await
    }

    /// Starts the raw-SQL server on `database_url`.
    pub async fn raw(database_url: &str, log: &std::path::Path) -> anyhow::Result<Proc> {
        let port = free_port()?;
        let mut cmd = command(log)?;
        cmd.args([
            "__raw-serve",
            "--database-url",
            database_url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        Self::spawn(cmd, port, "raw-SQL server").await
    }

    async fn spawn(
        mut cmd: tokio::process::Command,
        port: u16,
        name: &'static str,
    ) -> anyhow::Result<Proc> {
        let child = cmd
            .spawn()
            .with_context(|| format!("while starting the {name}"))?;
        let mut p = Proc {
            child,
            base: format!("http://127.0.0.1:{port}"),
            name,
        };
        let http = reqwest::Client::builder().no_proxy().build()?;
        let t0 = Instant::now();
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("the {name} exited during start ({status}); see its log");
            }
            if let Ok(r) = http.get(format!("{}/health", p.base)).send().await {
                if r.status().is_success() {
                    return Ok(p);
                }
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("the {name} did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the child has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("while reading /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")
    }

    /// CPU time used so far (user + system, `/proc/<pid>/stat`), in seconds.
    pub fn cpu_secs(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("the child has exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("while reading /proc/{pid}/stat"))?;
        // After the parenthesised command name: state is field 3, utime and stime 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("no command name in /proc/<pid>/stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(i - 3)
                .context("a short /proc/<pid>/stat")?
                .parse::<u64>()? as f64)
        };
        // USER_HZ: 100 on every Linux the bench runs on (sysconf would need unsafe code).
        Ok((ticks(14)? + ticks(15)?) / 100.0)
    }

    /// Fails when the process has died (a crash during a measurement is a harness failure).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} exited unexpectedly ({status})", self.name);
        }
        Ok(())
    }

    /// Stops the process (SIGKILL: nothing of it is kept) and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
