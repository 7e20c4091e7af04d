//! The server's outbound requests behind a TLS-inspecting proxy, as in many companies: the
//! proxy answers `CONNECT` and then presents a certificate of its own CA for every host. Google
//! is reached through it once the proxy is configured (`HTTPS_PROXY`) and its CA trusted
//! (`DIRSYNC_CA_FILE`). The certificates are those of `cli.rs` (`testdata/`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions};
use dirsync_tests::google::spawn_with_google_and;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn testdata(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("e2e/testdata")
        .join(name)
}

/// A proxy that accepts `CONNECT host:port`, records it, terminates TLS with the test CA's
/// certificate and passes the decrypted bytes to `upstream` (the emulator, plain HTTP).
async fn inspecting_proxy(upstream: SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(testdata("test-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(testdata("test-server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let mut client = BufReader::new(stream);
                let mut request_line = String::new();
                client.read_line(&mut request_line).await.ok()?;
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.ok()?;
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                }
                let target = request_line.strip_prefix("CONNECT ")?.split(' ').next()?;
                log.lock().unwrap().push(target.to_string());
                // The client speaks TLS only after this answer, so nothing is left buffered.
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .ok()?;
                let mut tls = acceptor.accept(client).await.ok()?;
                let mut google = tokio::net::TcpStream::connect(upstream).await.ok()?;
                tokio::io::copy_bidirectional(&mut tls, &mut google)
                    .await
                    .ok()
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn google_is_reached_through_a_tls_inspecting_proxy_whose_ca_is_trusted() {
    let mut d = Directory::empty("example.com");
    d.add_user("ann@example.com", "Ann", "Example").unwrap();
    let google = Emulator::start(EmulatorOptions::with_directory(d))
        .await
        .unwrap();
    let (proxy, seen) = inspecting_proxy(google.local_addr()).await;
    let env = spawn_with_google_and(google, |s| {
        // A name that only the proxy can resolve: a request that bypassed it would fail.
        s.google_directory_url = "https://google.test".into();
        s.outbound.https_proxy = Some(proxy.clone());
        s.outbound
            .set_ca_file(&testdata("test-ca.pem"))
            .expect("the test CA loads");
    })
    .await;
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"]["created"], 2, "{job}");
    let tunnels = seen.lock().unwrap().clone();
    assert!(!tunnels.is_empty());
    assert!(
        tunnels.iter().all(|t| t == "google.test:443"),
        "{tunnels:?}"
    );
}
