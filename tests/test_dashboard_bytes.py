"""The dashboard in headless Chromium (as tests/test_dashboard.py), checked at the device:
what an operator types is what the device receives, the rule editor keeps every byte, the
header counts stay exact when page loads race, times agree with the console, and the chart
and rates survive a reload.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from test_dashboard import (  # noqa: F401
    CHROMIUM,
    WAIT_MS,
    WATCH_INSERTS,
    Dashboard,
    Device,
    blank,
    browser,
    dash,
    dashboard_url,
    devices,
)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)


def send_from_box(d: Dashboard, mode: str, text: str, eol: str) -> None:
    d.testid("send-mode").select_option(mode)
    d.testid("send-eol").select_option(eol)
    d.testid("send-input").fill(text)
    d.testid("send-button").click()


def test_send_box_bytes_reach_the_device_exactly(dash, devices):  # noqa: F811
    """Text mode turns \\r \\n \\t \\xHH into bytes; line endings append CR/LF in both modes."""
    dev = devices()
    dash.rows(online=True).click()
    expect(dash.testid("escape-hint")).to_be_visible()
    send_from_box(dash, "text", "SET interval=3", "crlf")
    assert dev.recv_exactly(16) == b"SET interval=3\r\n"
    send_from_box(dash, "text", r"a\tb\x00\xff\\", "lf")
    assert dev.recv_exactly(7) == b"a\tb\x00\xff\\\n"
    send_from_box(dash, "text", "é", "cr")
    assert dev.recv_exactly(3) == "é".encode() + b"\r"
    send_from_box(dash, "hex", "41 42", "crlf")
    assert dev.recv_exactly(4) == b"AB\r\n"
    send_from_box(dash, "hex", "0x00:ff", "none")
    assert dev.recv_exactly(2) == b"\x00\xff"
    # The log shows what went down, escaped the same way.
    expect(dash.page.locator('[data-testid="log-row"][data-direction="down"]')).to_have_count(5)
    expect(dash.payloads().first).to_have_text("SET interval=3\\r\\n")
    # A bad escape is refused with a reason before anything is sent.
    send_from_box(dash, "text", r"bad \q", "none")
    expect(dash.testid("error-text")).to_contain_text("unknown escape")
    send_from_box(dash, "text", "next", "none")
    assert dev.recv_exactly(4) == b"next"


def test_broadcast_box_understands_escapes_and_line_endings(dash, devices):  # noqa: F811
    """The broadcast box sends the same bytes as the send box would, to every device."""
    a, b = devices(), devices()
    expect(dash.rows(online=True)).to_have_count(2)
    dash.testid("broadcast-eol").select_option("crlf")
    dash.testid("broadcast-input").fill(r"GO\t1")
    dash.testid("broadcast-send").click()
    assert a.recv_exactly(6) == b"GO\t1\r\n"
    assert b.recv_exactly(6) == b"GO\t1\r\n"


RULES = [
    {"match": "exact", "pattern": "PING", "reply_text": "PONG\r\n", "reply_hex": None},
    {"match": "exact", "pattern": "a\tb\\c é", "reply_text": "é\x01\x7f\r\n", "reply_hex": None},
    {"match": "hex", "pattern": "00ff", "reply_text": None, "reply_hex": bytes(range(256)).hex()},
    {"match": "regex", "pattern": r"^AT\+\w+\?", "reply_text": "OK\r\n", "reply_hex": None},
]


def test_rules_editor_opens_in_view_and_round_trips_every_byte(dash, devices, socklab):  # noqa: F811
    """Opening the editor and saving without a change keeps every rule byte for byte, and
    the device still gets PONG\\r\\n; the editor opens in view, over the page."""
    status, body = socklab.put("/api/listeners/0/auto-replies", {"rules": RULES})
    assert status == 200, body
    before = body["auto_replies"]
    listener = dash.page.locator('[data-testid="listener-row"][data-listener-id="0"]')
    expect(listener).to_contain_text("4 auto-replies")
    listener.get_by_test_id("listener-rules").click()
    editor = dash.testid("rules-editor")
    expect(editor).to_be_visible()
    expect(editor).to_be_in_viewport(ratio=1.0)
    expect(editor.get_by_test_id("rule-row")).to_have_count(4)
    expect(editor.get_by_test_id("rule-reply").first).to_have_value("PONG\\r\\n")
    editor.get_by_test_id("rules-save").click()
    expect(editor).to_be_hidden()
    status, body = socklab.get("/api/listeners")
    assert status == 200
    after = next(ls for ls in body["listeners"] if ls["id"] == 0)["auto_replies"]
    assert after == before
    dev = devices()
    dev.send(b"PING\r\n")
    assert dev.recv_exactly(6) == b"PONG\r\n"
    dev.send(b"\x00\xff")
    assert dev.recv_exactly(256) == bytes(range(256))

    # Editing through the escapes: the reply becomes exactly the typed bytes.
    listener.get_by_test_id("listener-rules").click()
    editor.get_by_test_id("rule-reply").first.fill(r"PONG\x00\r\n")
    editor.get_by_test_id("rules-save").click()
    expect(editor).to_be_hidden()
    dev.send(b"PING")
    assert dev.recv_exactly(7) == b"PONG\x00\r\n"


def holder(slow: str, held: list):
    """A route handler that holds back the all-sessions request whose URL has `slow`."""

    def hold(route):
        url = route.request.url
        if slow in url and "state=all" in url:
            held.append(route)
        else:
            route.continue_()

    return hold


def test_sessions_counter_is_exact_whichever_load_answers_first(blank, socklab):  # noqa: F811
    """The header's session total stays exact when the list and the count race each other."""
    for _ in range(8):
        Device(socklab.tcp_port).close()
    socklab.wait_for(
        "8 offline sessions",
        lambda: len(socklab.sessions("all")) == 8 and not socklab.sessions("online"),
    )
    page = blank.page
    for slow in ("limit=200", "limit=1&"):
        held: list = []
        page.route("**/api/sessions?*", holder(slow, held))
        page.goto(dashboard_url(socklab))
        expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")
        # Everything but the held request has answered; now let it go.
        page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
        deadline = time.monotonic() + WAIT_MS / 1000
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert held, f"the request with {slow} was never made"
        for route in held:
            route.continue_()
        expect(blank.rows()).to_have_count(8)
        expect(blank.testid("total-sessions")).to_have_text("8")
        page.unroute("**/api/sessions?*")


def test_times_are_utc_like_the_console_with_a_local_option(browser, socklab):  # noqa: F811
    """In a browser eight hours ahead of UTC the log shows the API's UTC time with a Z, as
    the console does; the zone button switches to local time and says which zone it is."""
    context = browser.new_context(
        timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 900}
    )
    try:
        page = context.new_page()
        page.add_init_script(WATCH_INSERTS)
        d = Dashboard(page)
        page.on("pageerror", lambda exc: d.errors.append(str(exc)))
        page.goto(dashboard_url(socklab))
        expect(d.testid("stream-state")).to_have_attribute("data-state", "live")
        dev = Device(socklab.tcp_port)
        try:
            dev.send(b"tick")
            row = d.rows(online=True)
            row.click()
            expect(d.payloads()).to_have_text(["tick"])
            sid = int(row.get_attribute("data-session-id"))
            ts_ms = socklab.messages(sid)[0]["ts_ms"]
            utc = datetime.fromtimestamp(ts_ms / 1000, UTC)
            shown = utc.strftime("%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
            time_cell = page.locator('[data-testid="log-row"] .log-time')
            expect(time_cell).to_have_text(shown)
            expect(d.testid("time-zone")).to_have_text("UTC")
            d.testid("time-zone").click()
            expect(d.testid("time-zone")).to_have_text("UTC+08:00")
            local = datetime.fromtimestamp(ts_ms / 1000 + 8 * 3600, UTC)
            expect(time_cell).to_have_text(local.strftime("%H:%M:%S.") + f"{ts_ms % 1000:03d}")
        finally:
            dev.close()
        assert d.errors == []
    finally:
        context.close()


def test_header_rate_is_smoothed(dash):  # noqa: F811
    """A device sending once every other second shows a steady rate, never 0 between sends."""
    rate = dash.page.evaluate(
        """async () => {
        const m = await import('./assets/model.js');
        const now = Math.floor(Date.now() / 1000);
        const seen = [];
        for (let end = now - 10; end <= now; end++) {
          // Bytes only in even seconds; the last complete second may be either.
          for (let s = end - 8; s < end; s++) m.chartAdd('up', s % 2 ? 0 : 1000, s * 1000);
          seen.push(m.smoothedRate('up', end));
        }
        return seen;
    }"""
    )
    assert all(r > 0 for r in rate), rate


def test_chart_refills_after_a_reload(dash, devices, socklab):  # noqa: F811
    """After a reload the chart shows the traffic of the last minute from the server."""
    dev = devices()
    dev.send(b"x" * 5000)

    def counted():
        status, body = socklab.get("/api/rates?seconds=60")
        return status == 200 and sum(s["bytes_up"] for s in body["seconds"]) == 5000

    socklab.wait_for("the rates to count the upload", counted)
    dash.page.reload()
    expect(dash.testid("stream-state")).to_have_attribute("data-state", "live")
    expect(dash.testid("throughput-chart")).not_to_have_attribute("data-peak-up", "0")
