"""Failed TLS handshakes as an operator sees them, with real clients on loopback: counted by
reason in /metrics (Prometheus), and listed with their device address and reason on the TLS
listener's row in the dashboard (headless Chromium)."""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any

import pytest
from test_socklab_tls import Events, tls_listener_dashboard, tls_port

TIMEOUT_S = 20
METRIC = "socklab_tls_handshake_failures_total"


def failures_by_reason(lab: Any) -> dict[str, int]:
    status, text = lab.get("/metrics")
    assert status == 200, text
    found = re.findall(rf'^{METRIC}{{reason="([a-z_]+)"}} (\d+)$', text, re.MULTILINE)
    return {reason: int(n) for reason, n in found}


def plain_tcp_client(lab: Any) -> str:
    """Speaks plain text to the TLS port; returns its own address (the failure's peer)."""
    with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
        s.sendall(b"HELLO\r\n")
        s.recv(100)  # socklab's alert
        host, port = s.getsockname()[:2]
        return f"{host}:{port}"


def test_failed_handshakes_are_counted_by_reason_in_metrics(socklab_factory) -> None:
    """Every reason is in /metrics from the start, at 0; each failed handshake counts once,
    under its own reason, and its event names the same kind."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0", tls_handshake_timeout="0.5")
    before = failures_by_reason(lab)
    assert before == {r: 0 for r in ("not_tls", "alert", "timeout", "closed", "reset", "other")}
    events = Events(lab)
    kinds = []
    try:
        plain_tcp_client(lab)
        kinds.append(events.next_of("tls_failed")["kind"])
        plain_tcp_client(lab)
        kinds.append(events.next_of("tls_failed")["kind"])
        # A client that does not trust socklab's self-signed certificate (system CAs only).
        ctx = ssl.create_default_context()
        with (
            socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ctx.wrap_socket(raw, server_hostname="localhost")
        kinds.append(events.next_of("tls_failed")["kind"])
        # A client that says nothing: socklab hangs up after the handshake timeout.
        with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
            kinds.append(events.next_of("tls_failed")["kind"])
            assert s.recv(100) == b""
        # A client that connects and closes at once.
        socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S).close()
        kinds.append(events.next_of("tls_failed")["kind"])
    finally:
        events.close()
    assert kinds == ["not_tls", "not_tls", "alert", "timeout", "closed"]
    after = failures_by_reason(lab)
    assert after == {**before, "not_tls": 2, "alert": 1, "timeout": 1, "closed": 1}
    listener = next(li for li in lab.get("/api/listeners")[1]["listeners"] if li["tls"])
    assert listener["tls"]["handshake_failures"] == 5
    assert listener["tls"]["last_failure"]["kind"] == "closed"
    assert lab.sessions() == []


def test_dashboard_lists_failed_handshakes_with_peer_and_reason(socklab_factory) -> None:
    """The TLS listener's row lists its latest failed handshakes, newest first, each with the
    device's address and the reason, live from the event stream and again after a reload."""
    from playwright.sync_api import expect

    lab = socklab_factory(tls_tcp="127.0.0.1:0", tls_handshake_timeout="0.5")
    with tls_listener_dashboard(lab) as (page, row):
        failures = row.locator('[data-testid="tls-failure"]')
        expect(failures).to_have_count(0)
        first = plain_tcp_client(lab)
        expect(failures).to_have_count(1, timeout=20_000)
        expect(failures.first).to_have_attribute("data-peer", first)
        expect(failures.first).to_have_attribute("data-kind", "not_tls")
        expect(failures.first).to_contain_text(first)
        expect(failures.first).to_contain_text("not a TLS handshake")
        with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
            host, port = s.getsockname()[:2]
            second = f"{host}:{port}"
            assert s.recv(100) == b""  # silent: timed out
        expect(failures).to_have_count(2, timeout=20_000)
        expect(failures.first).to_have_attribute("data-peer", second)
        expect(failures.first).to_contain_text("no TLS handshake within 0.5 s")
        expect(failures.nth(1)).to_have_attribute("data-peer", first)
        # After a reload the listing still names the newest one (from the API).
        page.reload()
        expect(failures).to_have_count(1, timeout=20_000)
        expect(failures.first).to_have_attribute("data-peer", second)
        expect(failures.first).to_have_attribute("data-kind", "timeout")
