//! The certificate TLS listeners present: either the operator's own (`--cert`/`--key`),
//! or a self-signed one socklab generates and keeps next to the database, so it stays the
//! same across restarts and a device can trust it with `ussl.wrap_socket(ca=PEM)`.
//!
//! The generated certificate names `localhost`, `127.0.0.1`, `::1`, each TLS bind address
//! that is not a wildcard, and every `--tls-name`. When a later start needs a name the kept
//! certificate lacks, a new one is generated that names the old names and the new ones.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What goes wrong loading or generating the certificate; each message names the file
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The certificate file has no PEM certificate in it.
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file has no PEM private key in it.
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A file is not valid PEM.
    #[error("{path} is not valid PEM: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls cannot use them.
    #[error("cannot use certificate {cert} with key {key}: {reason}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why (for example: the key does not match the certificate).
        reason: String,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    /// A generated file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Where the certificate in use came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertOrigin {
    /// The operator's `--cert`/`--key`.
    Given,
    /// Generated now (there was none).
    Created,
    /// The one generated at an earlier start.
    Kept,
    /// Generated now because the kept one lacked these names.
    Renewed(Vec<String>),
}

/// A loaded certificate and key, ready for a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The rustls server configuration (certificate chain and key), shared by every
    /// TLS listener.
    pub server_config: Arc<ServerConfig>,
    /// The PEM file of the certificate (what a device trusts).
    pub cert_path: PathBuf,
    /// The private key file.
    pub key_path: PathBuf,
    /// SHA-256 of the leaf certificate (DER), colon-separated upper-case hex, as
    /// `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    /// Names (DNS names and IP addresses) the leaf certificate is valid for.
    pub names: Vec<String>,
    /// Where it came from.
    pub origin: CertOrigin,
}

/// The files a generated certificate is kept in, next to the database `db`:
/// `DB.tls-cert.pem` and `DB.tls-key.pem`.
pub fn generated_paths(db: &Path) -> (PathBuf, PathBuf) {
    let with = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    (with(".tls-cert.pem"), with(".tls-key.pem"))
}

/// The names a generated certificate must carry for listeners bound to `binds` and the
/// operator's extra `names`: loopback always, each concrete bind address, then `names`.
pub fn wanted_names(binds: &[SocketAddr], names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let binds = binds
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .map(|ip| ip.to_string());
    for name in binds.chain(names.iter().map(|n| normalise(n))) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// A name as certificates compare it: IP addresses in canonical form, DNS names lower case.
fn normalise(name: &str) -> String {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Loads the operator's certificate chain and key and checks that they belong together.
pub fn load(cert: &Path, key: &Path) -> Result<TlsIdentity, CertError> {
    let (chain, key_der) = read_pair(cert, key)?;
    identity(chain, key_der, cert, key, CertOrigin::Given)
}

/// The certificate kept next to the database `db` for `names` (see [`wanted_names`]):
/// the kept one when it names them all, else a new one (written with the key readable by
/// the owner only).
pub fn load_or_create(db: &Path, names: &[String]) -> Result<TlsIdentity, CertError> {
    let (cert_path, key_path) = generated_paths(db);
    if cert_path.exists() && key_path.exists() {
        let (chain, key_der) = read_pair(&cert_path, &key_path)?;
        let have = cert_names(&chain[0]);
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !have.contains(n))
            .cloned()
            .collect();
        if missing.is_empty() {
            return identity(chain, key_der, &cert_path, &key_path, CertOrigin::Kept);
        }
        let mut all = have;
        all.extend(missing.iter().cloned());
        create(&cert_path, &key_path, &all)?;
        return load_created(&cert_path, &key_path, CertOrigin::Renewed(missing));
    }
    create(&cert_path, &key_path, names)?;
    load_created(&cert_path, &key_path, CertOrigin::Created)
}

fn load_created(cert: &Path, key: &Path, origin: CertOrigin) -> Result<TlsIdentity, CertError> {
    let (chain, key_der) = read_pair(cert, key)?;
    identity(chain, key_der, cert, key, origin)
}

/// Generates a self-signed certificate for `names` and writes it and its key.
fn create(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<(), CertError> {
    let generate = |e: rcgen::Error| CertError::Generate(e.to_string());
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(generate)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "socklab self-signed");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // A wide validity window: a cellular module often verifies before it has network
    // time (its clock may read 1980 or 2000), and a test server should not expire.
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let cert = params.self_signed(&key).map_err(generate)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
}

/// Writes `data` to `path` through a temporary file and a rename, with `mode` (Unix).
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(err)?;
    // The mode above applies only when the file is created; an old temp file keeps its own.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
    }
    file.write_all(data).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> CertError + '_ {
    move |e| CertError::BadPem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads a certificate chain (leaf first) and a private key from PEM files.
fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CertError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_pem(cert))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key_der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(CertError::NoKey {
                path: key.to_path_buf(),
            });
        }
        Err(e) => return Err(bad_pem(key)(e)),
    };
    Ok((chain, key_der))
}

/// Builds the rustls configuration (which checks that the key matches the leaf).
fn identity(
    chain: Vec<CertificateDer<'static>>,
    key_der: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
    origin: CertOrigin,
) -> Result<TlsIdentity, CertError> {
    let fingerprint = fingerprint(&chain[0]);
    let names = cert_names(&chain[0]);
    let unusable = |reason: String| CertError::Unusable {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            unusable(match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the key does not belong to the certificate".into()
                }
                other => other.to_string(),
            })
        })?;
    // No TLS 1.3 session tickets: they are data a client never asked to read, and a client
    // that closes with them unread makes its kernel send a reset instead of a FIN, so an
    // orderly close would be recorded as a reset. A test server gains nothing by resumption.
    config.send_tls13_tickets = 0;
    // Absolute paths: what is printed must be usable from any directory.
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    Ok(TlsIdentity {
        server_config: Arc::new(config),
        cert_path: absolute(cert),
        key_path: absolute(key),
        fingerprint,
        names,
        origin,
    })
}

/// SHA-256 of a certificate, colon-separated upper-case hex.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    let mut out = String::with_capacity(95);
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The DNS names and IP addresses a certificate is valid for (its subject alternative
/// names), normalised; empty when it cannot be parsed.
pub fn cert_names(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(extra: &[&str]) -> Vec<String> {
        let binds = ["0.0.0.0:1".parse().unwrap(), "10.1.2.3:2".parse().unwrap()];
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        wanted_names(&binds, &extra)
    }

    /// Loopback names always, concrete binds, then extra names; wildcards and duplicates
    /// left out, IPv6 brackets and case normalised.
    #[test]
    fn wanted_names_are_normalised() {
        assert_eq!(
            names(&["Modem.Example", "[::1]", "10.1.2.3"]),
            ["localhost", "127.0.0.1", "::1", "10.1.2.3", "modem.example"]
        );
    }

    /// A generated certificate is kept (same fingerprint), renewed with the old names when
    /// a new name is needed, and its key is private.
    #[test]
    fn generated_certificate_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = load_or_create(&db, &names(&[])).unwrap();
        assert_eq!(first.origin, CertOrigin::Created);
        assert_eq!(first.cert_path, dir.path().join("x.db.tls-cert.pem"));
        assert_eq!(first.names, names(&[]));
        assert_eq!(first.fingerprint.len(), 95);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key_path).unwrap().permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        let again = load_or_create(&db, &names(&[])).unwrap();
        assert_eq!(
            (again.origin, &again.fingerprint),
            (CertOrigin::Kept, &first.fingerprint)
        );
        let renewed = load_or_create(&db, &names(&["modem.example"])).unwrap();
        assert_eq!(
            renewed.origin,
            CertOrigin::Renewed(vec!["modem.example".into()])
        );
        assert_ne!(renewed.fingerprint, first.fingerprint);
        // Fewer names than the certificate has: it is kept.
        let kept = load_or_create(&db, &names(&[])).unwrap();
        assert_eq!(
            (kept.origin, kept.fingerprint),
            (CertOrigin::Kept, renewed.fingerprint)
        );
    }

    /// Unreadable, empty, garbled and mismatched files are refused with the file named.
    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(&dir.path().join("a.db"), &names(&[])).unwrap();
        let b = load_or_create(&dir.path().join("b.db"), &names(&[])).unwrap();
        let given = load(&a.cert_path, &a.key_path).unwrap();
        assert_eq!(
            (given.origin, given.fingerprint),
            (CertOrigin::Given, a.fingerprint)
        );
        let missing = dir.path().join("none.pem");
        let err = load(&missing, &a.key_path).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read ") && err.contains("none.pem"),
            "{err}"
        );
        let err = load(&a.cert_path, &b.key_path).unwrap_err().to_string();
        assert!(
            err.contains("the key does not belong to the certificate"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let err = load(&empty, &a.key_path).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let err = load(&a.cert_path, &a.cert_path).unwrap_err().to_string();
        assert!(err.contains("holds no PEM private key"), "{err}");
        let garbled = dir.path().join("garbled.pem");
        std::fs::write(&garbled, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
        let err = load(&garbled, &a.key_path).unwrap_err().to_string();
        assert!(err.contains("is not valid PEM"), "{err}");
    }

    /// The fingerprint is SHA-256 of the DER in the usual notation.
    #[test]
    fn fingerprint_notation() {
        let der = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            fingerprint(&der),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
