//! TLS listeners over real loopback sockets with a rustls client: the session carries the
//! negotiated version and SNI and moves data like a TCP one; a plain-TCP client and a
//! silent one become `tls_failed` events; a link applies to a TLS session too.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, WAIT, next_event};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use socklab::model::{EndReason, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn tls_server(tweak: impl FnOnce(&mut socklab::Config)) -> TestServer {
    TestServer::start(|c| {
        c.tls = vec!["127.0.0.1:0".parse().unwrap()];
        tweak(c);
    })
    .await
}

/// A rustls client that trusts the server's certificate file.
fn connector(server: &TestServer) -> TlsConnector {
    let cert = server.addrs.tls_cert.as_ref().expect("a TLS certificate");
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(&cert.path).unwrap() {
        roots.add(der.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn read_n<R: AsyncReadExt + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(WAIT, r.read_exact(&mut buf))
        .await
        .expect("read timed out")
        .unwrap();
    buf
}

/// Connects a verified TLS client for "localhost" to the server's TLS listener and checks
/// that its "ping" comes back (the listeners here echo).
async fn pinged_tls_client(server: &TestServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addrs.tls[0]).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector(server).connect(name, tcp).await.unwrap();
    tls.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut tls, 4).await, b"ping");
    tls
}

/// A verified client becomes a session with its TLS details; upload, send down, echo and
/// an operator close work as on TCP.
#[tokio::test]
async fn tls_session_moves_data_and_shows_version_and_sni() {
    let server = tls_server(|c| c.echo = true).await;
    let mut events = server.hub.subscribe();
    let mut tls = pinged_tls_client(&server).await;
    let session = next_event(&mut events, |e| match e {
        Event::Online(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    let info = session.tls.as_deref().expect("TLS details");
    assert_eq!(
        (info.version.as_str(), info.sni.as_deref()),
        ("TLSv1.3", Some("localhost"))
    );
    let json = serde_json::to_value(&session).unwrap();
    assert_eq!(json["tls"]["version"], "TLSv1.3");
    server
        .hub
        .send(session.id, Bytes::from_static(b"down"))
        .await
        .unwrap();
    assert_eq!(read_n(&mut tls, 4).await, b"down");
    server.hub.close(session.id).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    let ended = next_event(&mut events, |e| match e {
        Event::Offline(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByOperator));
    assert_eq!((ended.counters.bytes_up, ended.counters.bytes_down), (4, 8));
    server.stop().await;
}

/// Waits for the next failed handshake and checks its device and the start of its reason.
async fn expect_tls_failure(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    device: &TcpStream,
    reason: &str,
) {
    let failure = next_event(events, |e| match e {
        Event::TlsFailed(f) => Some(f.clone()),
        _ => None,
    })
    .await;
    assert!(failure.reason.starts_with(reason), "{failure:?}");
    assert_eq!(failure.peer, device.local_addr().unwrap());
}

/// Plain TCP on the TLS port and a client that never speaks are failed handshakes with
/// their reasons, counted on the listener; neither opens a session.
#[tokio::test]
async fn failed_handshakes_are_events() {
    let server = tls_server(|c| c.tls_handshake_timeout = Duration::from_millis(300)).await;
    let mut events = server.hub.subscribe();
    let mut plain = TcpStream::connect(server.addrs.tls[0]).await.unwrap();
    plain.write_all(b"HELLO\r\n").await.unwrap();
    expect_tls_failure(&mut events, &plain, "not a TLS handshake").await;
    let mut silent = TcpStream::connect(server.addrs.tls[0]).await.unwrap();
    expect_tls_failure(&mut events, &silent, "no TLS handshake within").await;
    // socklab hung up on the silent client.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, silent.read_to_end(&mut rest))
        .await
        .unwrap();
    let listener = server.hub.listeners().pop().unwrap();
    let tls = listener.tls.expect("a TLS listener");
    assert_eq!(tls.handshake_failures, 2);
    assert_eq!(server.hub.online_count(), 0);
    assert_eq!(
        server
            .hub
            .totals
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    server.stop().await;
}

/// A link applies to a TLS session like to a TCP one: the echo is delayed by the link, and
/// an injected reset resets the connection under TLS.
#[tokio::test]
async fn links_and_faults_apply_to_tls_sessions() {
    let server = tls_server(|c| {
        c.echo = true;
        // Listener 2: the TLS one (after the test's TCP and UDP listeners).
        let spec = socklab::link::LinkSpec::parse("perfect,latency_down=150ms").unwrap();
        c.links = vec![(Some(2), spec)];
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut tls = pinged_tls_client(&server).await;
    let delayed = next_event(&mut events, |e| match e {
        Event::Link(l)
            if l.action == socklab::model::LinkAction::Delayed
                && l.direction == Some(socklab::model::Direction::Down) =>
        {
            Some(l.clone())
        }
        _ => None,
    })
    .await;
    assert!(delayed.delay_ms >= 150, "{delayed:?}");
    let id = delayed.session_id;
    server
        .hub
        .inject(id, socklab::link::Fault::Reset)
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, tls.read_to_end(&mut rest))
        .await
        .unwrap();
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let ended = next_event(&mut events, |e| match e {
        Event::Offline(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ended.end_reason, Some(EndReason::LinkReset));
    assert!(ended.tls.is_some());
    server.stop().await;
}
