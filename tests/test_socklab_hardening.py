"""socklab's edges against a real process: the database lock under other names, token
strength, the ready file's mode, `export | head`, and slow HTTP clients that must not take
the API or device accepts down."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import cluster_support
import conftest
import pytest
from conftest import SOCKLAB_BIN

nats = cluster_support.nats  # fixtures for the cluster test
node_factory = cluster_support.node_factory
devices = cluster_support.devices


def run_socklab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs socklab with loopback listeners and the given flags; for flags that must make
    it refuse to start, so it is expected to exit by itself."""
    return subprocess.run(
        [SOCKLAB_BIN, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--quiet", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_database_lock_covers_other_names(socklab, tmp_path, link):
    """A symlink or a hard link to a database in use names the same database: refused."""
    other = tmp_path / f"via-{link}.db"
    if link == "symlink":
        other.symlink_to(socklab.db)
    else:
        os.link(socklab.db, other)
    second = run_socklab(tmp_path, "--http", "127.0.0.1:0", "--db", str(other))
    assert second.returncode == 1, second.stderr
    assert "in use by another socklab" in second.stderr
    assert str(socklab.pid) in second.stderr
    assert socklab.get("/api/sessions")[0] == 200


@pytest.mark.parametrize(
    ("http", "token", "expect"),
    [
        ("0.0.0.0:0", "", "blank"),
        ("0.0.0.0:0", " ", "blank"),
        ("0.0.0.0:0", "x", "at least 16"),
        ("0.0.0.0:0", "0123456789abcde", "at least 16"),
        ("127.0.0.1:0", "", "blank"),
    ],
)
def test_weak_tokens_are_refused(tmp_path, http, token, expect):
    """A blank token, or a short one on a non-loopback address, stops socklab at start with
    a message that says why (nothing is bound: the check comes first)."""
    result = run_socklab(tmp_path, "--http", http, "--db", str(tmp_path / "db"), "--token", token)
    assert result.returncode == 1
    assert expect in result.stderr and "--token" in result.stderr, result.stderr


def test_short_token_on_loopback_warns(socklab_factory):
    """On loopback a short token is allowed, with a warning, and is enforced."""
    lab = socklab_factory(token="abc")
    assert lab.token == "abc"
    assert lab.get("/api/sessions", token=None)[0] == 401
    assert lab.get("/api/sessions")[0] == 200
    assert "only 3 characters" in lab.log()


def test_ready_file_is_private(socklab_factory):
    """The ready file holds the token: only its owner may read it."""
    lab = socklab_factory(token="0123456789abcdef")
    mode = stat.S_IMODE(lab.ready_file.stat().st_mode)
    assert mode == 0o600, oct(mode)


def test_export_into_a_closed_pipe_ends_quietly(socklab):
    """`socklab export ID | head` ends without an error once the reader has gone."""
    data = bytes(range(256)) * 1024
    with socket.create_connection(("127.0.0.1", socklab.tcp_port), timeout=10) as dev:
        dev.sendall(data)
        session = socklab.wait_session(lambda s: s["bytes_up"] == len(data), "all data")
    socklab.messages(session["id"])  # committed: export reads the file
    export = subprocess.Popen(
        [SOCKLAB_BIN, "export", str(session["id"]), "--db", str(socklab.db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    assert export.stdout.read(100)
    export.stdout.close()  # like `head` exiting: the rest of the output has nowhere to go
    assert export.wait(timeout=60) == 0
    assert export.stderr.read() == b""
    export.stderr.close()


def test_slow_http_clients_cannot_take_down_devices_or_the_api(socklab_factory, tmp_path):
    """Many more unfinished HTTP requests than there are descriptors: socklab keeps at most
    its HTTP connection cap open, a device still connects and is recorded, and the API
    still answers."""
    fd_limit = 128
    wrapper = tmp_path / "socklab-low-fd-limit"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {fd_limit}\nexec "{SOCKLAB_BIN}" "$@"\n')
    wrapper.chmod(0o755)
    mp = pytest.MonkeyPatch()
    mp.setattr(conftest, "SOCKLAB_BIN", str(wrapper))
    try:
        lab = socklab_factory(http_max_connections=8, http_header_timeout=60)
    finally:
        mp.undo()
    host, port = lab.http_url.removeprefix("http://").rsplit(":", 1)
    slow: list[socket.socket] = []
    try:
        for _ in range(fd_limit + 40):
            conn = socket.create_connection((host, int(port)), timeout=10)
            conn.sendall(b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(conn)
        with socket.create_connection(("127.0.0.1", lab.tcp_port), timeout=10) as dev:
            dev.sendall(b"still here")
            session = lab.wait_session(lambda s: s["bytes_up"] == 10, "the device's data")
        assert session["msgs_up"] >= 1
        status, body = lab.get("/metrics")
        assert status == 200
        open_now = next(
            int(line.split()[1])
            for line in body.splitlines()
            if line.startswith("socklab_http_connections ")
        )
        assert open_now <= 8
    finally:
        for conn in slow:
            conn.close()


def test_connection_cap_refuses_with_json_when_all_are_busy(socklab_factory):
    """At the cap with every connection busy (event streams), a new request gets 503 with
    the JSON error body instead of waiting."""
    lab = socklab_factory(http_max_connections=2)
    host, port = lab.http_url.removeprefix("http://").rsplit(":", 1)
    streams = []
    try:
        for _ in range(2):
            conn = socket.create_connection((host, int(port)), timeout=10)
            conn.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert conn.recv(12) == b"HTTP/1.1 200"
            streams.append(conn)
        deadline = time.monotonic() + 20
        status, body = lab.get("/api/sessions")
        while status != 503 and time.monotonic() < deadline:
            status, body = lab.get("/api/sessions")
        assert status == 503
        assert "too many HTTP connections" in body["error"]
    finally:
        for conn in streams:
            conn.close()


def test_cluster_ids_and_errors_have_the_api_shape(node_factory, devices):
    """On a cluster node, global `NODE:ID` ids reach the session, bad ids and ids out of
    range answer 400, and a wrong method 405, all with the JSON error body."""
    a = node_factory("a")
    devices(a.tcp_port)
    online = cluster_support.wait_until(
        "the device online", lambda: cluster_support.cluster_sessions(a)["sessions"]
    )
    sid = online[0]["id"]
    assert isinstance(sid, str) and sid.startswith("a:"), online[0]
    status, body = a.get(f"/api/sessions/{sid}")
    assert (status, body["id"]) == (200, sid)
    local = sid.split(":", 1)[1]
    status, body = a.get(f"/api/sessions/{local}")
    assert (status, body["id"]) == (200, sid)
    for bad in ["a:x", "a:-1", "nope", "a:9223372036854775808", ":1"]:
        status, body = a.get(f"/api/sessions/{bad}")
        assert status == 400 and "invalid session id" in body["error"], (bad, status, body)
    status, body = a.request("PATCH", f"/api/sessions/{sid}")
    assert status == 405 and "not allowed" in body["error"], body
    status, body = a.request("DELETE", f"/api/sessions/{sid}")
    assert status == 409 and "is online" in body["error"], body
