"""The device-style examples, each run through usocket-run against a real loopback peer."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from conftest import SOCKLAB_BIN
from runner_support import EXAMPLES, Running, TcpPeer, free_port, run_device


def test_tcp_client_with_reader_thread() -> None:
    """The tutorial's pattern: main sends and returns, the reader thread prints the echoes
    and ends on the server's FIN with OSError(107); the run waits for it."""

    def echo_three_then_close(conn: socket.socket, _index: int, peer: TcpPeer) -> None:
        for _ in range(3):
            conn.sendall(f"echo: {peer.read_line(conn)}\n".encode())

    peer = TcpPeer(echo_three_then_close)
    result = run_device(
        "--timeout",
        "20",
        "--map",
        f"112.125.89.8:37982=127.0.0.1:{peer.port}",
        str(EXAMPLES / "device_tcp_client.py"),
    )
    peer.join()
    assert result.returncode == 0, result.stderr
    assert peer.lines == ["hello 1", "hello 2", "hello 3"]
    out = result.stdout.splitlines()
    assert [line for line in out if line.startswith("send")] == ["send 9 bytes"] * 3
    assert [line for line in out if line.startswith("recv")] == [
        "recv: echo: hello 1",
        "recv: echo: hello 2",
        "recv: echo: hello 3",
    ]
    assert f"usocket: mapped 112.125.89.8:37982 -> 127.0.0.1:{peer.port}" in result.stderr
    assert f"INFO:tcp_client:connected to 127.0.0.1:{peer.port}" in result.stderr
    assert result.stderr.rstrip().endswith("INFO:tcp_client:reader ends: [Errno 107] ENOTCONN")


def test_tcp_server_thread_per_client() -> None:
    """IPPROTO_TCP_SER server: 3-tuple accept, one thread per client, upper-case echo."""
    port = free_port()
    with Running("--timeout", "20", str(EXAMPLES / "device_tcp_server.py"), str(port), "2") as run:
        assert run.wait_for("listening on") == f"listening on 127.0.0.1:{port}"
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            for n, client in enumerate(clients):
                client.sendall(f"client {n}\n".encode())
            replies = [client.recv(64) for client in clients]
        finally:
            for client in clients:
                client.close()
        status, out, err = run.finish()
    assert status == 0, err
    assert replies == [b"CLIENT 0\n", b"CLIENT 1\n"]
    assert out.splitlines()[-1] == "accepted 2 clients, listener closed"
    assert err.count("INFO:tcp_server:client 127.0.0.1:") == 4  # connected + gone, twice
    assert err.count("gone: [Errno 107] ENOTCONN") == 2


def test_udp_server_answers_a_cpython_client() -> None:
    """The UDP server role acks each datagram to its sender."""
    port = free_port(socket.SOCK_DGRAM)
    with Running(
        "--timeout", "20", str(EXAMPLES / "device_udp.py"), "server", str(port), "2"
    ) as run:
        run.wait_for("udp server on")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(10)
            replies = []
            for n in range(2):
                client.sendto(f"m{n}".encode(), ("127.0.0.1", port))
                replies.append(client.recv(64))
            client_port = client.getsockname()[1]
        status, out, err = run.finish()
    assert status == 0, err
    assert replies == [b"ack m0", b"ack m1"]
    assert f"from 127.0.0.1:{client_port}: m1" in out


def test_udp_client_and_server_pair_through_the_runner() -> None:
    """Both roles run as device scripts; the client reaches the server through --map."""
    port = free_port(socket.SOCK_DGRAM)
    udp = str(EXAMPLES / "device_udp.py")
    with Running("--timeout", "20", udp, "server", str(port), "3") as server:
        server.wait_for("udp server on")
        client = run_device(
            "--timeout", "20", "--map", f"112.125.89.8:37983=127.0.0.1:{port}", udp, "client", "3"
        )
        status, out, err = server.finish()
    assert client.returncode == 0, client.stderr
    assert client.stdout == "reply: ack ping 1\nreply: ack ping 2\nreply: ack ping 3\n"
    assert status == 0, err
    assert out.count("from 127.0.0.1:") == 3


def test_reconnecting_client_survives_server_drops() -> None:
    """The client reconnects with a new socket after each drop, sends heartbeats when the
    line is quiet, and reports the TCP state: 4 connected, 7 after FIN, -1 after close."""

    def session(conn: socket.socket, index: int, peer: TcpPeer) -> None:
        assert peer.read_line(conn) == f"hello {index + 1}"
        conn.sendall(b"welcome\n")
        assert peer.read_line(conn) == "heartbeat"  # sent after 0.3 s of silence
        conn.sendall(b"bye\n")

    peer = TcpPeer(session, connections=3)
    result = run_device(
        "--timeout",
        "25",
        "--map",
        f"iot.example.com:37984=127.0.0.1:{peer.port}",
        str(EXAMPLES / "device_reconnect.py"),
        "3",
    )
    peer.join()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for n in (1, 2, 3):
        assert f"session {n}: connected, state 4" in lines
        assert f"session {n}: got welcome" in lines
        assert f"session {n}: got bye" in lines
        assert f"session {n}: closed, state -1" in lines
        dropped = [line for line in lines if line.startswith(f"session {n}: server dropped us")]
        assert dropped == [f"session {n}: server dropped us ([Errno 107] ENOTCONN), state 7"]
    assert lines[-1] == "done after 3 sessions"


def test_tcp_client_against_socklab(socklab_factory) -> None:
    """The client example, unchanged, against a real socklab in echo mode: the upload is in
    the session's history, the echoes come back, and an operator close ends the run."""
    if not Path(SOCKLAB_BIN).exists() and not os.environ.get("CI"):  # CI builds it: fail there
        pytest.skip(f"socklab not built at {SOCKLAB_BIN}")
    lab = socklab_factory(echo=True)
    with Running(
        "--timeout",
        "20",
        "--map",
        f"112.125.89.8:37982=127.0.0.1:{lab.tcp_port}",
        str(EXAMPLES / "device_tcp_client.py"),
    ) as run:
        run.wait_for("recv: hello 3")
        sid = lab.wait_session(lambda s: s["online"], "the device online")["id"]
        assert lab.post(f"/api/sessions/{sid}/close") == (200, {"closed": True})
        status, out, err = run.finish()
    assert status == 0, err
    assert [line for line in out.splitlines() if line.startswith("recv")] == [
        "recv: hello 1",
        "recv: hello 2",
        "recv: hello 3",
    ]
    assert err.rstrip().endswith("INFO:tcp_client:reader ends: [Errno 107] ENOTCONN")
    uploaded = "".join(m["text"] for m in lab.messages(sid) if m["direction"] == "up")
    assert uploaded == "hello 1\r\nhello 2\r\nhello 3\r\n"
