"""Labels and history housekeeping through another node of a cluster (a real nats-server):
the call goes to the node that holds the session, as send and close do."""

from __future__ import annotations

import cluster_support
from cluster_support import cluster_sessions, sees_nodes, wait_until

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory


def test_label_and_delete_a_session_of_another_node(node_factory, tcp_device):
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev = tcp_device(a.tcp_port)
    dev.send(b"reading 1\n")

    def remote():
        found = [s for s in cluster_sessions(b)["sessions"] if s["node"] == "a"]
        return found[0] if found else None

    sid = wait_until("a's device seen from b", remote)["id"]
    wait_until("the upload stored", lambda: b.get(f"/api/sessions/{sid}/messages")[1]["total"])
    status, body = b.put(f"/api/sessions/{sid}/label", {"label": "meter A"})
    assert status == 200 and body["label"] == "meter A" and body["id"] == sid, body
    local = int(sid.split(":")[1])
    assert a.get(f"/api/sessions/{local}")[1]["label"] == "meter A"
    status, body = b.request("DELETE", f"/api/sessions/{sid}/messages")
    assert status == 200 and body["deleted"]["messages"] == 1, body
    assert a.get(f"/api/sessions/{local}/messages")[1]["total"] == 0
    assert b.request("DELETE", f"/api/sessions/{sid}")[0] == 409  # still online
    assert b.put("/api/sessions/a:999999/label", {"label": "x"})[0] == 404
