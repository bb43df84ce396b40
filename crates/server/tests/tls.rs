//! HTTPS: the API over rustls with a certificate the test makes, read by a
//! rustls client that trusts only that certificate; a client that speaks
//! plain HTTP to the TLS port, or stops mid-handshake, gets nothing and
//! holds up nobody.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use provkit_server::state::{AppState, StorePool};
use provkit_server::tls::{TlsListener, server_config};
use provkit_server::{Limits, router};
use provkit_store::MemoryStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sends one request over TLS; the whole answer.
async fn https_get(
    addr: std::net::SocketAddr,
    roots: Arc<rustls::RootCertStore>,
    path: &str,
) -> std::io::Result<String> {
    #[allow(deprecated)] // the ring provider, as the server uses
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

#[test]
fn the_api_over_tls() {
    let dir = std::env::temp_dir().join(format!("provkit-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::File::create(&cert)
        .and_then(|mut f| f.write_all(made.cert.pem().as_bytes()))
        .expect("write cert");
    std::fs::File::create(&key)
        .and_then(|mut f| f.write_all(made.signing_key.serialize_pem().as_bytes()))
        .expect("write key");
    // A key that is not PEM is refused, naming the file.
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a key").expect("write");
    let err = server_config(&cert, &junk).expect_err("junk key");
    assert!(err.to_string().contains("junk.pem"), "{err}");

    let config = server_config(&cert, &key).expect("config");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .expect("root");
    let roots = Arc::new(roots);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let listener = TlsListener::new(tcp, config).expect("tls listener");
        let addr = axum::serve::Listener::local_addr(&listener).expect("addr");
        let state = AppState::new(
            StorePool::single(Box::new(MemoryStore::default())),
            Limits::default(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(provkit_server::serve(listener, router(state), async {
            let _ = stopped.await;
        }));

        // A client that stops mid-handshake, and one that speaks plain HTTP.
        let stalled = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "no plain HTTP on the TLS port"
        );

        let ok = https_get(addr, roots.clone(), "/healthz")
            .await
            .expect("https");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let denied = https_get(addr, roots.clone(), "/api/v1/profiles")
            .await
            .expect("https");
        assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
        // A client that trusts another root refuses the server.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let mut wrong = rustls::RootCertStore::empty();
        wrong
            .add(CertificateDer::from(other.cert.der().to_vec()))
            .expect("root");
        assert!(https_get(addr, Arc::new(wrong), "/healthz").await.is_err());
        drop(stalled);
        let _ = stop.send(());
        server.await.expect("join").expect("served");
    });
}
