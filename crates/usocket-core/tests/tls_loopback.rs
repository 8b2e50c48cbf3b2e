//! `usocket-core`'s TLS over real loopback sockets: both ends are this crate's
//! `TlsStream`, the certificates come from rcgen.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::os::fd::BorrowedFd;
use usocket_core::error::errno;
use usocket_core::socket::ReadOutcome;
use usocket_core::tls::{TlsOptions, TlsStream, codes};
use usocket_core::{Error, Result, Socket};

/// A CA and a certificate for `localhost` it issued, as PEM.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca: ca.pem(),
        cert: leaf.pem(),
        key: key.serialize_pem(),
    }
}

fn no_check() -> impl FnMut() -> Result<()> {
    || Ok(())
}

/// A connected (client, server) pair of engine sockets on loopback.
fn socket_pair() -> (Socket, Socket) {
    let listener = Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    listener.bind("127.0.0.1", 0, &mut no_check()).unwrap();
    listener.listen(1).unwrap();
    // SAFETY: the listener's descriptor stays open for this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(listener.fileno()) };
    let port = socket2::SockRef::from(&fd)
        .local_addr()
        .unwrap()
        .as_socket()
        .unwrap()
        .port();
    let client = Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    client.connect("127.0.0.1", port, &mut no_check()).unwrap();
    let (server, _) = listener.accept(&mut no_check()).unwrap();
    (client, server)
}

fn server_stream(pki: &Pki) -> TlsStream {
    let options = TlsOptions {
        server_side: true,
        key: Some(pki.key.clone().into_bytes()),
        cert: Some(pki.cert.clone().into_bytes()),
        ..TlsOptions::default()
    };
    TlsStream::new(options.build().unwrap()).unwrap()
}

#[test]
fn verified_echo_then_close_notify_and_the_fin_rule() {
    let pki = pki();
    let (client_sock, server_sock) = socket_pair();
    let server = server_stream(&pki);
    let peer = std::thread::spawn(move || {
        let mut buf = [0u8; 5];
        let got = server.read_into(&server_sock, &mut buf, &mut no_check());
        assert_eq!(got, Ok(ReadOutcome::Data(5)));
        let sent = server.write(&server_sock, &buf, &mut no_check());
        assert_eq!(sent, Ok(Some(5)));
        server.close(&server_sock);
    });
    let options = TlsOptions {
        ca: Some(pki.ca.clone().into_bytes()),
        server_hostname: Some("localhost".into()),
        ..TlsOptions::default()
    };
    let client = TlsStream::new(options.build().unwrap()).unwrap();
    client.handshake(&client_sock, &mut no_check()).unwrap();
    assert_eq!(client.protocol_version(), Some("TLSv1.2"));
    assert!(client.peer_certificate().is_some());
    assert_eq!(
        client.write(&client_sock, b"hello", &mut no_check()),
        Ok(Some(5))
    );
    let line = client.readline(&client_sock, None, &mut no_check());
    assert_eq!(line, Ok(ReadOutcome::Data(b"hello".to_vec())));
    peer.join().unwrap();
    // After close_notify: 107 once in the default (device) profile, then empty.
    let mut buf = [0u8; 4];
    assert_eq!(
        client.recv(&client_sock, &mut buf, &mut no_check()),
        Err(Error::Os(errno::ENOTCONN))
    );
    assert_eq!(client.recv(&client_sock, &mut buf, &mut no_check()), Ok(0));
    client.close(&client_sock);
    assert_eq!(
        client.recv(&client_sock, &mut buf, &mut no_check()),
        Err(Error::Os(errno::EBADF))
    );
}

#[test]
fn a_wrong_host_name_fails_verification_with_the_device_code() {
    let pki = pki();
    let (client_sock, server_sock) = socket_pair();
    let server = server_stream(&pki);
    let peer = std::thread::spawn(move || {
        let _ = server.handshake(&server_sock, &mut no_check());
        server_sock.close();
    });
    let options = TlsOptions {
        ca: Some(pki.ca.clone().into_bytes()),
        server_hostname: Some("elsewhere.example".into()),
        ..TlsOptions::default()
    };
    let client = TlsStream::new(options.build().unwrap()).unwrap();
    assert_eq!(
        client.handshake(&client_sock, &mut no_check()),
        Err(Error::Os(codes::CERT_VERIFY_FAILED))
    );
    peer.join().unwrap();
}
