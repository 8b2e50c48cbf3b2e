"""History housekeeping, device labels, per-session rates and the HTTP export, against a
real socklab with real devices: what the API returns, what the device still receives, what
the database keeps across a restart, and what the console prints."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest
from conftest import SOCKLAB_BIN, recv_exactly

RUN_TIMEOUT_S = 60


def download(lab, query: str) -> tuple[int, bytes, Any]:
    """GET /api/export?QUERY: (status, body, headers)."""
    req = urllib.request.Request(lab.http_url + "/api/export?" + query)
    try:
        with urllib.request.urlopen(req, timeout=RUN_TIMEOUT_S) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        body = err.read()
        err.close()
        return err.code, body, err.headers


def cli_export(lab, *args: str) -> bytes:
    out = subprocess.run(
        [SOCKLAB_BIN, "export", "--db", str(lab.db), *args],
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def upload(lab, dev, data: bytes) -> None:
    dev.send(data)
    lab.wait_for("the upload", lambda: lab.get("/api/messages?hex=" + data.hex())[1]["total"] > 0)


def test_http_export_matches_the_cli_in_every_format(socklab, tcp_device):
    dev = tcp_device(socklab.tcp_port)
    for chunk in (b"temp=21\r\n", b"\x00\x01bin", b"temp=22\r\n"):
        upload(socklab, dev, chunk)
    sid = socklab.wait_session(lambda s: s["proto"] == "tcp", "the device")["id"]
    assert socklab.post(f"/api/sessions/{sid}/send", {"text": "ack\r\n"})[0] == 200
    assert recv_exactly(dev, 5) == b"ack\r\n"
    socklab.wait_for("the send", lambda: socklab.get("/api/messages?direction=down")[1]["total"])
    for fmt in ("jsonl", "csv", "raw", "pcapng"):
        status, body, headers = download(socklab, f"format={fmt}&session={sid}")
        assert status == 200, body
        assert body == cli_export(socklab, str(sid), "--format", fmt), fmt
        assert f"socklab-session-{sid}." in headers["Content-Disposition"]
    # A search exports only what it finds.
    status, body, _ = download(socklab, "format=jsonl&q=temp%3D")
    assert status == 200
    found = [json.loads(line) for line in body.decode().splitlines()]
    assert [bytes.fromhex(m["hex"]) for m in found] == [b"temp=21\r\n", b"temp=22\r\n"]
    status, body, _ = download(socklab, "format=raw&direction=down")
    assert (status, body) == (200, b"ack\r\n")
    assert download(socklab, "format=xml")[0] == 400
    assert download(socklab, "format=csv&session=424242")[0] == 404
    assert download(socklab, "regex=%28")[0] == 400


def test_deleting_a_live_sessions_history_keeps_it_working(socklab, tcp_device):
    dev = tcp_device(socklab.tcp_port)
    for i in range(5):
        upload(socklab, dev, b"old %d\n" % i)
    sid = socklab.wait_session(lambda s: s["online"], "the device")["id"]
    status, body = socklab.request("DELETE", f"/api/sessions/{sid}/messages")
    assert status == 200, body
    assert body["deleted"] == {"messages": 5, "sessions": 0}
    assert socklab.messages(sid) == []
    # Still online: uploads are recorded, sends reach the device.
    upload(socklab, dev, b"new\n")
    assert [bytes.fromhex(m["hex"]) for m in socklab.messages(sid)] == [b"new\n"]
    assert socklab.post(f"/api/sessions/{sid}/send", {"text": "still here"})[0] == 200
    assert recv_exactly(dev, 10) == b"still here"
    session = socklab.get(f"/api/sessions/{sid}")[1]
    assert session["online"] and session["msgs_up"] == 6  # counters count traffic, not storage
    # An online session cannot be deleted whole; an ended one can.
    assert socklab.request("DELETE", f"/api/sessions/{sid}")[0] == 409
    dev.close()
    socklab.wait_for("the end", lambda: not socklab.get(f"/api/sessions/{sid}")[1]["online"])
    status, body = socklab.request("DELETE", f"/api/sessions/{sid}")
    assert status == 200 and body["deleted"]["sessions"] == 1, body
    assert socklab.get(f"/api/sessions/{sid}")[0] == 404
    assert socklab.request("DELETE", f"/api/sessions/{sid}/messages")[0] == 404
    assert socklab.request("DELETE", "/api/sessions/abc/messages")[0] == 400


def test_deleting_everything_before_a_time(socklab, tcp_device):
    old = tcp_device(socklab.tcp_port)
    upload(socklab, old, b"from the ended device\n")
    old_sid = socklab.wait_session(lambda s: s["online"], "the first device")["id"]
    old.close()
    socklab.wait_for("the end", lambda: not socklab.get(f"/api/sessions/{old_sid}")[1]["online"])
    live = tcp_device(socklab.tcp_port)
    upload(socklab, live, b"before\n")
    live_sid = socklab.wait_session(lambda s: s["online"], "the second device")["id"]
    cut = socklab.get("/api/messages?q=before")[1]["messages"][0]["ts_ms"] + 1
    assert socklab.request("DELETE", "/api/messages")[0] == 400
    status, body = socklab.request("DELETE", f"/api/messages?before_ms={cut}")
    assert status == 200, body
    assert body["deleted"] == {"messages": 2, "sessions": 1}
    assert socklab.get(f"/api/sessions/{old_sid}")[0] == 404
    assert socklab.get(f"/api/sessions/{live_sid}")[1]["online"]
    upload(socklab, live, b"after\n")
    assert [bytes.fromhex(m["hex"]) for m in socklab.messages(live_sid)] == [b"after\n"]


def test_labels_show_everywhere_are_searchable_and_persist(socklab_factory, tcp_device, tmp_path):
    lab = socklab_factory(label_from=r"IMEI:(\d{15})")
    dev = tcp_device(lab.tcp_port)
    upload(lab, dev, b"HELLO IMEI:861234567890123\r\n")
    sid = lab.wait_session(lambda s: s["online"], "the device")["id"]
    assert lab.get(f"/api/sessions/{sid}")[1]["label"] == "861234567890123"
    plain = tcp_device(lab.tcp_port)
    upload(lab, plain, b"no id in here\n")
    other = lab.wait_session(lambda s: s["online"] and s["id"] != sid, "the second device")["id"]
    assert lab.get(f"/api/sessions/{other}")[1]["label"] is None
    # The operator renames; the listing, search and filter all see it.
    status, body = lab.put(f"/api/sessions/{other}/label", {"label": "  pump 3 "})
    assert status == 200 and body["label"] == "pump 3", body
    assert [s["id"] for s in lab.sessions("all") if s["label"] == "pump 3"] == [other]
    listed = lab.get("/api/sessions?label=PUMP&state=online")[1]
    assert [s["id"] for s in listed["sessions"]] == [other] and listed["total"] == 1
    assert [s["id"] for s in lab.get("/api/sessions?label=8612")[1]["sessions"]] == [sid]
    found = lab.get("/api/messages?label=pump")[1]
    assert found["total"] == 1 and found["messages"][0]["session_id"] == other
    assert lab.put(f"/api/sessions/{other}/label", {"label": "a\nb"})[0] == 400
    assert lab.put(f"/api/sessions/{other}/label", {"label": "x" * 65})[0] == 400
    assert lab.put(f"/api/sessions/{other}/label", {"name": "x"})[0] == 400
    assert lab.put("/api/sessions/424242/label", {"label": "x"})[0] == 404
    # Labels stay in history: after the device leaves, and after a restart.
    plain.close()
    lab.wait_for("the end", lambda: not lab.get(f"/api/sessions/{other}")[1]["online"])
    assert lab.get(f"/api/sessions/{other}")[1]["label"] == "pump 3"
    # An ended session can be renamed too.
    assert lab.put(f"/api/sessions/{other}/label", {"label": "pump 4"})[1]["label"] == "pump 4"
    dev.close()
    lab.wait_for("the end", lambda: not lab.get(f"/api/sessions/{sid}")[1]["online"])
    lab.restart()
    assert lab.get(f"/api/sessions/{other}")[1]["label"] == "pump 4"
    assert lab.get(f"/api/sessions/{sid}")[1]["label"] == "861234567890123"
    assert lab.put(f"/api/sessions/{other}/label", {"label": None})[1]["label"] is None


def test_labels_reach_the_event_stream(socklab, tcp_device):
    dev = tcp_device(socklab.tcp_port)
    upload(socklab, dev, b"hi\n")
    sid = socklab.wait_session(lambda s: s["online"], "the device")["id"]
    req = urllib.request.Request(socklab.http_url + "/api/events")
    with urllib.request.urlopen(req, timeout=RUN_TIMEOUT_S) as stream:
        assert socklab.put(f"/api/sessions/{sid}/label", {"label": "tracker-7"})[0] == 200
        dev.send(b"more\n")
        seen = []
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("type") in ("online", "data"):
                seen.append(event)
                if event["type"] == "data":
                    break
    assert all(e["session"]["label"] == "tracker-7" for e in seen) and seen


def test_session_rates(socklab, tcp_device):
    dev = tcp_device(socklab.tcp_port)
    payload = b"x" * 1000
    upload(socklab, dev, payload)
    sid = socklab.wait_session(lambda s: s["online"], "the device")["id"]

    def rated():
        s = socklab.get(f"/api/sessions/{sid}")[1]
        return s if s["rates"]["bytes_up_per_s"] > 0 else None

    s = socklab.wait_for("the second to complete", rated)
    r = s["rates"]
    # One message of 1000 bytes within the window: the average times the window is it.
    assert r["bytes_up_per_s"] * r["window_s"] == pytest.approx(1000)
    assert r["msgs_up_per_s"] * r["window_s"] == pytest.approx(1)
    assert r["bytes_down_per_s"] == 0
    dev.close()
    socklab.wait_for("the end", lambda: not socklab.get(f"/api/sessions/{sid}")[1]["online"])
    assert socklab.get(f"/api/sessions/{sid}")[1]["rates"] is None


def test_openapi_describes_the_new_routes(socklab):
    doc = socklab.get("/api/openapi.json")[1]
    paths = doc["paths"]
    assert "delete" in paths["/api/sessions/{id}/messages"]
    assert "delete" in paths["/api/sessions/{id}"]
    assert "delete" in paths["/api/messages"]
    assert "put" in paths["/api/sessions/{id}/label"]
    assert "get" in paths["/api/export"]
    assert "label" in doc["components"]["schemas"]["Session"]["properties"]


def test_console_label_and_delete(console_socklab, tcp_device):
    lab = console_socklab()
    say, read_until = lab.say, lab.read_until
    dev = tcp_device(lab.tcp_port)
    sid = read_until(" online ").split("#", 1)[1].split()[0]
    dev.send(b"one\n")
    read_until(" up ")
    say(f"label {sid} meter 12")
    read_until(f'#{sid} is now labelled "meter 12"')
    dev.send(b"two\n")
    assert f"#{sid} [meter 12] tcp" in read_until(" up ")
    say("list")
    read_until(f"#{sid} [meter 12] tcp")
    say(f"delete {sid}")
    read_until(f"this deletes the 2 stored message(s) of #{sid}")
    say(f"history {sid}")
    read_until('"two\\n"')  # nothing was deleted yet
    say(f"delete {sid} yes")
    read_until("deleted 2 message(s) and 0 session(s)")
    say(f"history {sid}")
    read_until(f"#{sid}: no messages")
    say("delete before 2000-01-01T00:00:00Z")
    read_until("this deletes 0 message(s) older than 2000-01-01T00:00:00.000Z")
    say(f"label {sid} -")
    read_until(f"#{sid} has no label")
    say("delete before yesterday yes")
    read_until("is not a time")
