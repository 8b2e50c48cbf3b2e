"""Link faults with real usocket devices: a carrier-NAT drop (by idle timeout and injected)
silently discards data both ways until the device's own timeout fires; a reset (injected,
after N bytes, from a schedule file) reaches the device as ECONNRESET.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import usocket
from conftest import recv_exactly

ETIMEDOUT = 110
ECONNRESET = 104


def connect(port: int, timeout: float = 20.0) -> Any:
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def expect_errno(sock: Any, errno: int) -> None:
    """The device's next recv fails with `errno` (it may first see nothing at all)."""
    with pytest.raises(OSError) as err:
        sock.recv(100)
    assert err.value.args[0] == errno, err.value


def check_nat_dropped(lab: Any, sock: Any, session_id: int) -> None:
    """After a NAT drop: data up and down is recorded as dropped, none arrives, the device's
    recv times out with ETIMEDOUT, and socklab shows the session NAT-dropped."""
    lab.wait_for(
        "the NAT drop",
        lambda: lab.get(f"/api/sessions/{session_id}")[1]["link"]["state"] == "nat_dropped",
    )
    sock.sendall(b"anyone there?\n")
    status, body = lab.post(f"/api/sessions/{session_id}/send", {"text": "lost down"})
    assert status == 200, body  # the server's send succeeds; the NAT loses it
    sock.settimeout(1.0)
    expect_errno(sock, ETIMEDOUT)

    def dropped() -> list[dict[str, Any]] | None:
        got = [m for m in lab.messages(session_id) if m["dropped"]]
        return got if len(got) == 2 else None

    lost = lab.wait_for("both dropped messages in the history", dropped)
    assert {(m["direction"], m["text"]) for m in lost} == {
        ("up", "anyone there?\n"),
        ("down", "lost down"),
    }
    session = lab.get(f"/api/sessions/{session_id}")[1]
    assert session["online"] and session["link"]["state"] == "nat_dropped"
    sock.close()
    ended = lab.wait_session(lambda s: s["id"] == session_id and not s["online"])
    assert ended["end_reason"] == "nat_dropped"


def test_nat_idle_timeout_blackholes_the_connection(socklab_factory):
    """`nat_idle=1s`: traffic flows, then after 1 s of silence the carrier NAT forgets the
    connection; the device only learns from its own timeout (keepalive would not help)."""
    lab = socklab_factory(echo=True, link="perfect,nat_idle=1s")
    sock = connect(lab.tcp_port)
    sock.sendall(b"hello\n")
    assert recv_exactly(sock, 6) == b"hello\n"
    session = lab.wait_session(lambda s: s["online"])
    assert session["link"] == {"spec": "perfect,nat_idle=1s", "state": "ok"}
    time.sleep(1.3)
    check_nat_dropped(lab, sock, session["id"])


def test_injected_nat_drop_without_any_link(socklab):
    """A NAT drop injected through the API works on a session that has no link at all."""
    sock = connect(socklab.tcp_port)
    session = socklab.wait_session(lambda s: s["online"])
    assert session["link"] is None
    status, body = socklab.post(f"/api/sessions/{session['id']}/fault", {"fault": "nat_drop"})
    assert status == 200, body
    check_nat_dropped(socklab, sock, session["id"])


def test_injected_reset_gives_econnreset(socklab):
    """A reset injected through the API reaches the waiting device as ECONNRESET."""
    sock = connect(socklab.tcp_port)
    try:
        session = socklab.wait_session(lambda s: s["online"])
        status, _ = socklab.post(f"/api/sessions/{session['id']}/fault", {"fault": "reset"})
        assert status == 200
        expect_errno(sock, ECONNRESET)
    finally:
        sock.close()
    ended = socklab.wait_session(lambda s: s["id"] == session["id"] and not s["online"])
    assert ended["end_reason"] == "link_reset"


def test_reset_after_bytes(socklab_factory):
    """`reset_after=1000`: the connection is reset once 1000 bytes went through."""
    lab = socklab_factory(link="perfect,reset_after=1000")
    sock = connect(lab.tcp_port)
    try:
        sock.sendall(b"x" * 600)
        sock.sendall(b"y" * 600)
        expect_errno(sock, ECONNRESET)
    finally:
        sock.close()
    ended = lab.wait_session(lambda s: not s["online"])
    assert ended["end_reason"] == "link_reset"
    assert ended["bytes_up"] >= 1000


def test_schedule_file_resets_on_time(socklab_factory, tmp_path):
    """A schedule file's `1s reset` resets the sessions online at that time."""
    schedule = tmp_path / "faults.txt"
    schedule.write_text("# repeatable run\n1s reset\n")
    lab = socklab_factory(link_schedule=str(schedule))
    start = time.monotonic()
    sock = connect(lab.tcp_port)
    try:
        expect_errno(sock, ECONNRESET)
        assert time.monotonic() - start >= 0.5
    finally:
        sock.close()
    assert lab.wait_session(lambda s: not s["online"])["end_reason"] == "link_reset"


def test_link_api_errors_and_changes(socklab):
    """The link routes: profiles, setting and clearing links, and every error status."""
    status, body = socklab.get("/api/link-profiles")
    assert status == 200 and [p["name"] for p in body["profiles"]] == [
        "gprs",
        "nbiot",
        "ltem",
        "cat1",
        "perfect",
    ]
    status, listener = socklab.put("/api/listeners/0/link", {"link": "nbiot,nat_idle=270s"})
    assert status == 200 and listener["link"] == "nbiot,nat_idle=270s"
    sock = connect(socklab.tcp_port)
    try:
        session = socklab.wait_session(lambda s: s["online"])
        assert session["link"]["spec"] == "nbiot,nat_idle=270s"
        sid = session["id"]
        status, body = socklab.put(f"/api/sessions/{sid}/link", {"link": "gprs"})
        assert status == 200 and body["link"] == {"spec": "gprs", "state": "ok"}
        status, body = socklab.put(f"/api/sessions/{sid}/link", {"link": None})
        assert status == 200 and body["link"] is None
        assert socklab.put(f"/api/sessions/{sid}/link", {"link": "wifi"})[0] == 400
        assert socklab.put(f"/api/sessions/{sid}/link", {"link": "gprs,up=fast"})[0] == 400
        assert socklab.post(f"/api/sessions/{sid}/fault", {"fault": "outage"})[0] == 400
        assert socklab.post(f"/api/sessions/{sid}/fault", {"fault": "meteor"})[0] == 400
        assert socklab.put("/api/sessions/999/link", {"link": "gprs"})[0] == 404
        assert socklab.put("/api/listeners/9/link", {"link": "gprs"})[0] == 404
        assert socklab.post("/api/sessions/999/fault", {"fault": "reset"})[0] == 404
    finally:
        sock.close()
    socklab.wait_session(lambda s: s["id"] == sid and not s["online"])
    assert socklab.put(f"/api/sessions/{sid}/link", {"link": "gprs"})[0] == 409
    doc = socklab.get("/api/openapi.json")[1]
    for path in ("/api/link-profiles", "/api/listeners/{id}/link", "/api/sessions/{id}/link"):
        assert path in doc["paths"]
    assert (
        "nat_dropped" in doc["components"]["schemas"]["Session"]["properties"]["end_reason"]["enum"]
    )
