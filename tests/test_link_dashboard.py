"""The dashboard's link display and controls in headless Chromium (as tests/test_dashboard.py):
a session shows its active link, the operator changes it and injects a NAT drop from the
page, and data the link dropped is marked in the message log.
"""

from __future__ import annotations

import shutil

import pytest
import usocket
from playwright.sync_api import expect
from test_dashboard import CHROMIUM, Dashboard, blank, browser, dashboard_url  # noqa: F401

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)


def test_dashboard_shows_and_changes_a_sessions_link(blank: Dashboard, socklab_factory):  # noqa: F811
    """A session on an `ltem` listener shows `ltem`; setting `gprs` from the page reaches
    the server; a NAT drop from the page shows, and the data it swallows is marked."""
    lab = socklab_factory(link="ltem")
    blank.page.goto(dashboard_url(lab))
    expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")
    expect(blank.page.locator('[data-testid="listener-link"]').first).to_have_value("ltem")
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", lab.tcp_port))
    try:
        row = blank.rows(online=True)
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("session-link")).to_have_text("ltem")
        row.click()
        expect(blank.testid("detail-link")).to_have_text("ltem")

        blank.testid("link-input").fill("gprs,nat_idle=270s")
        blank.testid("link-apply").click()
        expect(blank.testid("detail-link")).to_have_text("gprs,nat_idle=270s")
        expect(row.get_by_test_id("session-link")).to_have_text("gprs,nat_idle=270s")
        session = lab.sessions("online")[0]
        assert session["link"] == {"spec": "gprs,nat_idle=270s", "state": "ok"}

        blank.testid("fault-nat").click()
        expect(blank.testid("detail-link")).to_have_attribute("data-state", "nat_dropped")
        expect(row.get_by_test_id("session-link")).to_contain_text("nat dropped")
        sock.sendall(b"into the void\n")
        dropped = blank.page.locator('[data-testid="log-row"][data-dropped="true"]')
        expect(dropped).to_have_count(1)
        expect(dropped.get_by_test_id("log-payload")).to_have_text("into the void\\n")
        expect(dropped.get_by_test_id("log-dropped")).to_have_text("dropped by link")
    finally:
        sock.close()
