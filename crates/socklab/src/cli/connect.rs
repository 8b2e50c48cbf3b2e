//! `socklab connect HOST:PORT`: asks a running socklab, through its HTTP API, to open a
//! session to a device that is the server (client mode). The running server is found by
//! `--ready-file` (the file it wrote with `--ready-file`: address and token), or by `--api`
//! and `--token` (default `http://127.0.0.1:8080`, token from `SOCKLAB_TOKEN`).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// How long the whole call may take: the server's own connect timeout plus a margin.
const CALL_TIMEOUT: Duration = Duration::from_secs(75);

/// Arguments of `socklab connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The device's address, HOST:PORT ([IPV6]:PORT).
    pub target: String,
    /// Open a UDP flow instead of a TCP connection.
    #[arg(long)]
    pub udp: bool,
    /// Send this text once connected (escapes \r \n \t \xHH).
    #[arg(long, value_name = "TEXT", conflicts_with = "hex")]
    pub text: Option<String>,
    /// Send these bytes (hex) once connected.
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,
    /// Echo what the device sends back to it.
    #[arg(long)]
    pub echo: bool,
    /// Emulated link of the connection: PROFILE[,param=value...].
    #[arg(long, value_name = "SPEC")]
    pub link: Option<String>,
    /// Connect timeout in milliseconds (the running socklab's default: 5000).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// The running socklab's ready file (its --ready-file): API address and token.
    #[arg(long, value_name = "PATH", conflicts_with = "api")]
    pub ready_file: Option<PathBuf>,
    /// The running socklab's dashboard/API address.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API token of the running socklab (default: $SOCKLAB_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SOCKLAB_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the new session as JSON instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// Where the API is and the token to send.
#[derive(Debug)]
struct Api {
    /// `HOST:PORT` of the API.
    authority: String,
    /// Bearer token.
    token: Option<String>,
}

fn locate(args: &ConnectArgs) -> Result<Api, String> {
    if let Some(path) = &args.ready_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read ready file {}: {e}", path.display()))?;
        let ready: Value = serde_json::from_str(&text)
            .map_err(|e| format!("ready file {} is not socklab's: {e}", path.display()))?;
        let http = ready["http"]
            .as_str()
            .ok_or_else(|| format!("ready file {} has no \"http\"", path.display()))?;
        let addr: std::net::SocketAddr = http
            .parse()
            .map_err(|_| format!("ready file {}: bad address {http:?}", path.display()))?;
        return Ok(Api {
            authority: crate::config::browsable(addr).to_string(),
            token: args
                .token
                .clone()
                .or_else(|| ready["token"].as_str().map(str::to_string)),
        });
    }
    let authority = args
        .api
        .strip_prefix("http://")
        .ok_or_else(|| format!("--api {:?}: only http://HOST:PORT is supported", args.api))?
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(format!("--api {:?} is not http://HOST:PORT", args.api));
    }
    Ok(Api {
        authority: authority.to_string(),
        token: args.token.clone().filter(|t| !t.is_empty()),
    })
}

/// The request body for `POST /api/connect`.
fn body(args: &ConnectArgs) -> Result<Value, String> {
    let mut body = json!({
        "addr": args.target,
        "proto": if args.udp { "udp" } else { "tcp" },
        "echo": args.echo,
    });
    if let Some(text) = &args.text {
        let bytes = crate::rules::unescape(text).map_err(|e| e.to_string())?;
        body["hex"] = json!(hex::encode(bytes));
    }
    if let Some(h) = &args.hex {
        body["hex"] = json!(h);
    }
    if let Some(link) = &args.link {
        body["link"] = json!(link);
    }
    if let Some(ms) = args.timeout_ms {
        body["timeout_ms"] = json!(ms);
    }
    Ok(body)
}

/// One `POST /api/connect`; returns the status and the JSON answer.
async fn post(api: &Api, body: Value) -> Result<(u16, Value), String> {
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "cannot reach socklab at http://{}: {e} (is it running? see --api, --ready-file)",
            api.authority
        )
    };
    let stream = TcpStream::connect(&api.authority)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(conn);
    let mut req = Request::post("/api/connect")
        .header(HOST, &api.authority)
        .header(CONTENT_TYPE, "application/json");
    if let Some(token) = &api.token {
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(&e))?
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({ "error": format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)) }),
    );
    Ok((status, value))
}

/// Runs `socklab connect`: prints the new session (one line, or JSON with `--json`) and
/// returns `Ok`, or the reason it failed (the API's own error text).
pub fn run(args: &ConnectArgs) -> Result<String, String> {
    let api = locate(args)?;
    let body = body(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (status, answer) = runtime.block_on(async {
        tokio::time::timeout(CALL_TIMEOUT, post(&api, body))
            .await
            .map_err(|_| format!("socklab at http://{} did not answer", api.authority))?
    })?;
    if status != 200 {
        return Err(answer["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}")));
    }
    if args.json {
        return Ok(answer.to_string());
    }
    Ok(format!(
        "#{} {} connected to {} from {} (listener {}); history and dashboard as for any session",
        answer["id"],
        answer["proto"].as_str().unwrap_or("?"),
        answer["peer"].as_str().unwrap_or("?"),
        answer["local"].as_str().unwrap_or("?"),
        answer["listener_id"]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ConnectArgs,
    }

    /// The API address comes from --api, text is sent as its unescaped bytes.
    #[test]
    fn builds_the_call() {
        let w = Wrap::parse_from(["x", "127.0.0.1:5000", "--udp", "--text", "A\\r\\n"]);
        let b = body(&w.args).unwrap();
        assert_eq!(
            (b["proto"].as_str(), b["hex"].as_str()),
            (Some("udp"), Some("410d0a"))
        );
        assert_eq!(locate(&w.args).unwrap().authority, "127.0.0.1:8080");
        let w = Wrap::parse_from(["x", "h:1", "--api", "https://h:1"]);
        assert!(locate(&w.args).unwrap_err().contains("only http://"));
    }
}
