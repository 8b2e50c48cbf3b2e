"""The selected session's rate chart in headless Chromium: what it draws is the bytes a real
device sent and received, second by second as the server stored them, only that session's;
it grows with the live stream, and after a reload it is refilled from the server's history."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect
from test_dashboard import (  # noqa: F401
    CHROMIUM,
    blank,
    browser,
    dashboard_url,
    devices,
)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Chromium not installed at {CHROMIUM}"
)

# Pixels of the canvas that something was drawn on.
DRAWN_PIXELS = """(c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
  return n;
}"""


def chart_seconds(chart, direction: str) -> dict[int, int]:
    """The chart's drawn seconds with traffic: {unix second: bytes}."""
    text = chart.get_attribute(f"data-{direction}") or ""
    return {int(s): int(b) for s, b in (pair.split(":") for pair in text.split())}


def stored(socklab, sid: int, direction: str) -> dict[int, int]:
    """The server's stored bytes per second of one session over the last minute."""
    status, body = socklab.get(f"/api/rates?seconds=60&session={sid}")
    assert status == 200, body
    key = "bytes_" + direction
    return {s["t_ms"] // 1000: s[key] for s in body["seconds"] if s[key]}


def test_session_chart_draws_the_devices_bytes_and_refills_after_reload(
    blank,  # noqa: F811
    socklab,
    devices,  # noqa: F811
):
    page = blank.page
    chatty, other = devices(), devices()
    readings = [b"reading %02d temp=21.5\n" % k for k in range(8)]
    for reading in readings:
        chatty.send(reading)
    up = sum(map(len, readings))
    other.send(b"x" * 500)
    socklab.wait_for(
        "both uploads", lambda: sorted(s["bytes_up"] for s in socklab.sessions()) == [up, 500]
    )
    sid = next(s["id"] for s in socklab.sessions() if s["bytes_up"] == up)
    other_id = next(s["id"] for s in socklab.sessions() if s["id"] != sid)
    status, _ = socklab.post(f"/api/sessions/{sid}/send", {"text": "interval=5\n"})
    assert status == 200
    assert chatty.recv_exactly(11) == b"interval=5\n"
    socklab.wait_for(
        "the traffic stored in complete seconds",
        lambda: (
            sum(stored(socklab, sid, "up").values()) == up
            and sum(stored(socklab, sid, "down").values()) == 11
        ),
    )

    page.goto(dashboard_url(socklab) + f"#session={sid}")
    expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")
    chart = blank.testid("detail-chart")
    expect(chart).to_have_attribute("data-sid", str(sid))
    # Read from the server on selection, and once more a moment later.
    expect(chart).to_have_attribute("data-refills", "2")
    expect(chart).to_have_attribute("data-total-up", str(up))
    expect(chart).to_have_attribute("data-total-down", "11")
    # Second by second what the server stored, and none of the other device's bytes.
    assert chart_seconds(chart, "up") == stored(socklab, sid, "up")
    assert chart_seconds(chart, "down") == stored(socklab, sid, "down")
    assert chart.evaluate(DRAWN_PIXELS) > 0
    expect(blank.testid("detail-chart-scale")).to_contain_text("/s")

    # Live: more traffic while the page is open comes from the event stream (no new read).
    more = b"reading 08 temp=21.6\n" + b"." * 29
    chatty.send(more)
    up += len(more)
    expect(chart).to_have_attribute("data-total-up", str(up))
    assert chart.get_attribute("data-refills") == "2"

    # After a reload, with the device quiet, the chart is refilled from history.
    socklab.wait_for(
        "the last upload stored", lambda: sum(stored(socklab, sid, "up").values()) == up
    )
    page.reload()
    expect(chart).to_have_attribute("data-sid", str(sid))
    expect(chart).to_have_attribute("data-loaded", "true")
    expect(chart).to_have_attribute("data-total-up", str(up))
    expect(chart).to_have_attribute("data-total-down", "11")
    assert chart_seconds(chart, "up") == stored(socklab, sid, "up")
    assert chart.evaluate(DRAWN_PIXELS) > 0

    # Another session selected: its own bytes only.
    page.locator(f'[data-testid="session-row"][data-session-id="{other_id}"]').click()
    expect(chart).to_have_attribute("data-sid", str(other_id))
    expect(chart).to_have_attribute("data-loaded", "true")
    expect(chart).to_have_attribute("data-total-up", "500")
    assert chart.get_attribute("data-total-down") == "0"
    assert chart_seconds(chart, "up") == stored(socklab, other_id, "up")
