"""A cluster joined with NATS credentials files (--cluster-creds): nats-server runs in
operator mode (an operator, a system account and an account for socklab, JWTs signed here
with NKeys, a memory resolver), each node presents its own user's `.creds` file, and a
missing, malformed, unknown or absent credentials file stops socklab with a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import cluster_support
import pytest
from cluster_support import NATS_SERVER, Nats, cluster_sessions, sees_nodes, wait_until
from conftest import recv_exactly
from nats_jwt import Operator, operator_config, write_creds
from test_cluster import run_socklab

devices = cluster_support.devices  # fixture

pytestmark = pytest.mark.skipif(
    not os.path.exists(NATS_SERVER) and not os.environ.get("CI"),
    reason="nats-server not installed (scripts/install-system-deps.sh installs it)",
)


@pytest.fixture
def operator_nats(tmp_path: Path):
    """nats-server in operator mode; `.creds(name)` writes a new user's credentials file."""
    operator = Operator.new()
    system, lab = operator.account("SYS"), operator.account("socklab")
    server = Nats(tmp_path, operator_config(tmp_path / "nats-op.conf", operator, system, lab))

    def creds(name: str, account=lab) -> Path:
        user, user_jwt = account.user(name)
        return write_creds(tmp_path / f"{name}.creds", user, user_jwt)

    server.creds = creds  # type: ignore[attr-defined]
    server.operator = operator  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_nodes_join_with_creds_and_carry_operator_actions(operator_nats, socklab_factory, devices):
    """Two nodes, each with its own user's credentials, form one cluster: B lists A's
    device with its global id, sends to it and reads its history."""
    a = socklab_factory(cluster=operator_nats.url, node="a", cluster_creds=operator_nats.creds("a"))
    b = socklab_factory(cluster=operator_nats.url, node="b", cluster_creds=operator_nats.creds("b"))
    wait_until("b sees a", lambda: sees_nodes(b, {"a", "b"}))
    dev = devices(a.tcp_port)
    dev.sendall(b"up with creds\n")
    sid = wait_until(
        "a's device on b",
        lambda: next((s["id"] for s in cluster_sessions(b)["sessions"] if s["node"] == "a"), None),
    )
    assert sid.startswith("a:")
    assert b.post(f"/api/sessions/{sid}/send", {"text": "via creds\n"}) == (200, {"bytes": 10})
    assert recv_exactly(dev, 10) == b"via creds\n"
    status, body = b.get(f"/api/sessions/{sid}/messages")
    assert status == 200, body
    assert [m["text"] for m in body["messages"]] == ["up with creds\n", "via creds\n"]


def test_bad_or_missing_creds_are_refused_clearly(operator_nats, tmp_path):
    """No credentials, a missing file, a file that is not credentials, and a user of an
    account the server does not know: each stops socklab (exit 1) naming the NATS URL and
    the reason, and never prints the seed."""
    url = operator_nats.url
    base = ["--cluster", url, "--node", "x"]

    def refused(*extra: str, db: str) -> str:
        done = run_socklab("--db", str(tmp_path / db), *base, *extra)
        assert done.returncode == 1, done.stderr
        assert f"cannot connect to NATS at {url}" in done.stderr, done.stderr
        return done.stderr

    # The server wants a user JWT: without one it refuses the connection.
    assert "authorization" in refused(db="none.db").lower()

    missing = tmp_path / "nope.creds"
    err = refused("--cluster-creds", str(missing), db="missing.db")
    assert f"credentials file {missing}" in err, err

    garbage = tmp_path / "garbage.creds"
    garbage.write_text("this is not a NATS credentials file\n")
    err = refused("--cluster-creds", str(garbage), db="garbage.db")
    assert f"credentials file {garbage}" in err, err

    # A user signed by an account this server was never told about.
    stranger = operator_nats.operator.account("stranger")
    creds = operator_nats.creds("stranger", account=stranger)
    err = refused("--cluster-creds", str(creds), db="stranger.db")
    assert "authorization" in err.lower(), err
    seed = next(line for line in creds.read_text().splitlines() if line.startswith("SU"))
    assert seed not in err
