"""Operator routes a cluster answers for every node, over a real nats-server and real
socklab nodes: a session's traffic history from the node holding it and the cluster's
added up (`GET /api/rates`), periodic broadcasts started on every node
(`POST /api/broadcast/periodic`), the periodic sends of every node (`GET /api/periodic`),
and `missing_nodes` naming a node that does not answer."""

from __future__ import annotations

import os
import signal

import cluster_support
from cluster_support import cluster_sessions, sees_nodes, wait_until
from conftest import recv_exactly

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory
devices = cluster_support.devices


def rates_up(lab, query: str = "") -> tuple[int, dict]:
    """Bytes up over the last minute as `lab` answers GET /api/rates (and the body)."""
    status, body = lab.get("/api/rates?seconds=60" + query)
    assert status == 200, body
    return sum(s["bytes_up"] for s in body["seconds"]), body


def test_rates_of_another_nodes_session_and_of_the_cluster(node_factory, devices):
    """B answers the history of A's session (the dashboard's per-session chart after a
    reload) and the cluster's traffic as A's and B's added up; bad ids are refused."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    devices(a.tcp_port).sendall(b"x" * 1000)
    devices(b.tcp_port).sendall(b"y" * 300)
    wait_until("both sessions on b", lambda: len(cluster_sessions(b)["sessions"]) == 2)
    on = {s["node"]: s["id"] for s in cluster_sessions(b)["sessions"]}
    assert on["a"].startswith("a:")
    # History is written shortly after the bytes arrive: poll for it.
    wait_until("a's session's rates on b", lambda: rates_up(b, "&session=" + on["a"])[0] == 1000)
    assert rates_up(a, "&session=" + on["a"].split(":")[1])[0] == 1000
    assert rates_up(b, "&session=" + on["b"])[0] == 300
    wait_until("cluster rates on b", lambda: rates_up(b)[0] == 1300)
    total, body = rates_up(b)
    assert body["missing_nodes"] == [] and total == 1300
    assert rates_up(a)[0] == 1300  # the same answer from either node
    assert b.get("/api/rates?session=nosuchnode:1")[0] == 404
    assert b.get("/api/rates?session=a:b:1")[0] == 400
    assert b.get("/api/rates?seconds=0")[0] == 400


def test_periodic_broadcast_reaches_every_node_and_is_listed_everywhere(node_factory, devices):
    """A periodic broadcast started through B runs on A and B (each to its own device),
    both nodes list both periodic sends with global ids, each stops through A."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev_a, dev_b = devices(a.tcp_port), devices(b.tcp_port)
    wait_until("two devices on b", lambda: cluster_sessions(b)["total"] == 2)
    status, started = b.post("/api/broadcast/periodic", {"text": "P\n", "every_ms": 100})
    assert status == 201, started
    ids = sorted(p["id"] for p in started["periodic"])
    assert [i.split(":")[0] for i in ids] == ["a", "b"], started
    assert started["id"] == next(i for i in ids if i.startswith("b:"))
    assert (started["errors"], started["missing_nodes"]) == ([], [])
    assert recv_exactly(dev_a, 4) == b"P\nP\n"
    assert recv_exactly(dev_b, 4) == b"P\nP\n"
    for lab in (a, b):
        status, body = lab.get("/api/periodic")
        assert status == 200 and body["missing_nodes"] == [], body
        assert sorted(p["id"] for p in body["periodic"]) == ids
        assert {p["target"] for p in body["periodic"]} == {"broadcast"}
    for pid in ids:
        status, final = a.request("DELETE", f"/api/periodic/{pid}")
        assert status == 200 and final["id"] == pid and final["sent"] >= 2, final
    assert b.get("/api/periodic")[1]["periodic"] == []
    # Refused alike by every node: the answer says why and nothing starts.
    status, body = b.post("/api/broadcast/periodic", {"text": "P", "every_ms": 0})
    assert status == 400, body
    status, body = b.post("/api/broadcast/periodic", {"snippet": "nope", "every_ms": 100})
    assert status == 404, body
    assert b.get("/api/periodic")[1]["periodic"] == []


def test_a_node_that_does_not_answer_is_named(node_factory, devices):
    """With C stopped (SIGSTOP), the cluster-wide routes answer from A and B and name C in
    missing_nodes; once C runs again it answers again."""
    a = node_factory("a")
    b = node_factory("b")
    c = node_factory("c")
    wait_until("b sees a and c", lambda: sees_nodes(b, {"a", "b", "c"}))
    devices(a.tcp_port)
    devices(c.tcp_port)
    wait_until("two devices on b", lambda: cluster_sessions(b)["total"] == 2)
    os.kill(c.pid, signal.SIGSTOP)
    try:
        status, started = b.post("/api/broadcast/periodic", {"text": "Q", "every_ms": 1000})
        assert status == 201 and started["missing_nodes"] == ["c"], started
        assert sorted(p["id"].split(":")[0] for p in started["periodic"]) == ["a", "b"]
        status, listed = b.get("/api/periodic")
        assert status == 200 and listed["missing_nodes"] == ["c"], listed
        assert len(listed["periodic"]) == 2
        status, body = b.get("/api/rates")
        assert status == 200 and body["missing_nodes"] == ["c"], body
        for p in started["periodic"]:
            assert b.request("DELETE", f"/api/periodic/{p['id']}")[0] == 200
    finally:
        os.kill(c.pid, signal.SIGCONT)
    wait_until("c answers again", lambda: b.get("/api/periodic")[1]["missing_nodes"] == [])
