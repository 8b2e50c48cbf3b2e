"""The TCP connection loop against real sockets: data sent down is recorded with the
outcome of its write, and a device that half-closes (FIN, still reading) gets what was on
its way to it and its own end reason."""

from __future__ import annotations

import socket

DEVICE_TIMEOUT_S = 20.0
CHUNK = 256 * 1024


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(DEVICE_TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


def test_sends_are_recorded_with_the_outcome_of_their_write(socklab):
    """A device that does not read: what the socket took is recorded `ok` (and counted),
    the write still blocked when the operator closes, and what was queued behind it, are
    `undelivered`. The device then finds exactly the `ok` bytes (plus at most a part of the
    interrupted write) in its socket."""
    dev = connect(socklab.tcp_port, rcvbuf=4096)
    try:
        session = socklab.wait_session(lambda s: s["online"], "the device online")
        sid = session["id"]
        accepted = 0
        for i in range(64):
            status, body = socklab.post(
                f"/api/sessions/{sid}/send", {"hex": (bytes([i]) * CHUNK).hex()}
            )
            if status == 503:
                break
            assert status == 200, body
            accepted += 1
        assert 2 <= accepted < 64, "the outbox never filled"
        status, body = socklab.post(f"/api/sessions/{sid}/close")
        assert status == 200, body
        received = read_to_eof(dev)
    finally:
        dev.close()
    messages = [m for m in socklab.messages(sid) if m["direction"] == "down"]
    assert len(messages) == accepted
    ok = [m for m in messages if m["status"] == "ok"]
    undelivered = [m for m in messages if m["status"] == "undelivered"]
    assert len(ok) + len(undelivered) == accepted and undelivered, messages
    ok_bytes = sum(m["len"] for m in ok)
    # The ok messages come first and went out whole; the first undelivered one may have
    # been written in part when the close interrupted it.
    assert messages[: len(ok)] == ok
    assert ok_bytes <= len(received) < ok_bytes + CHUNK
    assert received[:ok_bytes] == b"".join(bytes([i]) * CHUNK for i in range(len(ok)))
    ended = socklab.wait_session(lambda s: s["id"] == sid and not s["online"], "the end")
    assert ended["bytes_down"] == ok_bytes and ended["msgs_down"] == len(ok)
    assert ended["end_reason"] == "closed_by_operator"


def test_half_closed_device_gets_the_reply_the_link_still_carried(socklab_factory):
    """Behind a slow link, the device sends a request and half-closes (FIN) at once, then
    reads: the auto-reply reaches it after the FIN, then socklab closes; the session ends
    `half_closed_by_device` and the reply is recorded as sent."""
    lab = socklab_factory(link="perfect,latency=300ms", auto_reply=["exact:ping=>text:pong"])
    dev = connect(lab.tcp_port)
    try:
        dev.sendall(b"ping")
        dev.shutdown(socket.SHUT_WR)
        assert read_to_eof(dev) == b"pong"
    finally:
        dev.close()
    ended = lab.wait_session(lambda s: not s["online"], "the session to end")
    assert ended["end_reason"] == "half_closed_by_device", ended
    messages = lab.messages(ended["id"])
    assert [(m["direction"], m["text"], m["status"]) for m in messages] == [
        ("up", "ping", "ok"),
        ("down", "pong", "ok"),
    ]


def test_device_close_with_nothing_on_its_way_is_closed_by_device(socklab):
    """A device that sends and closes, with nothing queued for it: `closed_by_device`."""
    dev = connect(socklab.tcp_port)
    dev.sendall(b"bye")
    socklab.wait_session(lambda s: s["bytes_up"] == 3, "the data stored")
    dev.close()
    ended = socklab.wait_session(lambda s: not s["online"], "the session to end")
    assert ended["end_reason"] == "closed_by_device", ended
