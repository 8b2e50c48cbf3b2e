//! The benchmark tools against each other: `socklab-loadgen` drives `bare-echo` on loopback
//! and both report the same counts.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `bare-echo` with its control pipes; killed on drop.
struct Echo {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Echo {
    fn start(args: &[&str]) -> Echo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bare-echo"))
            .args(["--max-secs", "60"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bare-echo starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let ready = read_json(&mut stdout);
        assert_eq!(ready["phase"], "ready");
        let addr = ready["addr"].as_str().unwrap().to_string();
        Echo {
            child,
            stdin,
            stdout,
            addr,
        }
    }

    fn stats(&mut self) -> Value {
        writeln!(self.stdin, "stats").unwrap();
        self.stdin.flush().unwrap();
        read_json(&mut self.stdout)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_json(r: &mut impl BufRead) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Runs the load generator to completion and returns its JSON lines.
fn loadgen(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_socklab-loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("socklab-loadgen runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn phase<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["phase"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
}

/// Every byte the ingest devices send is read and echoed back by the echo server.
#[test]
fn ingest_counts_match_the_echo_server() {
    let mut echo = Echo::start(&[]);
    let lines = loadgen(&[
        "ingest",
        "--target",
        &echo.addr,
        "--devices",
        "4",
        "--secs",
        "0.3",
    ]);
    let done = phase(&lines, "done");
    let sent = done["bytes_sent"].as_u64().unwrap();
    assert!(sent > 0 && sent.is_multiple_of(64), "{done}");
    assert_eq!(done["bytes_received"], sent, "the echo came back: {done}");
    assert_eq!(echo.stats()["bytes_received"], sent);
}

/// With `--discard` nothing comes back, and the server still counts every byte.
#[test]
fn discard_reads_without_echo() {
    let mut echo = Echo::start(&["--discard"]);
    let lines = loadgen(&[
        "ingest",
        "--target",
        &echo.addr,
        "--devices",
        "2",
        "--secs",
        "0.2",
    ]);
    let done = phase(&lines, "done");
    assert_eq!(done["bytes_received"], 0);
    assert_eq!(echo.stats()["bytes_received"], done["bytes_sent"]);
}

/// Idle connections from several source addresses are all accepted and all closed.
#[test]
fn idle_connections_come_and_go() {
    let mut echo = Echo::start(&[]);
    let lines = loadgen(&[
        "idle",
        "--target",
        &echo.addr,
        "--connections",
        "200",
        "--sources",
        "127.0.0.2-127.0.0.5",
        "--max-hold-secs",
        "5",
    ]);
    assert_eq!(phase(&lines, "connected")["connected"], 200);
    assert_eq!(phase(&lines, "closed")["closed"], 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = echo.stats();
        if stats["accepted"] == 200 && stats["online"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Non-loopback targets and sources are refused before any traffic.
#[test]
fn refuses_non_loopback() {
    let status = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_socklab-loadgen"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(!status(&["idle", "--target", "192.0.2.1:80"]).success());
    assert!(!status(&["idle", "--target", "127.0.0.1:80", "--sources", "10.0.0.1"]).success());
}
