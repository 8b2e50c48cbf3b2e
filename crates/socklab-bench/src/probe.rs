//! `probe` mode: times socklab's control plane (list sessions, send to one session).
//!
//! The probe connects a device of its own, finds that device's session through the API,
//! then times three endpoints (both session listings and a send to its own session), each
//! from its own client at a fixed pace, until the time is up. Sending to its own device
//! lets it check that the sends were delivered, not just accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::http::HttpClient;
use crate::report::{ErrorCounts, emit};
use crate::stats::Summary;

/// The payload each send carries.
const SEND_TEXT: &str = "ping\n";

/// Pages of the online listing searched for the probe's own session.
const MAX_PAGES: u64 = 100;

/// What `probe` does.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// socklab's HTTP address.
    pub http: SocketAddr,
    /// socklab's TCP device listener (the probe's own device connects there).
    pub device: SocketAddr,
    /// How long to keep probing.
    pub duration: Duration,
    /// Pause after each request of one endpoint.
    pub interval: Duration,
    /// Upper bound on requests per endpoint, whatever the duration.
    pub max_rounds: u64,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

/// One timed endpoint.
struct Endpoint {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    samples: Vec<Duration>,
    errors: ErrorCounts,
    bad_status: u64,
}

/// Runs the probe and prints one `{"phase": "probe", ...}` line (or `probe_failed`).
pub async fn run(opts: ProbeOptions) {
    match probe(&opts).await {
        Ok(report) => emit(&report),
        Err(e) => emit(&json!({"phase": "probe_failed", "error": e.to_string()})),
    }
}

async fn probe(opts: &ProbeOptions) -> std::io::Result<Value> {
    let device = TcpStream::connect(opts.device).await?;
    let me = device.local_addr()?.to_string();
    let mut client = HttpClient::new(opts.http, opts.request_timeout);
    let id = find_session(&mut client, &me).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let reader = {
        let delivered = delivered.clone();
        let (mut rd, wr) = device.into_split();
        tokio::spawn(async move {
            let _keep_open = wr;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = rd.read(&mut buf).await {
                delivered.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    let send_body = json!({ "text": SEND_TEXT }).to_string().into_bytes();
    let endpoints = [
        endpoint("GET /api/sessions", "GET", "/api/sessions".into(), None),
        endpoint(
            "GET /api/sessions?state=online",
            "GET",
            "/api/sessions?state=online".into(),
            None,
        ),
        endpoint(
            "POST /api/sessions/{id}/send",
            "POST",
            format!("/api/sessions/{id}/send"),
            Some(send_body),
        ),
    ];
    // One client per endpoint, each at its own pace: a slow endpoint must not starve the
    // others of samples.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for ep in endpoints {
        let opts = opts.clone();
        tasks.push(tokio::spawn(time_endpoint(ep, opts, start)));
    }
    let mut endpoints = Vec::new();
    for task in tasks {
        endpoints.push(task.await.map_err(std::io::Error::other)?);
    }
    let sends_ok = endpoints
        .iter()
        .filter(|e| e.method == "POST")
        .map(|e| e.samples.len() as u64)
        .sum::<u64>();
    let elapsed = start.elapsed().as_secs_f64();
    let expected = sends_ok * SEND_TEXT.len() as u64;
    let wait_until = Instant::now() + Duration::from_secs(5);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    let results: serde_json::Map<String, Value> = endpoints
        .iter()
        .map(|ep| {
            let mut v = Summary::of(&ep.samples).to_json();
            v["errors"] = ep.errors.to_json();
            v["bad_status"] = ep.bad_status.into();
            (ep.name.to_string(), v)
        })
        .collect();
    Ok(json!({
        "phase": "probe",
        "session_id": id,
        "elapsed_s": elapsed,
        "endpoints": results,
        "delivered_bytes": delivered.load(Ordering::Relaxed),
        "expected_bytes": expected,
    }))
}

/// Requests one endpoint until the probe's time or round budget is used up.
async fn time_endpoint(mut ep: Endpoint, opts: ProbeOptions, start: Instant) -> Endpoint {
    let mut client = HttpClient::new(opts.http, opts.request_timeout);
    let mut rounds = 0;
    while rounds < opts.max_rounds && start.elapsed() < opts.duration {
        let t = Instant::now();
        match client
            .request(ep.method, &ep.path, ep.body.as_deref())
            .await
        {
            Ok(r) if (200..300).contains(&r.status) => ep.samples.push(t.elapsed()),
            Ok(_) => ep.bad_status += 1,
            Err(e) => ep.errors.add(&e),
        }
        rounds += 1;
        tokio::time::sleep(opts.interval).await;
    }
    ep
}

fn endpoint(
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
) -> Endpoint {
    Endpoint {
        name,
        method,
        path,
        body,
        samples: Vec::new(),
        errors: ErrorCounts::default(),
        bad_status: 0,
    }
}

/// Finds the online session whose peer is `peer`, retrying for a few seconds (the server
/// registers a session just after accepting it).
async fn find_session(client: &mut HttpClient, peer: &str) -> std::io::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for page in 0..MAX_PAGES {
            let path = format!(
                "/api/sessions?state=online&limit=1000&offset={}",
                page * 1000
            );
            let r = client.request("GET", &path, None).await?;
            let v: Value = serde_json::from_slice(&r.body).map_err(std::io::Error::other)?;
            let sessions = v["sessions"].as_array().cloned().unwrap_or_default();
            if let Some(s) = sessions.iter().find(|s| s["peer"] == peer) {
                return s["id"]
                    .as_u64()
                    .ok_or_else(|| std::io::Error::other("session without an id"));
            }
            if sessions.len() < 1000 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no online session with peer {peer}"),
    ))
}
