"""A stalled store and UDP: while another connection holds the database's write lock, one
peer floods a UDP socket and another sends a few datagrams. The flooding peer's overflow is
refused and counted, the other peer's datagrams are all stored and echoed, and every
datagram sent is either stored or counted: none vanishes in the kernel because socklab
stopped reading."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest

FLOOD = 700
FLOOD_SIZE = 1000


def unstored(lab) -> int:
    """socklab's count of datagrams it received and could not store."""
    status, text = lab.get("/metrics")
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith("socklab_udp_unstored_datagrams_total"):
            return int(line.split()[-1])
    raise AssertionError(f"no unstored metric in:\n{text}")


def up_messages(db_path, port: int) -> list[bytes]:
    """Data stored as sent up by the peer on `port`, oldest first."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT m.data FROM messages m JOIN sessions s ON s.id = m.session_id"
            " WHERE s.peer = ? AND m.direction = 0 AND m.dropped = 0 ORDER BY m.id",
            (f"127.0.0.1:{port}",),
        ).fetchall()
    finally:
        db.close()
    return [bytes(r[0]) for r in rows]


@pytest.mark.timeout(120)
def test_a_flooding_peer_under_a_stalled_store_costs_other_peers_nothing(socklab_factory):
    lab = socklab_factory(echo=True)
    server = ("127.0.0.1", lab.udp_port)
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.bind(("127.0.0.1", 0))
    quiet.bind(("127.0.0.1", 0))
    quiet.settimeout(30)
    flood_port, quiet_port = flooder.getsockname()[1], quiet.getsockname()[1]
    try:
        quiet.sendto(b"q-0", server)
        assert quiet.recvfrom(64)[0] == b"q-0"
        lab.wait_for("q-0 stored", lambda: up_messages(lab.db, quiet_port) == [b"q-0"])

        blocker = sqlite3.connect(lab.db, timeout=30, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            for i in range(FLOOD):
                flooder.sendto(i.to_bytes(4, "big") * (FLOOD_SIZE // 4), server)
                if i % 10 == 9:
                    time.sleep(0.002)  # keep within the kernel's receive buffer
            lab.wait_for("the flooder's overflow to be refused", lambda: unstored(lab) > 0)
            for i in range(1, 6):
                quiet.sendto(f"q-{i}".encode(), server)
            # Nothing can be stored while the lock is held.
            assert up_messages(lab.db, quiet_port) == [b"q-0"]
        finally:
            blocker.execute("COMMIT")
            blocker.close()

        echoes = [quiet.recvfrom(64)[0] for _ in range(5)]
        assert echoes == [f"q-{i}".encode() for i in range(1, 6)]
        refused = unstored(lab)
        assert lab.stop() == 0
    finally:
        flooder.close()
        quiet.close()

    assert up_messages(lab.db, quiet_port) == [f"q-{i}".encode() for i in range(6)]
    flood = up_messages(lab.db, flood_port)
    assert refused > 0
    assert len(flood) + refused == FLOOD, (len(flood), refused)
    # What was stored is what was sent, in order, with the refused ones missing.
    seqs = [int.from_bytes(m[:4], "big") for m in flood]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(m == m[:4] * (FLOOD_SIZE // 4) for m in flood)
