"""Node B's dashboard in headless Chromium shows a device held by node A (its global id
names the node), shows what it sends live, and sends to it through B."""

from __future__ import annotations

import cluster_support
import test_dashboard
from cluster_support import sees_nodes, wait_until
from conftest import recv_exactly
from playwright.sync_api import expect
from test_dashboard import dashboard_url

# Fixtures: the cluster's, and the browser page of the dashboard tests.
nats = cluster_support.nats
node_factory = cluster_support.node_factory
devices = cluster_support.devices
browser = test_dashboard.browser
blank = test_dashboard.blank
pytestmark = test_dashboard.pytestmark


def test_dashboard_of_b_operates_a_device_on_a(blank, node_factory, devices):
    """A's device appears on B's dashboard as a:ID labelled with node a (list and detail),
    its data arrives live over NATS, a send typed on B's dashboard reaches the device on A,
    and B's own device sits beside it labelled b."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    blank.page.goto(dashboard_url(b))
    expect(blank.testid("stream-state")).to_have_attribute("data-state", "live")

    dev = devices(a.tcp_port)
    row = blank.page.locator('[data-testid="session-row"][data-session-id^="a:"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("#a:")
    expect(row.locator('[data-testid="session-node"]')).to_have_text("a")
    row.click()
    expect(blank.testid("detail-node")).to_have_text("node a")
    dev.sendall(b"hello from node A\n")
    expect(blank.payloads()).to_have_text(["hello from node A\\n"])
    blank.testid("send-input").fill("hi from B's dashboard")
    blank.testid("send-button").click()
    assert recv_exactly(dev, 21) == b"hi from B's dashboard"
    down = blank.page.locator('[data-testid="log-row"][data-direction="down"]')
    expect(down).to_have_count(1)

    mine = devices(b.tcp_port)
    mine_row = blank.page.locator('[data-testid="session-row"][data-session-id^="b:"]')
    expect(mine_row).to_have_count(1)
    expect(mine_row.locator('[data-testid="session-node"]')).to_have_text("b")
    mine_row.click()
    expect(blank.testid("detail-node")).to_have_text("node b")
    expect(blank.rows(online=True)).to_have_count(2)
    dev.close()
    mine.close()
    expect(blank.rows(online=True)).to_have_count(0)
