"""The dashboard's "Connect to device" and "Add listener" controls in headless Chromium,
against a real socklab and real device sockets (CPython) on loopback: what the operator types
reaches the device, the outgoing session is marked, listeners come and go."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest
from playwright.sync_api import expect
from runner_support import free_port
from test_dashboard import (  # noqa: F401
    CHROMIUM,
    Dashboard,
    blank,
    browser,
    dash,
)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)


class UpperServer:
    """A device that is the server: one TCP connection, every chunk answered upper-cased."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.conn: socket.socket | None = None
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        self.accepted.set()
        conn.settimeout(20)
        with conn:
            while True:
                try:
                    data = conn.recv(1024)
                except OSError:
                    return
                if not data:
                    return
                self.received += data
                conn.sendall(data.upper())

    def close(self) -> None:
        self.listener.close()
        self.thread.join(20)


def test_connect_to_device_from_the_dashboard(dash: Dashboard, socklab) -> None:  # noqa: F811
    """Connect, send from the send box: the device gets the exact bytes and its answer shows
    in the log of the selected, outgoing-marked session; a refused connect says why."""
    device = UpperServer()
    try:
        dash.testid("connect-addr").fill(f"127.0.0.1:{device.port}")
        dash.testid("connect-submit").click()
        expect(dash.testid("connect-result")).to_contain_text("Connected: session #1")
        assert device.accepted.wait(20)
        row = dash.page.locator('[data-testid="session-row"][data-session-id="1"]')
        expect(row.get_by_test_id("session-outgoing")).to_have_text("out")
        expect(dash.testid("detail-title")).to_have_text("Session #1")
        expect(dash.testid("detail-peer")).to_contain_text("outgoing")
        expect(dash.page.locator('[data-kind="outgoing"]')).to_have_count(1)
        dash.testid("send-input").fill("status?")
        dash.testid("send-eol").select_option("crlf")
        dash.testid("send-button").click()
        expect(dash.payloads().last).to_contain_text("STATUS?")
        assert device.received == b"status?\r\n"
    finally:
        device.close()

    refused = free_port()
    dash.testid("connect-addr").fill(f"127.0.0.1:{refused}")
    dash.testid("connect-submit").click()
    expect(dash.testid("connect-result")).to_have_attribute("data-state", "error")
    expect(dash.testid("connect-result")).to_contain_text("connection refused")


def test_add_and_remove_a_listener_from_the_dashboard(dash: Dashboard, socklab) -> None:  # noqa: F811
    """Add a UDP listener, a device reaches it; removing it takes two clicks while the device
    is online, and the session ends with "listener removed"."""
    dash.testid("listen-proto").select_option("udp")
    dash.testid("listen-addr").fill("127.0.0.1:0")
    dash.testid("listen-submit").click()
    expect(dash.testid("listen-result")).to_contain_text("Listening: udp 127.0.0.1:")
    text = dash.testid("listen-result").inner_text()
    port = int(text.split("127.0.0.1:")[1].split(" ")[0])
    row = dash.page.locator('[data-testid="listener-row"][data-listener-id="2"]')
    expect(row).to_contain_text(f"udp 127.0.0.1:{port}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
        device.sendto(b"hello", ("127.0.0.1", port))
        expect(dash.rows(online=True)).to_have_count(1)
    remove = row.get_by_test_id("listener-remove")
    remove.click()
    expect(remove).to_have_text("disconnect 1?")
    remove.click()
    expect(row).to_have_count(0)
    expect(dash.rows(online=True)).to_have_count(0)
    expect(dash.rows().first.get_by_test_id("session-state")).to_contain_text("listener removed")
    status, listeners = socklab.get("/api/listeners")
    assert status == 200
    assert [entry["id"] for entry in listeners["listeners"]] == [0, 1]
