"""`--cluster-view`: a node's console also prints the other nodes' events, each line
naming the node: a device on another node coming online, what it sends, and going
offline. Over a real nats-server and real socklab processes; the viewer's console output
is read as the user sees it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import cluster_support
from cluster_support import sees_nodes, wait_until
from conftest import SOCKLAB_BIN, spawn_logged, stop_process, wait_started

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory
devices = cluster_support.devices


def test_the_console_shows_other_nodes_devices(tmp_path: Path, nats, node_factory, devices):
    other = node_factory("other")
    out = tmp_path / "viewer.out"
    ready = tmp_path / "viewer.ready.json"
    cmd = [
        SOCKLAB_BIN,
        "--tcp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--db",
        str(tmp_path / "viewer.db"),
        "--ready-file",
        str(ready),
        "--cluster",
        nats.url,
        "--node",
        "viewer",
        "--cluster-view",
    ]
    proc = spawn_logged(cmd, out)

    def printed() -> str:
        return out.read_text(errors="replace")

    try:
        wait_started(proc, ready.exists, "socklab viewer", printed)
        wait_until("the other node sees the viewer", lambda: sees_nodes(other, {"other", "viewer"}))
        device = devices(other.tcp_port)
        wait_until("the online line", lambda: "[other] + other:" in printed())
        online = next(line for line in printed().splitlines() if "[other] + other:" in line)
        assert " online tcp 127.0.0.1:" in online, online
        # Data crosses once the viewer's watch has reached the other node: send until the
        # line shows (each send is a new message, so a late watch only costs a repeat).
        wait_until(
            "the data line",
            lambda: device.sendall(b"hello view\n") or 'bytes: "hello view\\n"' in printed(),
        )
        data = next(line for line in printed().splitlines() if "hello view" in line)
        assert data.startswith("[other] <- other:") and " 11 bytes: " in data, data
        device.shutdown(socket.SHUT_RDWR)
        device.close()
        wait_until("the offline line", lambda: "[other] - other:" in printed())
        offline = next(line for line in printed().splitlines() if "[other] - other:" in line)
        assert offline.endswith("offline (closed_by_device)"), offline
    finally:
        stop_process(proc, signal.SIGINT, "socklab viewer", printed)
