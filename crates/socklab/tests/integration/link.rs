//! Link emulation end to end on loopback, driving `run`'s server directly: link events,
//! live link changes through the hub, NAT drop and reset, UDP loss, and the link routes.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use common::{TestServer, WAIT, next_event, online_id};
use http_body_util::BodyExt;
use socklab::link::{Fault, LinkSpec};
use socklab::model::{Direction, EndReason, Event, LinkAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tower::ServiceExt;

/// Nothing comes back to the device within 300 ms (as through a dropped NAT).
async fn assert_nothing_arrives(device: &mut TcpStream) {
    let mut one = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), device.read(&mut one))
            .await
            .is_err(),
        "nothing may come back through a dropped NAT"
    );
}

async fn read_n(stream: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read timed out")?;
    Ok(buf)
}

/// The delays of the `delayed` link events seen until `payload` is recorded going down.
async fn link_delays_until_down(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    payload: &[u8],
) -> Vec<u64> {
    let mut delays = Vec::new();
    next_event(events, |e| match e {
        Event::Link(l) if l.action == LinkAction::Delayed => {
            delays.push(l.delay_ms);
            None
        }
        Event::Data(m, _) if m.direction == Direction::Down && &m.data[..] == payload => Some(()),
        _ => None,
    })
    .await;
    delays
}

/// A 100 ms link delays data both ways and reports `delayed` events saying by how much
/// (the engine's own measure: no wall-clock bound in the test).
#[tokio::test]
async fn latency_delays_and_reports() {
    let server = TestServer::start(|c| {
        c.echo = true;
        c.links = vec![(None, LinkSpec::parse("perfect,latency=100ms").unwrap())];
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    next_event(&mut events, online_id).await;
    device.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut device, 4).await.unwrap(), b"ping");
    for dir in [Direction::Up, Direction::Down] {
        let delayed = next_event(&mut events, |e| match e {
            Event::Link(l) if l.action == LinkAction::Delayed => Some(l.clone()),
            _ => None,
        })
        .await;
        assert_eq!(delayed.direction, Some(dir));
        assert!(delayed.delay_ms >= 100, "{}", delayed.delay_ms);
    }
    server.stop().await;
}

/// Setting a link on a live session through the hub takes effect, and clearing it returns
/// the session to the plain loop with data still flowing.
#[tokio::test]
async fn live_link_change() {
    let server = TestServer::start(|c| c.echo = true).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let spec = LinkSpec::parse("perfect,latency=150ms").unwrap();
    let info = server.hub.set_session_link(id, Some(spec)).unwrap();
    assert_eq!(info.link.unwrap().spec, "perfect,latency=150ms");
    device.write_all(b"a").await.unwrap();
    read_n(&mut device, 1).await.unwrap();
    // Both ways went through the link: each piece reported delayed by its latency.
    let delays = link_delays_until_down(&mut events, b"a").await;
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!(delays.iter().all(|d| *d >= 150), "{delays:?}");
    server.hub.set_session_link(id, None).unwrap();
    device.write_all(b"b").await.unwrap();
    read_n(&mut device, 1).await.unwrap();
    // Back on the plain loop: the echo goes without passing the link.
    let delays = link_delays_until_down(&mut events, b"b").await;
    assert!(delays.is_empty(), "{delays:?}");
    server.stop().await;
}

/// An injected NAT drop: the device's data is recorded as dropped and nothing comes back;
/// an injected reset then gives the device ECONNRESET and ends the session `link_reset`.
#[tokio::test]
async fn nat_drop_then_reset() {
    let server = TestServer::start(|c| c.echo = true).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let info = server.hub.inject(id, Fault::NatDrop).await.unwrap();
    assert_eq!(info.link.unwrap().state, "nat_dropped");
    device.write_all(b"lost").await.unwrap();
    let dropped = next_event(&mut events, |e| match e {
        Event::Data(m, _) if m.dropped => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&dropped.data[..], b"lost");
    assert_nothing_arrives(&mut device).await;
    server.hub.inject(id, Fault::Reset).await.unwrap();
    let err = read_n(&mut device, 1).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let ended = next_event(&mut events, |e| match e {
        Event::Offline(s) if s.id == id => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ended.end_reason, Some(EndReason::LinkReset));
    server.stop().await;
}

/// The carrier NAT sits next to the device: data the device sent before the NAT forgot the
/// flow is already past it and still arrives; the echo it triggers goes nowhere.
#[tokio::test]
async fn data_in_flight_at_a_nat_drop_still_arrives() {
    let server = TestServer::start(|c| {
        c.echo = true;
        c.links = vec![(
            None,
            LinkSpec::parse("perfect,latency_up=3s,nat_idle=1s").unwrap(),
        )];
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    next_event(&mut events, online_id).await;
    device.write_all(b"in flight").await.unwrap();
    let data = |dir: Direction| {
        move |e: &Event| match e {
            Event::Data(m, _) if m.direction == dir => Some(m.clone()),
            _ => None,
        }
    };
    let up = next_event(&mut events, data(Direction::Up)).await;
    assert_eq!(&up.data[..], b"in flight");
    assert!(!up.dropped, "data sent before the NAT drop is delivered");
    let echo = next_event(&mut events, data(Direction::Down)).await;
    assert!(echo.dropped, "the reply cannot cross the dropped NAT");
    assert_nothing_arrives(&mut device).await;
    server.stop().await;
}

/// UDP with total loss: every datagram is recorded as dropped, none delivered.
#[tokio::test]
async fn udp_total_loss() {
    let server = TestServer::start(|c| {
        c.links = vec![(None, LinkSpec::parse("perfect,loss_up=1").unwrap())];
    })
    .await;
    let mut events = server.hub.subscribe();
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        device.send_to(b"x", server.udp()).await.unwrap();
    }
    for _ in 0..3 {
        let m = next_event(&mut events, |e| match e {
            Event::Data(m, _) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert!(m.dropped);
    }
    assert_eq!(server.hub.online_sessions()[0].counters.msgs_up, 0);
    server.stop().await;
}

async fn call(server: &TestServer, method: &str, path: &str, body: &str) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = server.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// The link routes answer with the right statuses (oneshot, no socket).
#[tokio::test]
async fn link_routes() {
    let server = TestServer::start(|_| {}).await;
    let (s, body) = call(&server, "GET", "/api/link-profiles", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("nbiot"));
    let (s, body) = call(
        &server,
        "PUT",
        "/api/listeners/0/link",
        r#"{"link":"cat1"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains(r#""link":"cat1""#));
    let (s, _) = call(&server, "PUT", "/api/listeners/0/link", r#"{"link":"5g"}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&server, "PUT", "/api/sessions/77/link", r#"{"link":null}"#).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &server,
        "POST",
        "/api/sessions/77/fault",
        r#"{"fault":"x"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// A NAT idle timeout set through the API on a silent session fires without any traffic.
#[tokio::test]
async fn nat_idle_on_a_silent_session() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let spec = LinkSpec::parse("perfect,nat_idle=300ms").unwrap();
    server.hub.set_session_link(id, Some(spec)).unwrap();
    next_event(&mut events, |e| match e {
        Event::Link(l) if l.action == LinkAction::NatDropped => Some(()),
        _ => None,
    })
    .await;
    let info = server.hub.online(id).unwrap().info(None);
    assert_eq!(info.link.unwrap().state, "nat_dropped");
    server.stop().await;
}

/// Operator sends to a UDP session take its down link: delayed by its latency, and
/// recorded as dropped when the link loses them.
#[tokio::test]
async fn udp_operator_sends_take_the_link() {
    let server = TestServer::start(|c| {
        c.links = vec![(None, LinkSpec::parse("perfect,latency_down=200ms").unwrap())];
    })
    .await;
    let mut events = server.hub.subscribe();
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    device.send_to(b"hi", server.udp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    server
        .hub
        .send(id, Bytes::from_static(b"down"))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(WAIT, device.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"down");
    // The datagram that started the session may still be reported (latency_up is 0);
    // the operator's send went down the link with its latency.
    let delays = link_delays_until_down(&mut events, b"down").await;
    let down = *delays.last().expect("no delayed event");
    assert!(down >= 200, "{delays:?}");
    assert!(
        delays[..delays.len() - 1].iter().all(|d| *d < 200),
        "{delays:?}"
    );
    let lossy = LinkSpec::parse("perfect,loss_down=1").unwrap();
    server.hub.set_session_link(id, Some(lossy)).unwrap();
    server
        .hub
        .send(id, Bytes::from_static(b"gone"))
        .await
        .unwrap();
    let m = next_event(&mut events, |e| match e {
        Event::Data(m, _) if m.direction == Direction::Down && m.dropped => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&m.data[..], b"gone");
    server.stop().await;
}

/// The console's `link` and `fault` commands act through the hub like the API.
#[tokio::test]
async fn console_link_commands() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let hub = &server.hub;
    let out = socklab::console::execute(hub, &format!("link {id} gprs,nat_idle=5s")).await;
    assert_eq!(out, format!("#{id}: link gprs,nat_idle=5s"));
    let out = socklab::console::execute(hub, "link all ltem").await;
    assert_eq!(out, "link ltem on every listener");
    assert_eq!(hub.listeners()[0].link.as_deref(), Some("ltem"));
    let out = socklab::console::execute(hub, &format!("fault {id} outage 2s")).await;
    assert_eq!(out, format!("#{id}: outage 2s"));
    assert!(
        socklab::console::execute(hub, "link 1 wifi")
            .await
            .starts_with("error:")
    );
    assert!(
        socklab::console::execute(hub, "fault x reset")
            .await
            .starts_with("error:")
    );
    server.stop().await;
}
