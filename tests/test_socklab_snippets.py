"""Saved send snippets and periodic sends against a real socklab, checked by the bytes real
device sockets receive: the API (create, duplicates, errors, persistence, sending by name),
"send every N ms" to a session and as a broadcast (stops on DELETE, on the device going
offline, and with the server), and the console commands for both."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from conftest import SOCKLAB_BIN, recv_exactly

usocket = pytest.importorskip("usocket")


def delete(lab, path):
    return lab.request("DELETE", path)


def test_snippet_api_and_errors(socklab, tcp_device):
    """Snippets are saved, listed, refused with clear 4xx errors, sent by name to one
    session and as a broadcast, and kept across a restart."""
    status, body = socklab.post("/api/snippets", {"name": "ping", "text": "PING\r\n"})
    assert status == 201 and body["hex"] == "50494e470d0a" and body["len"] == 6
    assert socklab.post("/api/snippets", {"name": "raw", "hex": "00 ff 7e"})[0] == 201
    status, body = socklab.post("/api/snippets", {"name": "ping", "text": "other"})
    assert status == 409 and "exists" in body["error"]
    status, body = socklab.post("/api/snippets", {"name": "ping", "hex": "41", "replace": True})
    assert (status, body["hex"]) == (200, "41")
    for bad, word in (
        ({"name": "bad hex", "hex": "41"}, "invalid snippet name"),
        ({"name": "x", "hex": "zz"}, "invalid hex"),
        ({"name": "x", "hex": "abc"}, "hex"),
        ({"name": "x", "text": ""}, "empty"),
        ({"name": "x", "text": "a", "hex": "41"}, "exactly one"),
        ({"name": "x"}, "exactly one"),
        ({"text": "a"}, "name"),
        ({"name": "x", "text": "a", "color": 1}, "unknown field"),
    ):
        status, body = socklab.post("/api/snippets", bad)
        assert status == 400 and word in body["error"], (bad, body)
    names = [s["name"] for s in socklab.get("/api/snippets")[1]["snippets"]]
    assert names == ["ping", "raw"]

    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    assert socklab.post(f"/api/sessions/{sid}/send", {"snippet": "raw"}) == (200, {"bytes": 3})
    assert recv_exactly(dev, 3) == b"\x00\xff\x7e"
    status, body = socklab.post(f"/api/sessions/{sid}/send", {"snippet": "nope"})
    assert (status, body) == (404, {"error": 'no snippet "nope"'})
    assert socklab.post(f"/api/sessions/{sid}/send", {"snippet": "raw", "text": "x"})[0] == 400
    status, body = socklab.post("/api/broadcast", {"snippet": "ping"})
    assert status == 200 and body["sessions"] == 1
    assert recv_exactly(dev, 1) == b"A"

    assert delete(socklab, "/api/snippets/raw") == (200, {"deleted": "raw"})
    assert delete(socklab, "/api/snippets/raw")[0] == 404
    assert delete(socklab, "/api/snippets/bad%20name")[0] == 400
    socklab.restart()
    snippets = socklab.get("/api/snippets")[1]["snippets"]
    assert [(s["name"], s["hex"]) for s in snippets] == [("ping", "41")]


def read_count(dev, unit: bytes, count: int) -> bytes:
    """Reads until `count` copies of `unit` arrived (the device timeout bounds the wait)."""
    return recv_exactly(dev, len(unit) * count)


def test_periodic_send_to_a_session(socklab, tcp_device):
    """Every N ms the device gets the payload again; DELETE stops it, and after the last
    accepted send arrives nothing more comes; the history holds exactly the sends."""
    socklab.post("/api/snippets", {"name": "hb", "text": "HB\n"})
    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    status, p = socklab.post(f"/api/sessions/{sid}/periodic", {"snippet": "hb", "every_ms": 100})
    assert status == 201, p
    assert (p["target"], p["session_id"], p["every_ms"], p["snippet"]) == (
        "session",
        sid,
        100,
        "hb",
    )
    assert read_count(dev, b"HB\n", 2) == b"HB\nHB\n"
    listed = socklab.get("/api/periodic")[1]["periodic"]
    assert [x["id"] for x in listed] == [p["id"]]
    status, final = delete(socklab, f"/api/periodic/{p['id']}")
    assert status == 200 and final["sent"] >= 2
    # Everything accepted before the stop arrives, then nothing more.
    rest = recv_exactly(dev, 3 * final["sent"] - 6)
    assert rest == b"HB\n" * (final["sent"] - 2)
    dev.settimeout(0.6)
    with pytest.raises(OSError):
        dev.recv(16)
    assert socklab.get("/api/periodic")[1]["periodic"] == []
    assert delete(socklab, f"/api/periodic/{p['id']}")[0] == 404
    down = [m for m in socklab.messages(sid) if m["direction"] == "down"]
    assert len(down) == final["sent"] and {m["hex"] for m in down} == {"48420a"}


def test_periodic_errors_and_bounds(socklab, tcp_device):
    """Bad bodies, intervals out of bounds, unknown or offline targets and too many periodic
    sends are refused with clear errors."""
    dev = tcp_device(socklab.tcp_port)
    sid = socklab.wait_session(lambda s: s["online"])["id"]
    path = f"/api/sessions/{sid}/periodic"
    for bad, word in (
        ({"text": "x", "every_ms": 10}, "every_ms must be 100..="),
        ({"text": "x", "every_ms": 86_400_001}, "every_ms"),
        ({"text": "x"}, "every_ms"),
        ({"text": "x", "every_ms": -5}, "every_ms"),
        ({"every_ms": 500}, "exactly one"),
        ({"hex": "zz", "every_ms": 500}, "invalid hex"),
        ({"text": "x", "every_ms": 500, "listener_id": 0}, "broadcast only"),
    ):
        status, body = socklab.post(path, bad)
        assert status == 400 and word in body["error"], (bad, body)
    assert socklab.post(path, {"snippet": "nope", "every_ms": 500})[0] == 404
    assert socklab.post("/api/sessions/99999/periodic", {"text": "x", "every_ms": 500})[0] == 404
    assert socklab.post("/api/sessions/abc/periodic", {"text": "x", "every_ms": 500})[0] == 400
    bcast = {"text": "x", "every_ms": 500, "listener_id": 9}
    assert socklab.post("/api/broadcast/periodic", bcast)[0] == 404
    assert delete(socklab, "/api/periodic/abc")[0] == 400
    assert delete(socklab, "/api/periodic/12345")[0] == 404
    dev.close()
    socklab.wait_session(lambda s: s["id"] == sid and not s["online"])
    status, body = socklab.post(path, {"text": "x", "every_ms": 500})
    assert (status, body) == (409, {"error": f"session {sid} is offline"})
    # The cap on periodic sends running at once.
    ids = []
    while True:
        status, body = socklab.post(
            "/api/broadcast/periodic", {"text": "x", "every_ms": 86_400_000}
        )
        if status != 201:
            break
        ids.append(body["id"])
        assert len(ids) <= 1000
    assert status == 409 and "stop one first" in body["error"] and len(ids) == 64
    for pid in ids:
        assert delete(socklab, f"/api/periodic/{pid}")[0] == 200


def events_stream(lab):
    """The live event stream as an iterator of parsed events."""
    req = urllib.request.Request(lab.http_url + "/api/events")
    resp = urllib.request.urlopen(req, timeout=20)

    def events():
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data:"):
                yield json.loads(line[5:])

    return resp, events()


def test_periodic_stops_when_the_device_goes_offline(socklab, tcp_device):
    """A session's periodic send stops by itself when the device hangs up, and an event
    says so; the broadcast one keeps going to the devices still online."""
    resp, events = events_stream(socklab)
    try:
        dev = tcp_device(socklab.tcp_port)
        sid = socklab.wait_session(lambda s: s["online"])["id"]
        other = tcp_device(socklab.tcp_port)
        socklab.wait_session(lambda s: s["online"] and s["id"] != sid)
        _, one = socklab.post(f"/api/sessions/{sid}/periodic", {"hex": "01", "every_ms": 100})
        _, everyone = socklab.post("/api/broadcast/periodic", {"hex": "02", "every_ms": 100})
        assert everyone["target"] == "broadcast"
        got = b""
        while got.count(b"\x01") < 2 or got.count(b"\x02") < 2:
            got += dev.recv(64)
        assert recv_exactly(other, 2) == b"\x02\x02"
        dev.close()
        stop = next(e for e in events if e["type"] == "periodic" and e["action"] == "stopped")
        assert stop["periodic"]["id"] == one["id"] and stop["reason"] == "session_offline"
        running = socklab.get("/api/periodic")[1]["periodic"]
        assert [p["id"] for p in running] == [everyone["id"]]
        assert recv_exactly(other, 2) == b"\x02\x02"
    finally:
        resp.close()
    # Shutdown with a periodic send running is clean.
    assert socklab.stop() == 0


def test_console_snippets_and_periodic(tmp_path, tcp_device):
    """The console saves, lists, sends and deletes snippets, starts a periodic send and
    stops it, and prints the periodic events."""
    proc = subprocess.Popen(
        [SOCKLAB_BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"]
        + ["--db", str(tmp_path / "c.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdin and proc.stdout

        def command(line: str) -> None:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

        def read_until(needle: str) -> str:
            while True:
                line = proc.stdout.readline()
                assert line, f"socklab stdout ended before {needle!r}"
                if needle in line:
                    return line

        banner = read_until("devices on tcp ")
        port = int(banner.split("devices on tcp ", 1)[1].split(",")[0].rsplit(":", 1)[1])
        dev = tcp_device(port)
        sid = read_until(" online ").split("#", 1)[1].split()[0]
        command("help")
        read_until("snippet save NAME PAYLOAD")
        command("snippet save ping text:PING\\r\\n")
        read_until('snippet ping saved: "PING\\r\\n" (6 B)')
        command("snippet save ping hex:00")
        read_until('error: snippet "ping" exists already')
        command("snippet save bin hex:00ff")
        read_until("snippet bin saved")
        command("snippet save bad hex:0g")
        read_until("error: invalid hex")
        command("snippets")
        read_until("bin ")
        command(f"snippet send {sid} ping")
        assert recv_exactly(dev, 6) == b"PING\r\n"
        read_until(f"sent 6 B to #{sid}")
        command("snippet send all bin")
        assert recv_exactly(dev, 2) == b"\x00\xff"
        command(f"snippet send {sid} nope")
        read_until('error: no snippet "nope"')
        command(f"every 50 {sid} text:x")
        read_until("error: every_ms must be 100..=")
        command(f"every 100 {sid} snippet:ping")
        pid = read_until("periodic ").split("periodic ", 1)[1].split()[0]
        assert recv_exactly(dev, 12) == b"PING\r\n" * 2
        command("periodic")
        read_until(f"{pid} to #{sid} every 100 ms")
        command(f"stop {pid}")
        read_until(f"periodic {pid} stopped after")
        read_until("stopped by the operator")
        command(f"stop {pid}")
        read_until(f"error: no periodic send {pid} is running")
        command(f"every 100 {sid} hex:07")
        read_until("started")
        dev.close()
        read_until("stopped: the session went offline")
        command("snippet delete bin")
        read_until("snippet bin deleted")
        command("every 100 99999 text:x")
        read_until("error: no session 99999")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout):
            if pipe and not pipe.closed:
                pipe.close()
