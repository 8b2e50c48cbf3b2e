//! mbedTLS error codes, as the device's `ussl` raises them in `OSError(code)`.
//!
//! Socket failures keep their errno (a timeout is still 110, a reset 104); only failures of
//! the TLS protocol itself are these negative numbers, so scripts that compare against the
//! device's values (`e.args[0] == -9984`) behave the same.

use crate::error::Error;

/// `MBEDTLS_ERR_X509_CERT_VERIFY_FAILED`: the peer's certificate did not verify.
pub const CERT_VERIFY_FAILED: i32 = -0x2700;
/// `MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE`: the peer sent a fatal alert.
pub const FATAL_ALERT_MESSAGE: i32 = -0x7780;
/// `MBEDTLS_ERR_SSL_INVALID_MAC`: a record failed to decrypt.
pub const INVALID_MAC: i32 = -0x7180;
/// `MBEDTLS_ERR_SSL_INVALID_RECORD`: the peer sent something that is not TLS.
pub const INVALID_RECORD: i32 = -0x7200;
/// `MBEDTLS_ERR_SSL_CONN_EOF`: the connection ended in the middle of the handshake.
pub const CONN_EOF: i32 = -0x7280;
/// `MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE`: a server requiring one got none.
pub const NO_CLIENT_CERTIFICATE: i32 = -0x7480;
/// `MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO`: a server could not agree with the client.
pub const BAD_HS_CLIENT_HELLO: i32 = -0x7900;
/// `MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO`: a client could not agree with the server.
pub const BAD_HS_SERVER_HELLO: i32 = -0x7980;

/// Maps a rustls protocol error to the device's `OSError` code.
pub fn from_rustls(err: &rustls::Error, server_side: bool) -> Error {
    use rustls::Error as E;
    let code = match err {
        E::InvalidCertificate(_) | E::InvalidCertRevocationList(_) => CERT_VERIFY_FAILED,
        E::AlertReceived(_) => FATAL_ALERT_MESSAGE,
        E::DecryptError => INVALID_MAC,
        E::NoCertificatesPresented => NO_CLIENT_CERTIFICATE,
        E::PeerIncompatible(_) if server_side => BAD_HS_CLIENT_HELLO,
        E::PeerIncompatible(_) => BAD_HS_SERVER_HELLO,
        _ => INVALID_RECORD,
    };
    Error::Os(code)
}
