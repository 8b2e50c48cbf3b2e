"""The dashboard in headless Chromium (as tests/test_dashboard.py) for labels, search,
export and history deletion: what the page shows is checked against what the API stores
and what the device still receives. Confirmation dialogs are answered like a user would."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from test_dashboard import (  # noqa: F401
    CHROMIUM,
    WAIT_MS,
    Dashboard,
    browser,
    dashboard_url,
    devices,
)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)


@pytest.fixture
def page(browser, socklab) -> Iterator[Dashboard]:  # noqa: F811
    """The dashboard; dialogs are recorded and accepted (the user confirms)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    d = Dashboard(p)
    p.on("dialog", lambda dlg: (d.dialogs.append(dlg.message), dlg.accept()))
    p.on("pageerror", lambda exc: d.errors.append(str(exc)))
    p.goto(dashboard_url(socklab))
    expect(d.testid("stream-state")).to_have_attribute("data-state", "live")
    yield d
    context.close()
    assert d.errors == [], f"script errors on the page: {d.errors}"


def stored(socklab, query: str) -> int:
    return socklab.get("/api/messages?" + query)[1]["total"]


def fetch(page: Dashboard, testid: str) -> bytes:
    """Downloads what a link on the page points at, with the page's own URL."""
    href = page.testid(testid).evaluate("a => a.href")
    resp = page.page.request.get(href)
    assert resp.status == 200, resp.text()
    return resp.body()


def test_label_search_export_and_delete_from_the_page(page, socklab, devices):  # noqa: F811
    dev = devices()
    for line in (b"IMEI 8612 temp=21\n", b"temp=22\n"):
        dev.send(line)
        socklab.wait_for("the upload", lambda line=line: stored(socklab, "hex=" + line.hex()))
    page.rows(online=True).click()
    sid = socklab.sessions("online")[0]["id"]
    # Label: typed on the page, stored by the server, shown in the list and the title.
    page.testid("label-input").fill("pump 3")
    page.testid("label-save").click()
    expect(page.testid("session-label")).to_have_text("pump 3")
    expect(page.testid("detail-title")).to_contain_text("pump 3")
    assert socklab.get(f"/api/sessions/{sid}")[1]["label"] == "pump 3"
    expect(page.testid("detail-rate")).to_contain_text("msg/s")
    # The whole rate line is shown, not cut off with an ellipsis.
    rate_cell = page.testid("detail-rate")
    assert rate_cell.evaluate("dd => dd.scrollWidth <= dd.clientWidth"), rate_cell.inner_text()

    # Search over all sessions: the result stays put while more data arrives.
    page.testid("search-input").fill("temp=")
    page.testid("search-go").click()
    expect(page.testid("search-info")).to_have_attribute("data-total", "2")
    expect(page.testid("search-result")).to_have_count(2)
    dev.send(b"temp=23\n")
    socklab.wait_for("the third upload", lambda: stored(socklab, "q=temp%3D23"))
    expect(page.testid("search-result")).to_have_count(2)
    exported = fetch(page, "search-export")
    assert [json.loads(x)["text"] for x in exported.decode().splitlines()] == [
        "IMEI 8612 temp=21\n",
        "temp=22\n",
    ]
    page.testid("search-go").click()
    expect(page.testid("search-info")).to_have_attribute("data-total", "3")
    # By label, in the selected session.
    page.testid("search-kind").select_option("label")
    page.testid("search-input").fill("PUMP")
    page.testid("search-scope").select_option("session")
    page.testid("search-go").click()
    expect(page.testid("search-info")).to_have_attribute("data-total", "3")
    expect(page.testid("search-result").first).to_contain_text("pump 3")

    # The session's export in raw: the bytes the device sent.
    page.testid("detail-export-format").select_option("raw")
    assert fetch(page, "detail-export") == b"IMEI 8612 temp=21\ntemp=22\ntemp=23\n"

    # Delete the live session's messages: asked first, then gone; the device stays.
    page.testid("delete-history").click()
    expect(page.testid("log-row")).to_have_count(0)
    assert page.dialogs and "stays connected" in page.dialogs[-1]
    assert socklab.get(f"/api/sessions/{sid}/messages")[1]["total"] == 0
    dev.send(b"after\n")
    expect(page.testid("log-row")).to_have_count(1)
    assert socklab.post(f"/api/sessions/{sid}/send", {"text": "ok"})[0] == 200
    assert dev.recv_exactly(2) == b"ok"

    # Everything before a time: the picker is in UTC.
    later = datetime.now(UTC) + timedelta(minutes=1)
    page.testid("delete-before").fill(later.strftime("%Y-%m-%dT%H:%M:%S"))
    page.testid("delete-before-go").click()
    expect(page.testid("delete-before-result")).to_contain_text("Deleted 2 messages")
    assert "older than" in page.dialogs[-1]
    assert stored(socklab, "") == 0
    expect(page.rows(online=True)).to_have_count(1)
