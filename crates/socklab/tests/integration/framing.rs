//! Auto-reply framing over real loopback sockets: with `line` or `delim:` framing a rule
//! answers a frame however TCP split it; with `read` framing it sees each read alone.

use crate::common;

use bytes::Bytes;
use common::{TestServer, next_event};
use socklab::framing::{Framing, FramingSpec};
use socklab::hub::listeners::{ListenRequest, ListenerSettings};
use socklab::model::{Direction, Event, Proto};
use socklab::rules::Rule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn rules() -> Vec<Rule> {
    vec![
        Rule::parse_flag("exact:PING=>text:PONG;").unwrap(),
        Rule::parse_flag("regex:^STATUS$=>text:OK;").unwrap(),
    ]
}

/// Writes `part` and waits until the server has read it (its up event), so the next
/// write arrives in a read of its own.
async fn write_read_alone(
    device: &mut TcpStream,
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    part: &[u8],
) {
    device.write_all(part).await.unwrap();
    let mut seen = 0;
    while seen < part.len() {
        seen += next_event(events, |e| match e {
            Event::Data(m, _) if m.direction == Direction::Up => Some(m.data.len()),
            _ => None,
        })
        .await;
    }
}

/// Reads exactly as many bytes as `expected` has. Replies go out in order, so a reply
/// that should not have been sent shows up as a mismatch here.
async fn expect(device: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(common::WAIT, device.read_exact(&mut got))
        .await
        .expect("reply did not come")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[tokio::test]
async fn line_framing_answers_lines_split_across_reads() {
    let server = TestServer::start(|c| {
        c.auto_replies = rules();
        c.reply_framing = Framing::Line;
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    write_read_alone(&mut device, &mut events, b"PI").await;
    write_read_alone(&mut device, &mut events, b"NG\r").await;
    write_read_alone(&mut device, &mut events, b"\nSTATUS\nPING\r\nST").await;
    expect(&mut device, b"PONG;OK;PONG;").await;
    // The partial "ST" waits for its line end.
    write_read_alone(&mut device, &mut events, b"ATUS\n").await;
    expect(&mut device, b"OK;").await;
    server.stop().await;
}

#[tokio::test]
async fn read_framing_tests_each_read_as_it_arrived() {
    let server = TestServer::start(|c| c.auto_replies = rules()).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    write_read_alone(&mut device, &mut events, b"PI").await;
    write_read_alone(&mut device, &mut events, b"NG\r\n").await;
    // Neither half matched: the first reply to come is the one for the whole PING.
    write_read_alone(&mut device, &mut events, b"PING\r\n").await;
    expect(&mut device, b"PONG;").await;

    // Switched at run time, the same session's next frames are lines.
    let info = server.hub.set_framing(0, Framing::Line).unwrap();
    assert_eq!(info.framing.kind, "line");
    write_read_alone(&mut device, &mut events, b"PI").await;
    write_read_alone(&mut device, &mut events, b"NG\n").await;
    expect(&mut device, b"PONG;").await;
    server.stop().await;
}

#[tokio::test]
async fn delimiter_framing_with_echo_keeps_echo_per_read() {
    let server = TestServer::start(|c| {
        c.auto_replies = vec![Rule::parse_flag("hex:01=>hex:aa").unwrap()];
        c.reply_framing = Framing::Delimiter(b"\x1a\x1a".to_vec());
        c.echo = true;
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    write_read_alone(&mut device, &mut events, b"\x01x\x1a").await;
    expect(&mut device, b"\x01x\x1a").await;
    write_read_alone(&mut device, &mut events, b"\x1a\x02\x1a\x1a").await;
    expect(&mut device, b"\x1a\x02\x1a\x1a\xaa").await;
    server.stop().await;
}

#[tokio::test]
async fn a_datagram_with_several_lines_gets_a_reply_per_line() {
    let server = TestServer::start(|c| {
        c.auto_replies = rules();
        c.reply_framing = Framing::Line;
    })
    .await;
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    device.connect(server.udp()).await.unwrap();
    device.send(b"PING\r\nSTATUS\nPI").await.unwrap();
    let mut replies = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..2 {
        let n = tokio::time::timeout(common::WAIT, device.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        replies.push(Bytes::copy_from_slice(&buf[..n]));
    }
    assert_eq!(replies, vec![Bytes::from("PONG;"), Bytes::from("OK;")]);
    // The trailing "PI" was a frame of its own (no frame spans two datagrams), so "NG\n"
    // gets no reply: the next datagram to come answers the STATUS after it.
    device.send(b"NG\n").await.unwrap();
    device.send(b"STATUS\n").await.unwrap();
    let n = tokio::time::timeout(common::WAIT, device.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"OK;");
    server.stop().await;
}

/// A listener added at run time starts with `--reply-framing`, as the command line's do;
/// replacing rules and framing together is one change, announced once.
#[tokio::test]
async fn run_time_listeners_start_with_the_reply_framing() {
    let server = TestServer::start(|c| c.reply_framing = Framing::Line).await;
    let added = server
        .hub
        .add_listener(ListenRequest {
            proto: Proto::Tcp,
            addr: "127.0.0.1:0".parse().unwrap(),
            settings: ListenerSettings {
                rules: rules(),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(&added.addr).await.unwrap();
    write_read_alone(&mut device, &mut events, b"PI").await;
    write_read_alone(&mut device, &mut events, b"NG\n").await;
    expect(&mut device, b"PONG;").await;

    let mut events = server.hub.subscribe();
    let changed = server
        .hub
        .set_auto_replies(added.id, rules(), Some(Framing::Read))
        .unwrap();
    assert_eq!(changed.framing, FramingSpec::of(&Framing::Read));
    server.hub.set_echo(added.id, true).unwrap();
    let mut announced = Vec::new();
    while announced.len() < 2 {
        announced.push(
            next_event(&mut events, |e| match e {
                Event::Listener(l) if l.id == added.id => Some(l.echo),
                _ => None,
            })
            .await,
        );
    }
    // The auto-replies change, then the echo change: nothing in between.
    assert_eq!(announced, [false, true]);
    server.stop().await;
}
