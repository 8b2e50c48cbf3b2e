//! A minimal HTTP/1.1 client over one keep-alive connection.
//!
//! The probe times socklab's API, so the client should add as little as possible: one
//! persistent connection, one request at a time, `Content-Length` or chunked bodies.
//! It talks only to loopback servers we started, so it does no TLS, no redirects and no
//! proxies.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest response body accepted (a bound, not an expectation).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Most header lines accepted in one response.
const MAX_HEADER_LINES: usize = 100;

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

/// One keep-alive connection to a server, reopened when the server closes it.
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    /// A client for `addr`; each request fails with `TimedOut` after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> HttpClient {
        HttpClient {
            addr,
            timeout,
            conn: None,
        }
    }

    /// Sends one request and reads the whole response. A JSON `body` is sent with
    /// `Content-Type: application/json`. A kept-alive connection the server had closed is
    /// reopened once.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.request_retrying(method, path, body)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"))
            }
        }
    }

    async fn request_retrying(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.request_once(method, path, body).await {
            Err(e) if reused && e.kind() == io::ErrorKind::UnexpectedEof => {
                self.conn = None;
                self.request_once(method, path, body).await
            }
            r => r,
        }
    }

    async fn request_once(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("connection opened above");
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(b) = body {
            head.push_str("Content-Type: application/json\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body.unwrap_or_default());
        conn.get_mut().write_all(&out).await?;
        let result = read_response(conn).await;
        match &result {
            Ok((_, keep_alive)) if *keep_alive => {}
            _ => self.conn = None,
        }
        result.map(|(r, _)| r)
    }
}

/// Reads one response; also returns whether the connection may be reused.
async fn read_response(conn: &mut BufReader<TcpStream>) -> io::Result<(Response, bool)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    for _ in 0..MAX_HEADER_LINES {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            let body = match (chunked, length) {
                (true, _) => read_chunked(conn).await?,
                (false, Some(n)) if n <= MAX_BODY_BYTES => {
                    let mut body = vec![0; n];
                    conn.read_exact(&mut body).await?;
                    body
                }
                (false, Some(_)) => return Err(bad("body too large")),
                (false, None) => return Err(bad("no Content-Length and not chunked")),
            };
            return Ok((Response { status, body }, keep_alive));
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(bad("bad header line"));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = Some(value.parse().map_err(|_| bad("bad length"))?),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    Err(bad("too many header lines"))
}

async fn read_chunked(conn: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let size_hex = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        line.clear();
        conn.read_line(&mut line).await?; // the CRLF after the chunk (or the trailer end)
        if size == 0 {
            return Ok(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A content-length response and a chunked one on the same kept-alive connection.
    #[tokio::test]
    async fn reads_both_body_kinds() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                .await
                .unwrap();
        });
        let mut c = HttpClient::new(addr, Duration::from_secs(5));
        let r = c.request("GET", "/", None).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let r = c.request("POST", "/x", Some(b"{}")).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abc"[..]));
        server.await.unwrap();
    }
}
