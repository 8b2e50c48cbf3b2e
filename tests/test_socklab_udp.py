"""socklab with real usocket UDP devices: a peer address is a session, data goes both ways,
silence ends it with idle_timeout, and a new datagram starts a new session."""

from __future__ import annotations

import pytest

usocket = pytest.importorskip("usocket")


@pytest.fixture
def udp_device():
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    sock.settimeout(20)
    yield sock
    sock.close()


def test_udp_session_data_and_idle_expiry(socklab_factory, udp_device):
    """A datagram starts a session; a send reaches the peer; silence ends it as idle_timeout;
    the next datagram starts a new session."""
    lab = socklab_factory(udp_idle_timeout=0.5)
    server = ("127.0.0.1", lab.udp_port)
    assert udp_device.sendto(b"1234567890\r\n", server) == 12
    s = lab.wait_session(lambda s: s["proto"] == "udp")
    assert s["online"] and s["local"] == f"127.0.0.1:{lab.udp_port}"
    assert lab.post(f"/api/sessions/{s['id']}/send", {"hex": "00ff"}) == (200, {"bytes": 2})
    data, addr = udp_device.recvfrom(64)
    assert (data, addr[1]) == (b"\x00\xff", lab.udp_port)
    ended = lab.wait_session(lambda x: x["id"] == s["id"] and not x["online"], "idle expiry")
    assert ended["end_reason"] == "idle_timeout"
    assert (ended["bytes_up"], ended["bytes_down"]) == (12, 2)
    assert lab.post(f"/api/sessions/{s['id']}/send", {"text": "x"})[0] == 409
    udp_device.sendto(b"again", server)
    again = lab.wait_session(lambda x: x["proto"] == "udp" and x["online"], "a new session")
    assert again["id"] > s["id"] and again["peer"] == s["peer"]


def test_udp_echo_and_close(socklab, udp_device):
    """Echo answers each datagram; an operator close ends the session at once."""
    socklab.put("/api/listeners/1/echo", {"enabled": True})
    udp_device.sendto(b"\x01\x02", ("127.0.0.1", socklab.udp_port))
    assert udp_device.recvfrom(64)[0] == b"\x01\x02"
    sid = socklab.wait_session(lambda s: s["proto"] == "udp")["id"]
    assert socklab.post(f"/api/sessions/{sid}/close") == (200, {"closed": True})
    assert socklab.get(f"/api/sessions/{sid}")[1]["end_reason"] == "closed_by_operator"
