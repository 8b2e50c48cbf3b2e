"""A broadcast's deliveries as another node's event stream shows them: node B's
/api/events accounts for every device of node A the broadcast reached, each either as its
own data event or inside a `deliveries` line (how a node sends many deliveries of one
payload at once), with the payload and the message ids A's history has."""

from __future__ import annotations

import json
import threading
import urllib.request

import cluster_support
from cluster_support import cluster_sessions, sees_nodes, wait_until
from conftest import recv_exactly

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory
devices = cluster_support.devices

DEVICES = 48
PAYLOAD = b"to every device\n"


class Deliveries(threading.Thread):
    """Reads a node's /api/events; keeps, per global session id, the message id and text of
    each down delivery of another node, from data events and `deliveries` lines."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.resp = urllib.request.urlopen(url + "/api/events", timeout=60)
        self.seen: dict[str, tuple[int, str]] = {}
        self.grouped = 0
        self.start()

    def run(self) -> None:
        try:
            for raw in self.resp:
                line = raw.decode(errors="replace").strip()
                if not line.startswith("data: "):
                    continue
                ev = json.loads(line[6:])
                if ev.get("type") == "data" and ev["message"]["direction"] == "down":
                    m = ev["message"]
                    self.seen[m["session_id"]] = (m["id"], m["text"])
                elif ev.get("type") == "deliveries":
                    assert ev["count"] == len(ev["deliveries"])
                    self.grouped += ev["count"]
                    for sid, mid, _ts in ev["deliveries"]:
                        self.seen[sid] = (mid, ev["message"]["text"])
        except (OSError, ValueError, AttributeError):
            return  # closed by the test

    def close(self) -> None:
        self.resp.close()
        self.join(timeout=10)


def test_every_delivery_of_a_broadcast_reaches_another_nodes_stream(node_factory, devices):
    """A broadcast through A to 48 devices on A: each device gets the payload, and B's
    event stream names each of A's sessions with A's message id and the payload."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    socks = [devices(a.tcp_port) for _ in range(DEVICES)]
    wait_until("a's devices on b", lambda: cluster_sessions(b)["total"] == DEVICES)
    stream = Deliveries(b.http_url)
    try:
        status, body = a.post("/api/broadcast", {"text": PAYLOAD.decode()})
        assert status == 200 and body["sessions"] == DEVICES, body
        for sock in socks:
            assert recv_exactly(sock, len(PAYLOAD)) == PAYLOAD
        wait_until("every delivery on b's stream", lambda: len(stream.seen) == DEVICES)
    finally:
        stream.close()
    # What B was told matches A's own history, device by device.
    for sid, (message_id, text) in stream.seen.items():
        assert sid.startswith("a:") and text == PAYLOAD.decode()
        status, history = a.get(f"/api/sessions/{sid}/messages")
        assert status == 200, history
        downs = [m for m in history["messages"] if m["direction"] == "down"]
        assert len(downs) == 1, (sid, history)
        (down,) = downs
        assert (down["id"], down["text"]) == (message_id, text)
