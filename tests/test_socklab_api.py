"""socklab's HTTP API as a client sees it: error statuses, token and Origin checks, the live
event stream, the OpenAPI document, metrics, and the stdin console."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import recv_exactly

usocket = pytest.importorskip("usocket")


def test_error_statuses(socklab, tcp_device):
    """400 for bad input, 404 for unknown things, 409 for offline sessions; JSON bodies."""
    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    send = f"/api/sessions/{sid}/send"
    for bad in ({"hex": "zz"}, {"hex": "abc"}, {}, {"text": "a", "hex": "00"}, {"text": ""}):
        status, body = socklab.post(send, bad)
        assert status == 400 and body["error"], bad
    assert socklab.post(send, {"hex": "zz"})[1]["error"].startswith("invalid hex")
    assert socklab.get("/api/sessions?limit=0")[0] == 400
    assert socklab.get("/api/sessions/abc")[0] == 400
    assert socklab.get("/api/sessions/999999")[0] == 404
    assert socklab.post("/api/sessions/999999/send", {"text": "x"})[0] == 404
    assert socklab.put("/api/listeners/99/echo", {"enabled": True})[0] == 404
    assert socklab.get("/api/nothing-here")[0] == 404
    dev.close()
    socklab.wait_session(lambda s: s["id"] == sid and not s["online"])
    status, body = socklab.post(send, {"text": "x"})
    assert (status, body) == (409, {"error": f"session {sid} is offline"})


def test_token_is_required_when_set(socklab_factory):
    """With --token every API call and the dashboard need it, as a header or ?token=."""
    lab = socklab_factory(token="s3cret")
    assert lab.token == "s3cret"
    for path in ("/", "/api/sessions", "/api/listeners", "/metrics", "/api/openapi.json"):
        assert lab.get(path, token=None)[0] == 401, path
        assert lab.get(path, token="wrong")[0] == 401, path
        assert lab.get(path)[0] == 200, path
        assert lab.get(path + "?token=s3cret", token=None)[0] == 200, path
    assert lab.post("/api/broadcast", {"text": "x"}, token=None)[0] == 401
    assert lab.get("/assets/main.js", token=None)[0] == 200


def test_non_loopback_dashboard_gets_a_generated_token(socklab_factory):
    """--http on a non-loopback address without --token generates one and enforces it."""
    lab = socklab_factory(http="0.0.0.0:0")
    assert lab.token and len(lab.token) == 32
    assert lab.get("/api/sessions", token=None)[0] == 401
    assert lab.get("/api/sessions")[0] == 200
    assert lab.token in lab.log()  # printed at start for the operator


def test_foreign_origin_is_refused(socklab):
    """State-changing calls with another site's Origin get 403; same-origin and reads pass."""
    evil = {"Origin": "http://evil.example"}
    assert socklab.post("/api/broadcast", {"text": "x"}, headers=evil)[0] == 403
    assert socklab.put("/api/listeners/0/echo", {"enabled": True}, headers=evil)[0] == 403
    assert socklab.get("/api/sessions", headers=evil)[0] == 200
    own = {"Origin": socklab.http_url}
    assert socklab.post("/api/broadcast", {"text": "x"}, headers=own) == (
        200,
        {"sessions": 0, "bytes": 0},
    )


def test_foreign_host_is_refused_without_token(socklab, socklab_factory):
    """DNS rebinding protection: without a token, a non-loopback Host header gets 403."""
    status, body = socklab.get("/api/sessions", headers={"Host": "evil.example:80"})
    assert status == 403 and "rebinding" in body["error"]
    assert socklab.get("/api/sessions", headers={"Host": "localhost"})[0] == 200
    lab = socklab_factory(token="t0k")
    assert lab.get("/api/sessions", headers={"Host": "mybox.lan:8080"})[0] == 200


def test_event_stream_online_data_offline(socklab, tcp_device):
    """/api/events delivers online, data (up and down) and offline events as JSON."""
    stream = urllib.request.urlopen(socklab.http_url + "/api/events", timeout=20)
    try:
        dev = tcp_device(socklab.tcp_port)
        dev.send(b"<img src=x onerror=alert(1)>")
        seen: list[dict] = []

        def next_event() -> dict:
            while True:
                line = stream.readline().decode()
                if line.startswith("data:"):
                    return json.loads(line[5:])

        while not any(e["type"] == "data" for e in seen):
            seen.append(next_event())
        online = next(e for e in seen if e["type"] == "online")
        data = next(e for e in seen if e["type"] == "data")
        sid = online["session"]["id"]
        assert data["message"]["text"] == "<img src=x onerror=alert(1)>"
        assert (data["message"]["direction"], data["session"]["id"]) == ("up", sid)
        socklab.post(f"/api/sessions/{sid}/send", {"text": "ok"})
        assert recv_exactly(dev, 2) == b"ok"
        dev.close()
        while not any(e["type"] == "offline" for e in seen):
            seen.append(next_event())
        down = [e for e in seen if e["type"] == "data" and e["message"]["direction"] == "down"]
        assert down[0]["message"]["hex"] == "6f6b"
        offline = next(e for e in seen if e["type"] == "offline")
        assert offline["session"]["end_reason"] == "closed_by_device"
    finally:
        stream.close()


def test_openapi_and_metrics(socklab, tcp_device):
    """The OpenAPI document lists the routes; metrics count sessions and bytes."""
    status, doc = socklab.get("/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/api/sessions/{id}/send" in doc["paths"]
    dev = tcp_device(socklab.tcp_port)
    dev.send(b"12345")
    socklab.wait_session(lambda s: s["bytes_up"] == 5)
    status, text = socklab.get("/metrics")
    assert status == 200
    assert "socklab_sessions_online 1" in text
    assert 'socklab_bytes_total{direction="up"} 5' in text


def test_console_commands(console_socklab, tcp_device):
    """Console commands from stdin act on devices; live events are printed; EOF on stdin
    leaves the server running."""
    lab = console_socklab()
    read_until = lab.read_until
    http = read_until("dashboard http://").split("dashboard ", 1)[1].strip()
    dev = tcp_device(lab.tcp_port)
    online = read_until(" online ")
    sid = online.split("#", 1)[1].split()[0]
    # The console's times are UTC and say so: the clock of the API's started_at, then Z.
    with urllib.request.urlopen(f"{http}api/sessions/{sid}", timeout=10) as r:
        started_at = json.load(r)["started_at"]
    assert online.startswith(started_at.split("T", 1)[1] + f" #{sid} "), (online, started_at)
    dev.send(b"hi\r\n")
    assert '"hi\\r\\n" [68690d0a]' in read_until(" up ")
    lab.say(f"send {sid} hello\\r\\n")
    assert recv_exactly(dev, 7) == b"hello\r\n"
    read_until(f"sent 7 B to #{sid}")
    for line in (f"sendhex {sid} 00ff", "list", f"history {sid}", "bogus"):
        lab.say(line)
    assert recv_exactly(dev, 2) == b"\x00\xff"
    read_until("1 online")
    read_until("68690d0a")  # history shows the first message
    read_until("unknown command")
    lab.say("autoreply exact:ping=>text:pong\\r\\n")
    lab.say("autoreply")
    read_until("rule added")
    read_until("exact:ping=>text:pong\\r\\n")
    dev.send(b"ping")
    assert recv_exactly(dev, 6) == b"pong\r\n"
    lab.say("framing line")
    lab.say("autoreply")
    read_until("auto-reply framing line on every listener")
    read_until("(each line)")
    dev.send(b"pi")
    dev.send(b"ng\n")
    assert recv_exactly(dev, 6) == b"pong\r\n"
    lab.say(f"close {sid}")
    lab.end_input()  # EOF: commands end, the server keeps running
    read_until("closed_by_operator")
    dev2 = tcp_device(lab.tcp_port)
    read_until(" online ")
    dev2.close()
    read_until("closed_by_device")
    assert lab.proc.poll() is None


def test_quiet_console_still_takes_commands(console_socklab, tcp_device):
    """--quiet hides live events but console commands keep working."""
    lab = console_socklab("--quiet", "--echo")
    lab.read_until("type help")
    dev = tcp_device(lab.tcp_port)
    dev.send(b"quiet please")
    assert recv_exactly(dev, 12) == b"quiet please"  # the echo: the session is registered
    lab.say("list")
    assert lab.proc.stdout is not None
    assert lab.proc.stdout.readline().startswith("1 online")
    session_line = lab.proc.stdout.readline()
    assert session_line.lstrip().startswith("#") and " up " in session_line
    lab.end_input()
    lab.proc.terminate()
    assert lab.proc.wait(timeout=30) == 0
    rest = lab.proc.stdout.read()
    assert " online (" not in rest and " offline:" not in rest  # no live events


def test_send_to_a_device_that_does_not_read_gives_503(socklab, tcp_device):
    """Sends to a device that never reads fill its buffers and outbox, then answer 503 within
    a bounded wait (no hung request); an operator close still ends the session at once."""
    tcp_device(socklab.tcp_port)  # connected, never reads
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    chunk = {"text": "x" * (512 * 1024)}
    statuses = []
    for _ in range(200):  # ~100 MiB at most; the kernel and the outbox hold far less
        status, body = socklab.post(f"/api/sessions/{sid}/send", chunk)
        statuses.append(status)
        if status != 200:
            break
    assert statuses[-1] == 503, statuses[-3:]
    assert "not reading" in body["error"]
    assert socklab.post(f"/api/sessions/{sid}/close") == (200, {"closed": True})
    assert socklab.get(f"/api/sessions/{sid}")[1]["end_reason"] == "closed_by_operator"
