//! Integration tests of `usocket-core` on loopback (port 0): the device's errors, the FIN
//! rule, timeouts, close() from another thread, and thread-stop marks.

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use usocket_core::interrupt::{clear_thread_stop, current_thread_ident, request_thread_stop};
use usocket_core::socket::ReadOutcome;
use usocket_core::{Error, Mode, Socket};

const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;

fn no_check() -> impl FnMut() -> usocket_core::Result<()> {
    || Ok(())
}

/// A usocket client connected to a std listener, and the server side of the connection.
fn pair() -> (Socket, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = Socket::new(AF_INET, SOCK_STREAM, 0).unwrap();
    client.connect("127.0.0.1", port, &mut no_check()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn recv_vec(s: &Socket, n: usize) -> usocket_core::Result<Vec<u8>> {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); n];
    let got = s.recv(&mut buf, 0, &mut no_check())?;
    Ok(buf[..got]
        .iter()
        .map(|b| unsafe { b.assume_init() })
        .collect())
}

#[test]
fn send_and_recv_round_trip_and_state_codes() {
    let (client, mut server) = pair();
    assert_eq!(client.tcp_state(), 4);
    assert_eq!(client.send(b"1234567890\r\n", 0, &mut no_check()), Ok(12));
    let mut got = [0u8; 12];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"1234567890\r\n");
    server.write_all(b"0123456789").unwrap();
    assert_eq!(recv_vec(&client, 1024).unwrap(), b"0123456789");
    client.close();
    assert_eq!(client.tcp_state(), -1);
    assert_eq!(client.fileno(), -1);
}

#[test]
fn fin_rule_raises_107_once_then_empty() {
    let (client, mut server) = pair();
    server.write_all(b"bye").unwrap();
    drop(server);
    assert_eq!(recv_vec(&client, 10).unwrap(), b"bye");
    assert_eq!(recv_vec(&client, 10), Err(Error::Os(107)));
    assert_eq!(recv_vec(&client, 10).unwrap(), b"");
    assert_eq!(client.tcp_state(), 7);
}

#[test]
fn refused_connect_is_104_and_second_connect_is_114() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Socket::new(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        s.connect("127.0.0.1", port, &mut no_check()),
        Err(Error::Os(104))
    );
    assert_eq!(
        s.connect("127.0.0.1", port, &mut no_check()),
        Err(Error::Os(114))
    );
}

#[test]
fn timeouts_and_nonblocking_give_110_and_11() {
    let (client, _server) = pair();
    client
        .set_mode(Mode::Timeout(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(recv_vec(&client, 10), Err(Error::Os(110)));
    client.set_mode(Mode::NonBlocking).unwrap();
    assert_eq!(recv_vec(&client, 10), Err(Error::Os(11)));
    assert_eq!(
        client.read(Some(3), &mut no_check()),
        Ok(ReadOutcome::WouldBlock)
    );
}

#[test]
fn close_from_another_thread_wakes_a_blocked_recv() {
    let (client, _server) = pair();
    let client = Arc::new(client);
    let reader = {
        let c = Arc::clone(&client);
        thread::spawn(move || recv_vec(&c, 10))
    };
    thread::sleep(Duration::from_millis(200));
    client.close();
    assert_eq!(reader.join().unwrap(), Err(Error::Os(9)));
}

#[test]
fn close_from_another_thread_wakes_a_blocked_accept() {
    let listener = Arc::new(Socket::new(AF_INET, SOCK_STREAM, 0).unwrap());
    listener.bind("127.0.0.1", 0, &mut no_check()).unwrap();
    listener.listen(1).unwrap();
    assert_eq!(listener.tcp_state(), 1);
    let acceptor = {
        let l = Arc::clone(&listener);
        thread::spawn(move || l.accept(&mut no_check()).map(|_| ()))
    };
    thread::sleep(Duration::from_millis(200));
    listener.close();
    assert_eq!(acceptor.join().unwrap(), Err(Error::Os(9)));
}

#[test]
fn checkpoint_errors_end_a_blocking_call() {
    let (client, _server) = pair();
    let mut calls = 0;
    let mut check = || {
        calls += 1;
        if calls >= 2 {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    };
    let mut buf = [MaybeUninit::uninit(); 4];
    assert_eq!(
        client.recv(&mut buf, 0, &mut check),
        Err(Error::Interrupted)
    );
}

#[test]
fn thread_stop_mark_ends_a_blocking_recv() {
    let (client, _server) = pair();
    let client = Arc::new(client);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let c = Arc::clone(&client);
        thread::spawn(move || {
            tx.send(current_thread_ident()).unwrap();
            recv_vec(&c, 10)
        })
    };
    let ident = rx.recv().unwrap();
    thread::sleep(Duration::from_millis(150));
    request_thread_stop(ident);
    let result = reader.join().unwrap();
    clear_thread_stop(ident);
    assert_eq!(result, Err(Error::ThreadStopped));
}

#[test]
fn readline_buffer_serves_lines_then_recv() {
    let (client, mut server) = pair();
    server.write_all(b"one\ntwo\nrest").unwrap();
    drop(server);
    let w = client.waiter();
    while client.buffered_line(None, |l| l.to_vec()).is_none() {
        client.fill_buffer(&w, &mut no_check()).unwrap();
    }
    assert_eq!(
        client.buffered_line(None, |l| l.to_vec()),
        Some(b"two\n".to_vec())
    );
    assert_eq!(
        client.read(None, &mut no_check()),
        Ok(ReadOutcome::Data(b"rest".to_vec()))
    );
}

#[test]
fn the_estimated_state_agrees_with_the_kernel_on_what_scripts_test() {
    // The fallback of getsocketsta() where the system has no TCP_INFO, checked against
    // the kernel's own answer at each step.
    let both = |s: &Socket| (s.tcp_state(), s.estimated_tcp_state());
    let fresh = Socket::new(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(both(&fresh), (0, 0));
    let listener = Socket::new(AF_INET, SOCK_STREAM, 0).unwrap();
    listener.bind("127.0.0.1", 0, &mut no_check()).unwrap();
    listener.listen(1).unwrap();
    assert_eq!(both(&listener), (1, 1));
    let (client, mut server) = pair();
    assert_eq!(both(&client), (4, 4));
    drop(server.shutdown(std::net::Shutdown::Write));
    assert_eq!(client.read(None, &mut no_check()), Err(Error::Os(107)));
    assert_eq!(both(&client), (7, 7));
    server.write_all(b"").unwrap();
    client.close();
    assert_eq!(both(&client), (-1, -1));
    let udp = Socket::new(AF_INET, 2, 0).unwrap();
    assert_eq!(both(&udp), (0, 0));
}
