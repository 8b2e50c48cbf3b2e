"""socklab with real usocket TCP devices: the tutorial's session, data both ways, end reasons,
operator close, broadcast, echo and auto-reply, and the SIGTERM shutdown reason."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import REPO, recv_exactly

usocket = pytest.importorskip("usocket")


def test_tutorial_session_online_data_offline(socklab, tcp_device):
    """The tutorial's steps show on the server: online, 12 bytes up, 10 down, offline."""
    dev = tcp_device(socklab.tcp_port)
    s = socklab.wait_session(lambda s: s["online"], "the device online")
    assert s["proto"] == "tcp" and s["end_reason"] is None
    assert s["local"] == f"127.0.0.1:{socklab.tcp_port}"
    assert dev.send("1234567890\r\n") == 12
    socklab.wait_for("data up", lambda: socklab.messages(s["id"]))
    assert socklab.post(f"/api/sessions/{s['id']}/send", {"text": "0123456789"}) == (
        200,
        {"bytes": 10},
    )
    assert recv_exactly(dev, 10) == b"0123456789"
    dev.close()
    ended = socklab.wait_session(lambda x: x["id"] == s["id"] and not x["online"], "offline")
    assert ended["end_reason"] == "closed_by_device"
    assert (ended["bytes_up"], ended["bytes_down"], ended["msgs_down"]) == (12, 10, 1)
    up, down = socklab.messages(s["id"])
    assert (up["direction"], up["text"], up["hex"]) == (
        "up",
        "1234567890\r\n",
        "313233343536373839300d0a",
    )
    assert (down["direction"], down["len"]) == ("down", 10)
    assert up["ts_ms"] <= down["ts_ms"] and down["ts"].endswith("Z")


def test_binary_data_both_ways(socklab, tcp_device):
    """Every byte value goes up and down unchanged and is shown as hex."""
    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    payload = bytes(range(256))
    dev.sendall(payload)
    socklab.wait_for(
        "256 bytes up", lambda: socklab.get(f"/api/sessions/{sid}")[1]["bytes_up"] == 256
    )
    assert "".join(m["hex"] for m in socklab.messages(sid)) == payload.hex()
    status, body = socklab.post(f"/api/sessions/{sid}/send", {"hex": payload[::-1].hex()})
    assert (status, body) == (200, {"bytes": 256})
    assert recv_exactly(dev, 256) == payload[::-1]


def test_operator_close_then_409(socklab, tcp_device):
    """Closing from the API ends the session as closed_by_operator; the device sees the end;
    actions on it then answer 409."""
    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    assert socklab.post(f"/api/sessions/{sid}/close") == (200, {"closed": True})
    _, s = socklab.get(f"/api/sessions/{sid}")
    assert (s["online"], s["end_reason"]) == (False, "closed_by_operator")
    # usocket reports the peer's close like a device: ENOTCONN first, then b"".
    try:
        assert dev.recv(16) == b""
    except OSError as err:
        assert err.args[0] == 107
    assert socklab.post(f"/api/sessions/{sid}/send", {"text": "x"})[0] == 409
    assert socklab.post(f"/api/sessions/{sid}/close")[0] == 409


# A device that loses power: the process dies with unread data, so its kernel answers
# with RST (usocket's own close() shuts down in order first, which is a FIN).
POWER_CUT_DEVICE = """
import os, sys, usocket
s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
s.settimeout(20)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.send(b"hello")
assert s.recv(1) == b"0"
os._exit(0)
"""


def test_reset_by_device(socklab):
    """A device that dies with unread data resets the connection: end reason reset."""
    device = subprocess.Popen([sys.executable, "-c", POWER_CUT_DEVICE, str(socklab.tcp_port)])
    sid = socklab.wait_session(lambda s: s["bytes_up"] == 5)["id"]
    socklab.post(f"/api/sessions/{sid}/send", {"text": "0123456789"})
    assert device.wait(timeout=60) == 0
    s = socklab.wait_session(lambda s: s["id"] == sid and not s["online"], "offline")
    assert s["end_reason"] == "reset"


def test_broadcast_reaches_every_device(socklab, tcp_device):
    """Broadcast sends to all online sessions and reports how many."""
    devs = [tcp_device(socklab.tcp_port) for _ in range(3)]
    socklab.wait_for("3 online", lambda: len(socklab.sessions("online")) == 3)
    assert socklab.post("/api/broadcast", {"text": "all\r\n"}) == (
        200,
        {"sessions": 3, "bytes": 15},
    )
    for dev in devs:
        assert recv_exactly(dev, 5) == b"all\r\n"
    status, body = socklab.post("/api/broadcast", {"hex": "00", "listener_id": 1})
    assert (status, body) == (200, {"sessions": 0, "bytes": 0})  # listener 1 is UDP


def test_echo_mode(socklab, tcp_device):
    """With echo on, what a device sends comes back; the echo is recorded as data down."""
    status, listener = socklab.put("/api/listeners/0/echo", {"enabled": True})
    assert status == 200 and listener["echo"] is True
    dev = tcp_device(socklab.tcp_port)
    dev.sendall(b"ping\x00\xff")
    assert recv_exactly(dev, 6) == b"ping\x00\xff"
    sid = socklab.wait_session(lambda s: s["msgs_down"] == 1)["id"]
    assert [m["direction"] for m in socklab.messages(sid)] == ["up", "down"]
    socklab.put("/api/listeners/0/echo", {"enabled": False})
    assert socklab.get("/api/listeners")[1]["listeners"][0]["echo"] is False


def test_echo_flag(socklab_factory, tcp_device):
    """--echo starts every listener in echo mode."""
    lab = socklab_factory(echo=True)
    assert all(listener["echo"] for listener in lab.get("/api/listeners")[1]["listeners"])
    dev = tcp_device(lab.tcp_port)
    dev.send(b"1234567890\r\n")
    assert recv_exactly(dev, 12) == b"1234567890\r\n"


def test_auto_reply_flag_runs_the_tutorial(socklab_factory):
    """--auto-reply answers the tutorial's upload: examples/use_socket.py prints 0123456789."""
    lab = socklab_factory(auto_reply=["exact:1234567890=>text:0123456789"])
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "use_socket.py"), "127.0.0.1", str(lab.tcp_port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.splitlines() == ["send 12 bytes", "recv 10 bytes:", "0123456789"]
    s = lab.wait_session(lambda s: not s["online"], "the device offline")
    assert [m["text"] for m in lab.messages(s["id"])] == ["1234567890\r\n", "0123456789"]


def test_auto_reply_rules_from_the_api(socklab, tcp_device):
    """Rules set over the API: hex and regex matchers, text and hex replies, first match wins."""
    rules = [
        {"match": "regex", "pattern": r"^AT\+CSQ", "reply_text": "+CSQ: 31,99\r\n"},
        {"match": "hex", "pattern": "ff00", "reply_hex": "0a0b"},
        {"match": "exact", "pattern": "never", "reply_text": "no"},
    ]
    status, listener = socklab.put("/api/listeners/0/auto-replies", {"rules": rules})
    assert status == 200 and len(listener["auto_replies"]) == 3
    dev = tcp_device(socklab.tcp_port)
    dev.send(b"AT+CSQ\r\n")
    assert recv_exactly(dev, 13) == b"+CSQ: 31,99\r\n"
    dev.send(b"\x01\xff\x00\x02")
    assert recv_exactly(dev, 2) == b"\x0a\x0b"
    bad = {"rules": [{"match": "hex", "pattern": "xyz", "reply_text": "a"}]}
    assert socklab.put("/api/listeners/0/auto-replies", bad)[0] == 400


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_sessions_with_server_shutdown(socklab, tcp_device, sig):
    """SIGTERM/SIGINT: the device sees the connection end, the process exits 0, and the
    history (after a restart) says server_shutdown."""
    dev = tcp_device(socklab.tcp_port)
    dev.send(b"last words")
    sid = socklab.wait_session(lambda s: s["bytes_up"] == 10)["id"]
    assert socklab.stop(sig) == 0
    try:
        assert dev.recv(16) == b""
    except OSError as err:
        assert err.args[0] == 107
    socklab.start()
    _, s = socklab.get(f"/api/sessions/{sid}")
    assert (s["online"], s["end_reason"], s["bytes_up"]) == (False, "server_shutdown", 10)


def test_sigterm_right_after_start_is_graceful(socklab_factory):
    """A signal as soon as socklab is ready still shuts it down cleanly (exit status 0)."""
    for _ in range(3):
        lab = socklab_factory()
        assert lab.stop(signal.SIGTERM) == 0
