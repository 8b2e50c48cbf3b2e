"""The socklab web dashboard in headless Chromium, against a real socklab and real devices.

Devices are `usocket` sockets on loopback; the browser is Debian's Chromium driven by
Playwright. Waits use Playwright's auto-retrying expectations (generous limits, no sleeps).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import usocket
from playwright import sync_api
from playwright.sync_api import expect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# Upper bounds that turn a hang into a failure; the expectations return as soon as they hold.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
DEVICE_TIMEOUT_S = 20

# Records every element of a kind a payload could smuggle in, once the page's own markup is parsed.
WATCH_INSERTS = """
window.__inserted = [];
let parsed = false;
document.addEventListener('DOMContentLoaded', () => { parsed = true; });
new MutationObserver((records) => {
  if (!parsed) return;
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    for (const e of [n, ...n.querySelectorAll('*')]) {
      if (/^(IMG|SCRIPT|IFRAME|OBJECT|EMBED|SVG|VIDEO|AUDIO|LINK|STYLE)$/i.test(e.tagName)) {
        window.__inserted.push(e.tagName);
      }
    }
  }
}).observe(document, {childList: true, subtree: true});
"""

# Outside CI a machine without Chromium skips these; in CI (`make test` installs it) a
# missing browser must fail, not pass silently.
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not os.environ.get("CI"),
    reason=f"Chromium not installed at {CHROMIUM}",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Dashboard:
    """A dashboard page plus what it did that a test must check: dialogs and script errors."""

    page: sync_api.Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def rows(self, online: bool | None = None):
        sel = '[data-testid="session-row"]'
        if online is not None:
            sel += f'[data-online="{"true" if online else "false"}"]'
        return self.page.locator(sel)

    def payloads(self):
        return self.page.locator('[data-testid="log"] [data-testid="log-payload"]')

    def testid(self, name: str):
        return self.page.get_by_test_id(name)


def dashboard_url(server, token: str | None = None) -> str:
    url = server.http_url.rstrip("/") + "/"
    token = token if token is not None else getattr(server, "token", None)
    return url + (f"?token={token}" if token else "")


@pytest.fixture
def blank(browser) -> Iterator[Dashboard]:
    """A fresh browser page, not yet on the dashboard; fails the test on dialogs or JS errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.add_init_script(WATCH_INSERTS)
    d = Dashboard(page)
    page.on("dialog", lambda dlg: (d.dialogs.append(dlg.message), dlg.dismiss()))
    page.on("pageerror", lambda exc: d.errors.append(str(exc)))
    yield d
    context.close()
    assert d.errors == [], f"script errors on the page: {d.errors}"
    assert d.dialogs == [], f"the page opened dialogs: {d.dialogs}"


@pytest.fixture
def dash(blank, socklab) -> Dashboard:
    """The dashboard of the test's socklab, with its live event stream connected."""
    blank.page.goto(dashboard_url(socklab))
    expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")
    return blank


class Device:
    """A device: one usocket TCP connection to socklab."""

    def __init__(self, port: int) -> None:
        self.sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        self.sock.settimeout(DEVICE_TIMEOUT_S)
        self.sock.connect(("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exactly(self, n: int) -> bytes:
        """Reads n bytes; fails on end of stream or after the socket timeout."""
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, f"connection ended after {buf!r}"
            buf += chunk
        return buf

    def recv_eof(self) -> None:
        """Waits until socklab closes the connection (usocket: OSError(107), then b'')."""
        while True:
            try:
                if not self.sock.recv(4096):
                    return
            except OSError as e:
                assert e.args[0] in (104, 107), e
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def devices(socklab) -> Iterator[Callable[[], Device]]:
    opened: list[Device] = []

    def connect() -> Device:
        dev = Device(socklab.tcp_port)
        opened.append(dev)
        return dev

    yield connect
    for dev in opened:
        dev.close()


def test_device_appears_and_data_shows_as_text_and_hex(dash, devices):
    """A connecting device shows up online; its bytes show escaped as text, then as hex."""
    dev = devices()
    row = dash.rows(online=True)
    expect(row).to_have_count(1)
    dev.send(b"hello\r\n\x01\xff")
    row.click()
    payload = dash.payloads()
    expect(payload).to_have_text(["hello\\r\\n\\x01\\xff"])
    expect(dash.page.locator('[data-testid="log-row"]')).to_have_attribute("data-direction", "up")
    expect(dash.testid("detail-bytes-up")).to_have_text("9")
    dash.testid("view-hex").click()
    expect(payload).to_have_text(["68 65 6c 6c 6f 0d 0a 01 ff"])
    dash.testid("view-text").click()
    expect(payload).to_have_text(["hello\\r\\n\\x01\\xff"])


def test_send_from_dashboard_reaches_device(dash, devices):
    """Text and hex typed into the send box arrive at the device byte for byte."""
    dev = devices()
    dash.rows(online=True).click()
    dash.testid("send-input").fill("ping from dashboard")
    dash.testid("send-button").click()
    assert dev.recv_exactly(19) == b"ping from dashboard"
    dash.testid("send-mode").select_option("hex")
    dash.testid("send-input").fill("41 42 0d 0a")
    dash.testid("send-button").click()
    assert dev.recv_exactly(4) == b"AB\r\n"
    down = dash.page.locator('[data-testid="log-row"][data-direction="down"]')
    expect(down).to_have_count(2)
    expect(dash.payloads()).to_have_text(["ping from dashboard", "AB\\r\\n"])
    expect(dash.testid("detail-bytes-down")).to_have_text("23")


def test_invalid_hex_is_refused_before_sending(dash, devices):
    """Hex that is not hex is refused in the page with a reason; nothing reaches the device."""
    dev = devices()
    dash.rows(online=True).click()
    dash.testid("send-mode").select_option("hex")
    dash.testid("send-input").fill("zz")
    expect(dash.testid("send-preview")).to_have_attribute("data-state", "error")
    dash.testid("send-button").click()
    banner = dash.testid("error-banner")
    expect(banner).to_be_visible()
    expect(dash.testid("error-text")).to_contain_text("invalid hex")
    # The device got nothing: the next bytes it reads are the next valid send.
    dash.testid("send-input").fill("4f4b")
    dash.testid("send-button").click()
    assert dev.recv_exactly(2) == b"OK"


def test_device_close_goes_offline_and_send_is_disabled(dash, devices, socklab):
    """The device closing turns its row offline: no link chip, Send disabled with a reason,
    and the Online filter hides it even while it is selected. The API still answers 409."""
    dev = devices()
    dash.rows(online=True).click()
    expect(dash.testid("send-button")).to_be_enabled()
    dev.close()
    row = dash.rows(online=False)
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("session-state")).to_have_text("offline · closed by device")
    expect(row.get_by_test_id("session-link")).to_be_hidden()
    expect(dash.testid("detail-state")).to_have_attribute("data-online", "false")
    expect(dash.testid("close-session")).to_be_disabled()
    expect(dash.testid("send-button")).to_be_disabled()
    expect(dash.testid("send-input")).to_be_disabled()
    expect(dash.testid("send-offline")).to_be_visible()
    expect(dash.testid("link-bar")).to_be_hidden()
    expect(dash.testid("total-online")).to_have_text("0")
    sid = int(row.get_attribute("data-session-id"))
    status, body = socklab.post(f"/api/sessions/{sid}/send", {"text": "too late"})
    assert status == 409, body
    # The Online filter shows online sessions only, whatever is selected.
    dash.testid("filter-online").click()
    expect(dash.rows()).to_have_count(0)
    devices()
    expect(dash.rows(online=True)).to_have_count(1)
    expect(dash.rows()).to_have_count(1)


def test_close_buttons_end_sessions(dash, devices):
    """The detail view's close button and a row's × both end the device's connection."""
    dev = devices()
    dash.rows(online=True).click()
    dash.testid("close-session").click()
    dev.recv_eof()
    row = dash.rows(online=False)
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("session-state")).to_have_text("offline · closed by operator")
    other = devices()
    online = dash.rows(online=True)
    expect(online).to_have_count(1)
    online.get_by_test_id("session-close").click()
    other.recv_eof()
    expect(dash.rows(online=False)).to_have_count(2)
    expect(dash.testid("total-online")).to_have_text("0")


def test_html_from_a_device_is_shown_as_text(dash, devices):
    """A device sending markup sees it shown literally: no element is created, no script runs."""
    markup = "<img src=x onerror=alert(1)>"
    dev = devices()
    dev.send(markup.encode())
    dash.rows(online=True).click()
    expect(dash.payloads()).to_have_text([markup])
    dev.send(b"<script>alert(2)</script>")
    expect(dash.payloads()).to_have_count(2)
    expect(dash.payloads().nth(1)).to_have_text("<script>alert(2)</script>")
    dash.testid("view-hex").click()
    dash.testid("view-text").click()
    expect(dash.payloads().nth(0)).to_have_text(markup)
    assert dash.page.locator('[data-testid="log"] img').count() == 0
    assert dash.page.locator("img, script:not([src])").count() == 0
    assert dash.page.evaluate("window.__inserted") == []
    # Dialogs and page errors are checked by the fixture after the test.


def test_broadcast_reaches_two_devices(dash, devices):
    """The broadcast box sends to every online device."""
    a, b = devices(), devices()
    expect(dash.rows(online=True)).to_have_count(2)
    expect(dash.testid("total-online")).to_have_text("2")
    dash.testid("broadcast-input").fill("to everyone")
    dash.testid("broadcast-send").click()
    assert a.recv_exactly(11) == b"to everyone"
    assert b.recv_exactly(11) == b"to everyone"
    expect(dash.testid("broadcast-result")).to_have_attribute("data-sessions", "2")
    for row in dash.rows(online=True).all():
        expect(row.get_by_test_id("session-bytes")).to_contain_text("↓ 11 B")


def test_log_is_capped_and_older_messages_load(dash, devices, socklab):
    """Under many messages the log keeps the newest 500 rows; older ones load on demand."""
    status, _ = socklab.put("/api/listeners/0/echo", {"enabled": True})
    assert status == 200
    dev = devices()
    for i in range(300):  # one message each way per round trip: 600 in total
        line = f"m{i:03d}\n".encode()
        dev.send(line)
        assert dev.recv_exactly(len(line)) == line
    dash.rows(online=True).click()
    expect(dash.testid("detail-msgs")).to_have_text("300 / 300")
    rows = dash.page.locator('[data-testid="log-row"]')
    expect(rows).to_have_count(500)
    expect(dash.payloads().last).to_have_text("m299\\n")
    older = dash.testid("log-older")
    expect(older).to_be_visible()
    older.click()
    expect(rows).to_have_count(600)
    expect(dash.payloads().first).to_have_text("m000\\n")
    expect(older).to_be_hidden()
    # Live messages keep arriving at the bottom.
    dev.send(b"tail\n")
    assert dev.recv_exactly(5) == b"tail\n"
    expect(dash.payloads().last).to_have_text("tail\\n")


def test_fast_device_keeps_the_page_bounded(dash, devices):
    """A device streaming data: counters reach the exact total while the log stays capped."""
    dev = devices()
    dash.rows(online=True).click()
    chunk = b"0123456789abcdef" * 64  # 1 KiB
    for _ in range(2000):
        dev.send(chunk)
    expect(dash.testid("detail-bytes-up")).to_have_text("2,048,000")
    assert dash.page.locator('[data-testid="log-row"]').count() <= 500
    expect(dash.testid("total-up")).to_have_text("2.0 MiB")
    # The throughput chart saw the burst (its peak over the last 60 s is not zero).
    expect(dash.testid("throughput-chart")).not_to_have_attribute("data-peak-up", "0")


def test_event_stream_reconnects_and_catches_up(blank, socklab, devices):
    """While the event stream fails the page retries; once back it shows what it missed."""
    page = blank.page
    broken = [True]

    def events(route):
        if broken[0]:
            route.fulfill(status=503, content_type="application/json", body='{"error": "down"}')
        else:
            route.continue_()

    page.route("**/api/events*", events)
    page.goto(dashboard_url(socklab))
    state = blank.testid("stream-state")
    expect(state).to_have_attribute("data-state", "error")
    dev = devices()
    dev.send(b"while away")
    broken[0] = False
    expect(state).to_have_attribute("data-state", "live")
    expect(blank.rows(online=True)).to_have_count(1)
    blank.rows(online=True).click()
    expect(blank.payloads()).to_have_text(["while away"])
    # And the stream is live again: new traffic shows up without a reload.
    dev.send(b"back")
    expect(blank.payloads()).to_have_text(["while away", "back"])


def test_echo_toggle_and_auto_reply_rules(dash, devices, socklab):
    """Echo mode and auto-reply rules set from the dashboard act on the device's traffic."""
    listener = dash.page.locator('[data-testid="listener-row"][data-listener-id="0"]')
    echo = listener.get_by_test_id("listener-echo")
    echo.check()
    expect(listener).to_have_attribute("data-echo", "true")  # the server confirmed it
    dev = devices()
    dev.send(b"abc")
    assert dev.recv_exactly(3) == b"abc"
    echo.uncheck()
    expect(listener).to_have_attribute("data-echo", "false")

    listener.get_by_test_id("listener-rules").click()
    editor = dash.testid("rules-editor")
    editor.get_by_test_id("rule-add").click()
    rule = editor.get_by_test_id("rule-row").last
    rule.get_by_test_id("rule-match").select_option("regex")
    rule.get_by_test_id("rule-pattern").fill("([")
    rule.get_by_test_id("rule-reply").fill("pong")
    editor.get_by_test_id("rules-save").click()
    expect(dash.testid("error-banner")).to_have_attribute("data-status", "400")
    rule.get_by_test_id("rule-match").select_option("exact")
    rule.get_by_test_id("rule-pattern").fill("ping")
    editor.get_by_test_id("rules-save").click()
    expect(editor).to_be_hidden()
    dev.send(b"ping\r\n")
    assert dev.recv_exactly(4) == b"pong"

    # Frames ending at a delimiter typed with escapes: a split "ping" is answered once whole.
    listener.get_by_test_id("listener-rules").click()
    editor.get_by_test_id("rules-framing").select_option("delimiter")
    editor.get_by_test_id("rules-framing-delim").fill("\\x1a")
    editor.get_by_test_id("rules-save").click()
    expect(editor).to_be_hidden()
    framing = socklab.get("/api/listeners")[1]["listeners"][0]["framing"]
    assert framing == {"kind": "delimiter", "delimiter_hex": "1a"}
    dev.send(b"pi")
    # bytes up so far: abc, ping\r\n, then pi
    socklab.wait_for("the first half", lambda: socklab.sessions()[0]["bytes_up"] >= 11)
    dev.send(b"ng\x1a")
    assert dev.recv_exactly(4) == b"pong"
    listener.get_by_test_id("listener-rules").click()
    expect(editor.get_by_test_id("rules-framing-delim")).to_have_value("\\x1a")


def test_udp_device_shows_up_with_its_datagrams(dash, socklab):
    """A UDP peer is a session too: it appears as udp, one row per datagram."""
    dev = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        dev.sendto(b"first", ("127.0.0.1", socklab.udp_port))
        row = dash.rows(online=True)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("udp")
        row.click()
        dev.sendto(b"second\x00", ("127.0.0.1", socklab.udp_port))
        expect(dash.payloads()).to_have_text(["first", "second\\x00"])
    finally:
        dev.close()


def test_large_message_is_cut_for_display(dash, socklab):
    """A 10,000-byte datagram shows its first 4,096 bytes and counts the rest."""
    dev = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        dev.sendto(b"A" * 10_000, ("127.0.0.1", socklab.udp_port))
        dash.rows(online=True).click()
        payload = dash.payloads()
        expect(payload).to_have_count(1)
        expect(payload).to_have_text("A" * 4096 + " … +5,904 bytes")
        expect(dash.page.locator('[data-testid="log-row"] .log-len')).to_have_text("10,000 B")
        # The same arriving live (through the event stream's large-event decoder).
        dev.sendto(b"B" * 10_000, ("127.0.0.1", socklab.udp_port))
        expect(payload).to_have_count(2)
        expect(payload.nth(1)).to_have_text("B" * 4096 + " … +5,904 bytes")
    finally:
        dev.close()


def test_token_is_used_for_api_and_stream(blank, socklab_factory):
    """With a token, the page's ?token= authorises its calls and stream; without, 401 shows."""
    lab = socklab_factory(token="s3cret token")
    page = blank.page
    page.goto(lab.http_url + "/?token=s3cret%20token")
    expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")
    dev = Device(lab.tcp_port)
    try:
        row = blank.rows(online=True)
        expect(row).to_have_count(1)
        row.click()
        blank.testid("send-input").fill("authorised")
        blank.testid("send-button").click()  # a POST: token and same-origin check pass
        assert dev.recv_exactly(10) == b"authorised"
    finally:
        dev.close()
    # Without the token the page is refused (401) with a page that says how to open it.
    resp = page.goto(lab.http_url + "/")
    assert resp is not None and resp.status == 401
    expect(page.locator("h1")).to_have_text("This socklab needs a token")
    expect(page.locator("body")).to_contain_text("?token=")
    assert "application/json" not in resp.headers.get("content-type", "")


def test_keyboard_moves_the_selection(dash, devices):
    """Arrow keys walk the session list (newest first); the detail view follows."""
    devices(), devices()
    rows = dash.rows(online=True)
    expect(rows).to_have_count(2)
    newest, older = rows.nth(0), rows.nth(1)
    newest.click()
    expect(newest).to_have_class(re.compile(r"\bselected\b"))
    newest.press("ArrowDown")
    expect(older).to_have_class(re.compile(r"\bselected\b"))
    older_id = older.get_attribute("data-session-id")
    expect(dash.testid("session-detail")).to_have_attribute("data-session-id", older_id)
    expect(older).to_be_focused()
    older.press("ArrowUp")
    expect(newest).to_have_class(re.compile(r"\bselected\b"))
