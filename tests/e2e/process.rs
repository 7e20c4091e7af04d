//! The `dirsync` command as a separate process, for tests of what only a process shows: several
//! instances, signals, crashes, upgrades.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `dirsync` command built from this checkout.
pub fn dirsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"))
}

/// Runs `command serve` on a port the system picks (`DIRSYNC_LISTEN=127.0.0.1:0`, never a port
/// released by the test, which another test could take meanwhile), with JSON logs; returns the
/// process and its port once it listens. The caller sets the rest of the environment.
pub async fn serve(mut command: Command) -> (Child, u16) {
    let mut child = command
        .arg("serve")
        .env("DIRSYNC_LISTEN", "127.0.0.1:0")
        .env("DIRSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.unwrap() else {
                    let mut err = String::new();
                    use tokio::io::AsyncReadExt;
                    child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
                    panic!("the server exited before listening: {err}");
                };
                if line.contains("dirsync listening") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let port = v["fields"]["port"].as_u64().or_else(|| v["port"].as_u64()).unwrap();
                    // Keep draining the log so that the process never blocks on a full pipe;
                    // `TEST_LOG=1` shows it, as it does the in-process servers' logs.
                    let echo = std::env::var_os("TEST_LOG").is_some();
                    tokio::spawn(async move {
                        while let Ok(Some(line)) = lines.next_line().await {
                            if echo {
                                eprintln!("[dirsync {port}] {line}");
                            }
                        }
                    });
                    return (child, port as u16);
                }
            }
            _ = &mut deadline => panic!("the server did not start listening in two minutes"),
        }
    }
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}
