"""socklab nodes in a cluster over a real nats-server: a device on one node operated through
another node's API, broadcast across three nodes, pagination across nodes, and clear
errors for bad cluster URLs and a node-name clash."""

from __future__ import annotations

import subprocess
from typing import Any

import cluster_support
import pytest
from cluster_support import (
    cluster_sessions,
    sees_nodes,
    wait_until,
)
from conftest import SOCKLAB_BIN, recv_exactly

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory
devices = cluster_support.devices


def session_on(lab: Any, node: str, count: int = 1) -> list[dict[str, Any]]:
    """Waits until `lab`'s cluster listing shows `count` online sessions of `node`."""

    def check() -> list[dict[str, Any]] | None:
        found = [s for s in cluster_sessions(lab)["sessions"] if s["node"] == node]
        return found if len(found) >= count else None

    return wait_until(f"{count} session(s) of node {node} seen", check)


def test_device_on_a_is_operated_through_b(node_factory, tcp_device):
    """B lists A's device with a global id, sends to it, reads its history, sets its link,
    injects a fault and closes it, all through B's API; A's own history agrees."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev = tcp_device(a.tcp_port)
    dev.send(b"hello from a device on A\n")
    (s,) = session_on(b, "a")
    assert s["id"].startswith("a:") and s["online"] and "unreachable" not in s
    sid = s["id"]

    status, body = b.post(f"/api/sessions/{sid}/send", {"text": "down via B\n"})
    assert (status, body) == (200, {"bytes": 11})
    assert dev.recv(64) == b"down via B\n"

    status, body = b.get(f"/api/sessions/{sid}/messages")
    assert status == 200, body
    assert [m["text"] for m in body["messages"]] == ["hello from a device on A\n", "down via B\n"]
    assert {m["session_id"] for m in body["messages"]} == {sid}

    status, body = b.put(f"/api/sessions/{sid}/link", {"link": "cat1"})
    assert status == 200, body
    assert body["id"] == sid and body["link"]["spec"].startswith("cat1")
    status, body = b.post(f"/api/sessions/{sid}/fault", {"fault": "outage", "seconds": 0.2})
    assert status == 200, body
    # Errors keep the single node's meaning: bad input 400, unknown session 404.
    assert b.post(f"/api/sessions/{sid}/send", {"text": ""})[0] == 400
    assert b.post("/api/sessions/a:999999/send", {"text": "x"})[0] == 404
    status, body = b.post("/api/sessions/nosuchnode:1/send", {"text": "x"})
    assert status == 404 and "nosuchnode" in body["error"]
    assert b.get("/api/sessions/a:b:c")[0] == 400

    status, body = b.post(f"/api/sessions/{sid}/close")
    assert (status, body) == (200, {"closed": True})
    status, body = b.get(f"/api/sessions/{sid}")
    assert status == 200 and body["end_reason"] == "closed_by_operator", body
    # A's own API, by bare id, tells the same story.
    local_id = int(sid.split(":")[1])
    status, body = a.get(f"/api/sessions/{local_id}")
    assert status == 200 and body["id"] == sid and body["end_reason"] == "closed_by_operator"
    assert b.post(f"/api/sessions/{sid}/send", {"text": "late"})[0] == 409


def test_broadcast_reaches_devices_of_three_nodes_and_pages_merge(node_factory, devices):
    """One broadcast through B reaches a device on each of A, B and C; the cluster listing
    pages newest first across nodes without gaps or repeats, and metrics name every node."""
    labs = [node_factory(n) for n in ("a", "b", "c")]
    a, b, c = labs
    for lab in labs:
        wait_until(f"{lab.node} sees a, b, c", lambda lab=lab: sees_nodes(lab, {"a", "b", "c"}))
    devs = [devices(lab.tcp_port) for lab in (a, b, c, a, c, b)]
    for dev in devs:
        dev.sendall(b"up\n")
    wait_until("six sessions", lambda: cluster_sessions(b)["total"] == 6)

    status, body = b.post("/api/broadcast", {"text": "to everyone\n"})
    assert status == 200, body
    assert (body["sessions"], body["bytes"], body["missing_nodes"]) == (6, 72, [])
    assert sorted(n["node"] for n in body["nodes"]) == ["a", "b", "c"]
    for dev in devs:
        assert recv_exactly(dev, 12) == b"to everyone\n"

    everything = cluster_sessions(b)["sessions"]
    started = [s["started_at_ms"] for s in everything]
    assert started == sorted(started, reverse=True)
    assert {s["node"] for s in everything} == {"a", "b", "c"}
    paged: list[str] = []
    for offset in range(0, 6, 4):
        status, page = b.get(f"/api/sessions?state=online&limit=4&offset={offset}")
        assert status == 200 and page["total"] == 6 and page["missing_nodes"] == []
        paged += [s["id"] for s in page["sessions"]]
    assert paged == [s["id"] for s in everything]
    assert b.get("/api/sessions?limit=1000&offset=1500")[0] == 400

    status, text = c.get("/metrics")
    assert status == 200
    for node in ("a", "b", "c"):
        assert f'socklab_cluster_node_up{{node="{node}"}} 1' in text
        assert f'socklab_cluster_sessions_online{{node="{node}"}} 2' in text


def run_socklab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SOCKLAB_BIN, "--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--quiet", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "url", ["127.0.0.1:4222", "http://127.0.0.1:4222", "nats://127.0.0.1", "nats://:4222", ""]
)
def test_bad_cluster_urls_are_refused_clearly(url, tmp_path):
    """A malformed --cluster URL stops socklab at once with a usage error naming the form."""
    done = run_socklab("--db", str(tmp_path / "x.db"), "--cluster", url)
    assert done.returncode == 2, done.stderr
    assert "nats://HOST:PORT" in done.stderr


def test_unreachable_nats_and_name_clash_are_refused_clearly(node_factory, nats, tmp_path):
    """No NATS at the URL, or a node name already in use: exit 1 with a clear message and
    the running node unharmed."""
    from cluster_support import free_port

    dead = f"nats://127.0.0.1:{free_port()}"
    done = run_socklab("--db", str(tmp_path / "x.db"), "--cluster", dead, "--node", "x")
    assert done.returncode == 1
    assert f"cannot connect to NATS at {dead}" in done.stderr

    a = node_factory("a")
    done = run_socklab("--db", str(tmp_path / "y.db"), "--cluster", nats.url, "--node", "a")
    assert done.returncode == 1
    assert 'node name "a" is already taken' in done.stderr and a.http_url[7:] in done.stderr
    done = run_socklab("--db", str(tmp_path / "z.db"), "--node", "a")
    assert done.returncode == 2 and "--cluster" in done.stderr
    assert sees_nodes(a, {"a"})
