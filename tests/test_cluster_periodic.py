"""Snippets and periodic sends on a cluster over a real nats-server: a periodic send started
through node B for a device on node A runs on A (with a snippet saved only on B), comes back
with a NODE:ID id, and stops through B."""

from __future__ import annotations

import cluster_support
from cluster_support import cluster_sessions, sees_nodes, wait_until
from conftest import recv_exactly

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory


def test_periodic_send_to_another_nodes_device(node_factory, tcp_device):
    """B starts "send every 100 ms" to A's device from B's snippet; A runs it; B stops it."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev = tcp_device(a.tcp_port)
    sid = wait_until(
        "a's device seen by b",
        lambda: next((s["id"] for s in cluster_sessions(b)["sessions"] if s["node"] == "a"), None),
    )
    assert b.post("/api/snippets", {"name": "hb", "text": "HB\n"})[0] == 201
    assert b.post(f"/api/sessions/{sid}/send", {"snippet": "hb"}) == (200, {"bytes": 3})
    assert recv_exactly(dev, 3) == b"HB\n"
    status, p = b.post(f"/api/sessions/{sid}/periodic", {"snippet": "hb", "every_ms": 100})
    assert status == 201, p
    assert p["id"].startswith("a:") and p["session_id"] == sid
    assert recv_exactly(dev, 6) == b"HB\nHB\n"
    running = a.get("/api/periodic")[1]["periodic"]
    assert [r["id"] for r in running] == [p["id"]]
    status, final = b.request("DELETE", f"/api/periodic/{p['id']}")
    assert status == 200 and final["id"] == p["id"] and final["sent"] >= 2, final
    assert a.get("/api/periodic")[1]["periodic"] == []
    assert b.request("DELETE", f"/api/periodic/{p['id']}")[0] == 404
    assert b.post(f"/api/sessions/{sid}/periodic", {"snippet": "nope", "every_ms": 100})[0] == 404
