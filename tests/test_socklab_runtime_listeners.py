"""Listeners added and removed while socklab runs, through the API and the console: real
devices (CPython sockets) reach them, removal ends their sessions with listener_removed,
errors are clear, and ids stay unique across a restart on the same history."""

from __future__ import annotations

import socket

from conftest import recv_exactly


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def test_tcp_listener_added_and_removed(socklab) -> None:
    """A TCP listener added at run time (echo on) serves a device; removing it ends the
    session with listener_removed, the device sees an orderly close, the port is free."""
    status, listener = socklab.post(
        "/api/listeners", {"proto": "tcp", "addr": "127.0.0.1:0", "echo": True}
    )
    assert status == 200, listener
    assert (listener["kind"], listener["echo"], listener["id"]) == ("listen", True, 2)
    port = _port(listener["addr"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as device:
        device.sendall(b"ping")
        assert recv_exactly(device, 4) == b"ping"
        session = socklab.wait_session(lambda s: s["listener_id"] == listener["id"])
        status, body = socklab.request("DELETE", f"/api/listeners/{listener['id']}")
        assert status == 200, body
        assert body["sessions_ended"] == 1
        assert body["removed"]["id"] == listener["id"]
        assert device.recv(10) == b""
    ended = socklab.wait_session(lambda s: s["id"] == session["id"] and not s["online"])
    assert ended["end_reason"] == "listener_removed"
    status, listeners = socklab.get("/api/listeners")
    assert [entry["id"] for entry in listeners["listeners"]] == [0, 1]
    with socket.socket() as late:
        assert late.connect_ex(("127.0.0.1", port)) != 0
    status, again = socklab.post("/api/listeners", {"proto": "tcp", "addr": f"127.0.0.1:{port}"})
    assert status == 200, again


def test_udp_listener_added_and_removed(socklab) -> None:
    """A UDP listener added at run time records a device's datagrams; removing it ends the
    UDP session with listener_removed."""
    status, listener = socklab.post("/api/listeners", {"proto": "udp", "addr": "127.0.0.1:0"})
    assert status == 200, listener
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
        device.sendto(b"telemetry", ("127.0.0.1", _port(listener["addr"])))
        session = socklab.wait_session(
            lambda s: s["listener_id"] == listener["id"] and s["bytes_up"] == 9
        )
    status, body = socklab.request("DELETE", f"/api/listeners/{listener['id']}")
    assert (status, body["sessions_ended"]) == (200, 1)
    ended = socklab.wait_session(lambda s: s["id"] == session["id"] and not s["online"])
    assert ended["end_reason"] == "listener_removed"


def test_listener_errors_are_clear(socklab) -> None:
    """In use: 409; a name or junk: 400; outside loopback: 403 naming --allow-net; unknown
    id: 404."""
    status, body = socklab.post(
        "/api/listeners", {"proto": "tcp", "addr": f"127.0.0.1:{socklab.tcp_port}"}
    )
    assert status == 409 and "already in use" in body["error"]
    status, body = socklab.post("/api/listeners", {"proto": "tcp", "addr": "device.lan:9000"})
    assert status == 400 and "IP:PORT" in body["error"]
    status, body = socklab.post("/api/listeners", {"proto": "tcp", "addr": "0.0.0.0:0"})
    assert status == 403 and "--allow-net" in body["error"]
    status, body = socklab.post("/api/listeners", {"proto": "quic", "addr": "127.0.0.1:0"})
    assert status == 400 and "tcp or udp" in body["error"]
    status, body = socklab.request("DELETE", "/api/listeners/77")
    assert status == 404 and body["error"] == "no listener 77"


def test_allow_net_lets_the_operator_bind_every_interface(socklab_factory) -> None:
    """With --allow-net any, a wildcard bind is allowed (nothing is sent anywhere)."""
    lab = socklab_factory(allow_net="any")
    status, body = lab.post("/api/listeners", {"proto": "udp", "addr": "0.0.0.0:0"})
    assert status == 200, body
    assert body["addr"].startswith("0.0.0.0:")


def test_listener_ids_unique_across_restarts(socklab) -> None:
    """A listener added after a restart does not take the id of one whose sessions are in
    the history."""
    status, first = socklab.post("/api/listeners", {"proto": "tcp", "addr": "127.0.0.1:0"})
    assert status == 200
    with socket.create_connection(("127.0.0.1", _port(first["addr"])), timeout=10) as device:
        device.sendall(b"x")
        socklab.wait_session(lambda s: s["listener_id"] == first["id"] and s["bytes_up"] == 1)
    socklab.restart()
    status, second = socklab.post("/api/listeners", {"proto": "tcp", "addr": "127.0.0.1:0"})
    assert status == 200
    assert second["id"] > first["id"]


def test_console_listen_listeners_unlisten(console_socklab) -> None:
    """The console adds a listener, lists it and removes it."""
    lab = console_socklab("--quiet")
    for line in ("listen udp 127.0.0.1:0", "listeners", "unlisten 1", "unlisten 1", "listen x"):
        lab.say(line)
    lab.read_until("added listener 1 udp 127.0.0.1:")
    lab.read_until("2 listener(s)")
    assert "(0 session(s) ended)" in lab.read_until("removed listener 1 udp 127.0.0.1:")
    lab.read_until("error: no listener 1")
    lab.read_until("usage: listen tcp|udp ADDR")
