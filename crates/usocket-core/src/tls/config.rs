//! [`TlsOptions`]: what `ussl.wrap_socket` was given, checked and turned into a rustls
//! configuration.
//!
//! Keys and certificates are PEM text (a DER certificate is accepted for `ca`, as upstream
//! MicroPython's `cadata` allows). Parsing happens before the handshake, so bad input is a
//! `ValueError('invalid key'|'invalid cert'|'invalid ca')` and nothing reaches the network.

use super::verify::{AnyServerCert, DeviceServerVerifier};
use crate::error::{Error, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::sync::{Arc, OnceLock};

/// Everything `wrap_socket` decides about one TLS connection.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Act as the TLS server (needs `key` and `cert`).
    pub server_side: bool,
    /// PEM private key for our own certificate.
    pub key: Option<Vec<u8>>,
    /// PEM certificate (chain) presented to the peer.
    pub cert: Option<Vec<u8>>,
    /// PEM (or DER) CA certificates the peer must chain to.
    pub ca: Option<Vec<u8>>,
    /// Sent as SNI; with verification on, the name the server certificate must carry.
    pub server_hostname: Option<String>,
    /// Verify the peer even without `ca`, against the system's roots (strict mode, or
    /// upstream's `cert_reqs=CERT_REQUIRED`). Without `ca` and without this, nothing is
    /// verified, as on the device.
    pub verify_without_ca: bool,
    /// Offer TLS 1.3 as well (the device's mbedTLS offers TLS 1.2 only).
    pub tls13: bool,
}

/// The rustls configuration of one side, built from [`TlsOptions`].
#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// A client: the configuration and the server name for SNI and verification.
    Client(Arc<ClientConfig>, ServerName<'static>),
    /// A server.
    Server(Arc<ServerConfig>),
}

/// The process's crypto provider (ring), built once.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// TLS 1.2 only, the device's mbedTLS default.
static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn versions(tls13: bool) -> &'static [&'static SupportedProtocolVersion] {
    if tls13 {
        rustls::ALL_VERSIONS
    } else {
        TLS12_ONLY
    }
}

fn invalid(what: &str) -> Error {
    Error::value(format!("invalid {what}"))
}

/// Parses PEM certificates; none, or broken PEM, is `ValueError('invalid cert')`.
fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| invalid("cert"))?;
    if certs.is_empty() {
        return Err(invalid("cert"));
    }
    Ok(certs)
}

/// Parses a PEM private key and checks the provider can use it.
fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|_| invalid("key"))?;
    provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| invalid("key"))?;
    Ok(key)
}

/// Parses the `ca` argument into a root store: unparsable text is `invalid cert` (as on the
/// device), certificates that cannot serve as trust anchors are `invalid ca`.
fn parse_ca(data: &[u8]) -> Result<RootCertStore> {
    let certs = if data.windows(10).any(|w| w == b"-----BEGIN") {
        parse_certs(data)?
    } else if data.first() == Some(&0x30) {
        vec![CertificateDer::from(data.to_vec())]
    } else {
        return Err(invalid("cert"));
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|_| invalid("ca"))?;
    }
    Ok(roots)
}

/// The operating system's trusted roots (strict mode without `ca`); `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` are honoured.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// The server name for a client: `server_hostname` when given (an IP address is accepted
/// and sends no SNI), else a placeholder address: no SNI, and no name is checked.
fn server_name(hostname: Option<&str>) -> Result<ServerName<'static>> {
    let name = hostname.unwrap_or("0.0.0.0");
    ServerName::try_from(name.to_owned()).map_err(|_| Error::value("invalid server_hostname"))
}

impl TlsOptions {
    /// Checks every PEM input and builds the rustls configuration.
    pub fn build(&self) -> Result<TlsConfig> {
        let provider = provider();
        let key = self.key.as_deref().map(parse_key).transpose()?;
        let certs = self.cert.as_deref().map(parse_certs).transpose()?;
        let roots = self.ca.as_deref().map(parse_ca).transpose()?;
        let bad_pair = |_| invalid("key");
        if self.server_side {
            let (Some(key), Some(certs)) = (key, certs) else {
                return Err(Error::value("server_side needs key and cert"));
            };
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions(self.tls13))
                .map_err(|_| Error::value("no TLS version available"))?;
            let builder = match roots {
                Some(roots) => {
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .map_err(|_| invalid("ca"))?;
                    builder.with_client_cert_verifier(verifier)
                }
                None => builder.with_no_client_auth(),
            };
            let mut config = builder.with_single_cert(certs, key).map_err(bad_pair)?;
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
            return Ok(TlsConfig::Server(Arc::new(config)));
        }
        let hostname = self.server_hostname.as_deref().filter(|h| !h.is_empty());
        let name = server_name(hostname)?;
        let verify_roots = match roots {
            Some(r) => Some(r),
            None if self.verify_without_ca => Some(system_roots()),
            None => None,
        };
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match verify_roots {
            Some(roots) => Arc::new(DeviceServerVerifier::new(
                roots,
                provider.clone(),
                hostname.is_some(),
            )?),
            None => Arc::new(AnyServerCert::new(provider.clone())),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions(self.tls13))
            .map_err(|_| Error::value("no TLS version available"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        // `cert` without `key` is ignored, as on the device (the binding rejects the reverse).
        let mut config = match (key, certs) {
            (Some(key), Some(certs)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(bad_pair)?,
            _ => builder.with_no_client_auth(),
        };
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsConfig::Client(Arc::new(config), name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_a_value_error_naming_the_argument() {
        let opts = |key: Option<&str>, cert: Option<&str>, ca: Option<&str>| TlsOptions {
            key: key.map(|s| s.as_bytes().to_vec()),
            cert: cert.map(|s| s.as_bytes().to_vec()),
            ca: ca.map(|s| s.as_bytes().to_vec()),
            ..TlsOptions::default()
        };
        let msg = |o: TlsOptions| match o.build() {
            Err(Error::Value(m)) => m,
            other => panic!("expected a ValueError, got {other:?}"),
        };
        assert_eq!(msg(opts(Some("nope"), Some("x"), None)), "invalid key");
        assert_eq!(msg(opts(None, None, Some("not pem"))), "invalid cert");
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(msg(opts(None, None, Some(junk))), "invalid ca");
        assert!(opts(None, None, None).build().is_ok());
    }
}
