"""Schema-driven fuzzing of a cluster node: schemathesis reads the OpenAPI document node B
serves (global session ids, cluster listings and broadcasts) and sends requests generated
from it to B while a device is online on node A and on B. As for a single node: every
schema-valid request is accepted (2xx, or 404/409 for a session that does not exist or is
offline), no answer is a server error, and every answer matches the documented statuses,
content types and schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cluster_support
from cluster_support import cluster_sessions, sees_nodes, wait_until

nats = cluster_support.nats  # fixtures
node_factory = cluster_support.node_factory
devices = cluster_support.devices

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_cluster_openapi_document_holds_under_fuzzing(node_factory, devices, tmp_path):
    """No schema-valid request to a cluster node is rejected, no 5xx, every response as
    its document says, for the cluster's own routes and those that stay local."""
    a = node_factory("a")
    b = node_factory("b")
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    for lab in (a, b):
        devices(lab.tcp_port).sendall(b"hello from a device\r\n")
    wait_until("both devices listed on b", lambda: cluster_sessions(b)["total"] >= 2)
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            b.http_url + "/api/openapi.json",
            "--mode",
            "positive",
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--seed",
            "1",
            "--exclude-path",
            "/api/events",  # a stream that never ends by itself
            "--exclude-tag",
            "opens-sockets",  # client mode and run-time listeners: never fuzzed
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
