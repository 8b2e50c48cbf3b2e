"""socklab's SQLite history: a restart keeps sessions and messages, export writes JSON lines,
and the retention limit deletes the oldest closed sessions first."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import SOCKLAB_BIN

usocket = pytest.importorskip("usocket")


def test_restart_keeps_history_and_export(socklab, tcp_device):
    """Sessions and messages survive a restart; ids continue; export matches the API."""
    dev = tcp_device(socklab.tcp_port)
    dev.send(b"one\r\n")
    dev.send(b"\x00\x01two")
    sid = socklab.wait_session(lambda s: s["bytes_up"] == 10)["id"]
    dev.close()
    socklab.wait_session(lambda s: not s["online"])
    before = socklab.messages(sid)
    socklab.restart()
    assert socklab.messages(sid) == before
    _, s = socklab.get(f"/api/sessions/{sid}")
    assert (s["end_reason"], s["bytes_up"]) == ("closed_by_device", 10)
    tcp_device(socklab.tcp_port)
    assert socklab.wait_session(lambda s: s["online"])["id"] > sid

    out = subprocess.run(
        [SOCKLAB_BIN, "export", str(sid), "--format", "jsonl", "--db", str(socklab.db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert [json.loads(line) for line in out.splitlines()] == before
    assert "".join(m["hex"] for m in before) == b"one\r\n\x00\x01two".hex()


def test_export_errors_are_clear(socklab):
    """Unknown session or database: exit status 1 and a one-line message."""
    missing = subprocess.run(
        [SOCKLAB_BIN, "export", "424242", "--db", str(socklab.db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "no session 424242" in missing.stderr
    nodb = subprocess.run(
        [SOCKLAB_BIN, "export", "1", "--db", str(socklab.workdir / "nope" / "x.db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert nodb.returncode == 1 and "x.db" in nodb.stderr
    bad = subprocess.run([SOCKLAB_BIN, "export", "x"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "invalid value" in bad.stderr


def test_retention_deletes_oldest_closed_sessions(socklab_factory, tcp_device):
    """With --max-db-mb 1, eight 400 KiB sessions leave only the newest ones."""
    lab = socklab_factory(max_db_mb=1)
    ids = []
    for _ in range(8):
        dev = tcp_device(lab.tcp_port)
        dev.sendall(b"r" * 400 * 1024)
        dev.close()
        s = lab.wait_session(lambda s: not s["online"] and s["id"] not in ids, "session end")
        assert s["bytes_up"] == 400 * 1024
        ids.append(s["id"])
    kept = [s["id"] for s in lab.sessions()]
    assert ids[-1] in kept
    assert ids[0] not in kept and lab.get(f"/api/sessions/{ids[0]}")[0] == 404
    assert kept == sorted(kept, reverse=True) and kept == ids[-len(kept) :][::-1]
    assert len(kept) <= 3


def test_second_server_on_the_same_database_refuses(socklab):
    """A second socklab on a database in use exits with a clear message; the first runs on."""
    second = subprocess.run(
        [SOCKLAB_BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", str(socklab.db)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "in use by another socklab" in second.stderr and str(socklab.pid) in second.stderr
    assert socklab.get("/api/sessions")[0] == 200
    socklab.restart()  # the lock goes with the process
    assert socklab.get("/api/sessions")[0] == 200
