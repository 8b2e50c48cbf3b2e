"""A cluster over TLS to NATS with a token, and over NATS with a user and password:
nats-server runs with certificates generated here (trustme) and its own authorization, the
nodes join with --cluster-ca / --cluster-token (or credentials in the URL), and a wrong
token, a missing CA or a wrong password stops socklab with a clear error.
(Credentials files, --cluster-creds: test_cluster_creds.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import cluster_support
import pytest
import trustme
from cluster_support import (
    NATS_SERVER,
    Nats,
    cluster_sessions,
    sees_nodes,
    wait_until,
)
from conftest import recv_exactly
from test_cluster import run_socklab

devices = cluster_support.devices  # fixture

TOKEN = "t0ken-for-this-test"

pytestmark = pytest.mark.skipif(
    not os.path.exists(NATS_SERVER) and not os.environ.get("CI"),
    reason="nats-server not installed (scripts/install-system-deps.sh installs it)",
)


@pytest.fixture
def tls_nats(tmp_path: Path):
    """nats-server with TLS (a fresh CA's certificate for 127.0.0.1) and a token."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    conf = tmp_path / "nats-tls.conf"
    conf.write_text(
        f'tls {{\n  cert_file: "{tmp_path / "server.pem"}"\n'
        f'  key_file: "{tmp_path / "server.key"}"\n}}\n'
        f'authorization {{\n  token: "{TOKEN}"\n}}\n'
    )
    server = Nats(tmp_path, conf)
    server.url = f"tls://127.0.0.1:{server.port}"
    server.ca = ca_pem  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_tls_and_token_join_and_carry_operator_actions(tls_nats, socklab_factory, devices):
    """Two nodes join over TLS with the token: B lists A's device and sends to it."""
    ca = str(tls_nats.ca)
    join = {"cluster": tls_nats.url, "cluster_ca": ca, "cluster_token": TOKEN}
    a = socklab_factory(node="a", **join)
    b = socklab_factory(node="b", **join)
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev = devices(a.tcp_port)
    sid = wait_until(
        "a's device on b",
        lambda: next((s["id"] for s in cluster_sessions(b)["sessions"] if s["node"] == "a"), None),
    )
    assert b.post(f"/api/sessions/{sid}/send", {"text": "over TLS\n"}) == (200, {"bytes": 9})
    assert recv_exactly(dev, 9) == b"over TLS\n"


def test_wrong_token_or_missing_ca_is_refused_clearly(tls_nats, tmp_path):
    """A wrong token names the authorization failure; without the CA the TLS failure."""
    base = ["--cluster", tls_nats.url, "--node", "x"]
    done = run_socklab(
        "--db", str(tmp_path / "x.db"), *base,
        "--cluster-ca", str(tls_nats.ca), "--cluster-token", "wrong",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"cannot connect to NATS at {tls_nats.url}" in done.stderr
    assert "authorization" in done.stderr.lower(), done.stderr
    done = run_socklab("--db", str(tmp_path / "y.db"), *base, "--cluster-token", TOKEN)
    assert done.returncode == 1, done.stderr
    assert f"cannot connect to NATS at {tls_nats.url}" in done.stderr
    assert "certificate" in done.stderr.lower() or "tls" in done.stderr.lower(), done.stderr


def test_user_and_password_in_the_url(tmp_path, socklab_factory):
    """nats-server wanting a user and password: they go in the URL; a wrong one is refused
    with the server's reason."""
    conf = tmp_path / "nats-users.conf"
    conf.write_text('authorization {\n  user: "lab"\n  password: "pa55 w@rd"\n}\n')
    server = Nats(tmp_path, conf)
    try:
        good = f"nats://lab:pa55%20w%40rd@127.0.0.1:{server.port}"
        a = socklab_factory(cluster=good, node="a")
        wait_until("a joined", lambda: sees_nodes(a, {"a"}))
        bad = f"nats://lab:nope@127.0.0.1:{server.port}"
        done = run_socklab("--db", str(tmp_path / "x.db"), "--cluster", bad, "--node", "x")
        assert done.returncode == 1, done.stderr
        assert "cannot connect to NATS" in done.stderr
        assert "authorization" in done.stderr.lower(), done.stderr
        assert "pa55" not in done.stderr and "nope" not in done.stderr
    finally:
        server.stop()
