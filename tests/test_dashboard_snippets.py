"""The dashboard's snippets panel and "send every N ms" in headless Chromium (as
tests/test_dashboard.py), checked at the device: a saved snippet sent to the selected device
arrives byte for byte, a taken name is replaced only on request, delete takes two clicks, and
a periodic send started from the send box or the broadcast box repeats until its Stop button
is pressed, and disappears from the list by itself when the device hangs up."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect
from test_dashboard import (  # noqa: F401
    CHROMIUM,
    Dashboard,
    blank,
    browser,
    dash,
    devices,
)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)


def save_snippet(d: Dashboard, name: str, mode: str, content: str) -> None:
    d.testid("snippet-name").fill(name)
    d.testid("snippet-mode").select_option(mode)
    d.testid("snippet-input").fill(content)
    d.testid("snippet-save").click()


def snippet_row(d: Dashboard, name: str):
    return d.page.locator(f'[data-testid="snippet-row"][data-name="{name}"]')


def test_snippets_panel_saves_sends_and_deletes(dash, devices, socklab):  # noqa: F811
    """Snippets typed with escapes or as hex reach the selected device exactly; a taken name
    offers Replace; delete asks for a second click; the API sees the same snippets."""
    dev = devices()
    dash.rows(online=True).click()
    save_snippet(dash, "hello", "text", r"HELLO\r\n")
    expect(snippet_row(dash, "hello")).to_contain_text("HELLO\\r\\n")
    save_snippet(dash, "bin", "hex", "00 ff 41")
    expect(snippet_row(dash, "bin")).to_be_visible()
    snippet_row(dash, "hello").get_by_test_id("snippet-send").click()
    assert dev.recv_exactly(7) == b"HELLO\r\n"
    snippet_row(dash, "bin").get_by_test_id("snippet-send").click()
    assert dev.recv_exactly(3) == b"\x00\xffA"
    # A taken name is not overwritten until Replace is pressed.
    save_snippet(dash, "hello", "text", "HI")
    dash.testid("snippet-replace").click()
    expect(dash.testid("snippet-result")).to_contain_text('Saved "hello"')
    snippet_row(dash, "hello").get_by_test_id("snippet-send").click()
    assert dev.recv_exactly(2) == b"HI"
    # A bad name is refused by the server with its reason.
    save_snippet(dash, "two words", "text", "x")
    expect(dash.testid("error-text")).to_contain_text("invalid snippet name")
    delete = snippet_row(dash, "bin").get_by_test_id("snippet-delete")
    delete.click()
    expect(delete).to_have_text("Delete?")
    delete.click()
    expect(snippet_row(dash, "bin")).to_have_count(0)
    names = [s["name"] for s in socklab.get("/api/snippets")[1]["snippets"]]
    assert names == ["hello"]


def test_send_every_and_stop(dash, devices, socklab):  # noqa: F811
    """ "Send every" repeats the send box's bytes until Stop; a snippet's Every does the same;
    the periodic list empties by itself when the device hangs up; a periodic broadcast
    reaches every device until stopped."""
    dev = devices()
    dash.rows(online=True).click()
    dash.testid("send-mode").select_option("hex")
    dash.testid("send-eol").select_option("lf")
    dash.testid("send-input").fill("2a")
    dash.testid("periodic-ms").fill("100")
    dash.testid("periodic-start").click()
    row = dash.testid("periodic-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("every 100 ms")
    assert dev.recv_exactly(4) == b"*\n*\n"
    row.get_by_test_id("periodic-stop").click()
    expect(row).to_have_count(0)
    assert socklab.get("/api/periodic")[1]["periodic"] == []
    note = dash.testid("periodic-note")
    expect(note).to_contain_text("stopped by operator")
    # What was accepted before the stop arrives; then nothing more.
    sent = int(note.inner_text().split("(sent ", 1)[1].split(")")[0])
    assert sent >= 2
    assert dev.recv_exactly(2 * sent - 4) == b"*\n" * (sent - 2)
    dev.sock.settimeout(0.6)
    with pytest.raises(OSError):
        dev.sock.recv(16)
    dev.sock.settimeout(20)

    # A snippet's Every, then the device hangs up: the periodic send ends by itself.
    socklab.post("/api/snippets", {"name": "tick", "text": "T"})
    dash.page.reload()
    expect(dash.testid("stream-state")).to_have_attribute("data-state", "live")
    dash.rows(online=True).click()
    dash.testid("periodic-ms").fill("100")
    dash.page.locator('[data-testid="snippet-row"][data-name="tick"]').get_by_test_id(
        "snippet-every"
    ).click()
    expect(dash.testid("periodic-row")).to_contain_text('"tick"')
    assert dev.recv_exactly(2) == b"TT"
    dev.close()
    expect(dash.testid("periodic-row")).to_have_count(0)
    expect(dash.testid("periodic-note")).to_contain_text("session offline")
    expect(dash.testid("periodic-start")).to_be_disabled()

    # Broadcast every N ms to two devices, stopped from the list.
    a, b = devices(), devices()
    expect(dash.rows(online=True)).to_have_count(2)
    dash.testid("broadcast-input").fill(r"B\n")
    dash.testid("broadcast-every-ms").fill("100")
    dash.testid("broadcast-every").click()
    expect(dash.testid("periodic-row")).to_contain_text("all devices")
    assert a.recv_exactly(4) == b"B\nB\n"
    assert b.recv_exactly(4) == b"B\nB\n"
    dash.testid("periodic-stop").click()
    expect(dash.testid("periodic-row")).to_have_count(0)
    assert socklab.get("/api/periodic")[1]["periodic"] == []
