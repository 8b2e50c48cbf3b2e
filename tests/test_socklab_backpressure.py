"""Back-pressure: a usocket device sends 200 MiB as fast as it can. socklab's memory stays
bounded (it stops reading while the store catches up, instead of buffering) and every byte
ends up in the database."""

from __future__ import annotations

import sqlite3
import threading

import pytest

usocket = pytest.importorskip("usocket")

TOTAL = 200 * 1024 * 1024
CHUNK = 1024 * 1024
# socklab holds at most its store queue (512 reads of 16 KiB) plus SQLite's cache; far below
# the 200 MiB it receives.
MAX_RSS_GROWTH = 96 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(180)
def test_200_mib_upload_is_stored_with_bounded_memory(socklab, tcp_device):
    """All 200 MiB are stored and socklab's RSS grows by far less than that."""
    baseline = rss_bytes(socklab.pid)
    dev = tcp_device(socklab.tcp_port)
    block = bytes(range(256)) * (CHUNK // 256)
    errors: list[OSError] = []

    def upload() -> None:
        try:
            for _ in range(TOTAL // CHUNK):
                dev.sendall(block)
            dev.close()
        except OSError as err:  # reported by the main thread
            errors.append(err)

    sender = threading.Thread(target=upload)
    sender.start()
    peak = baseline
    while sender.is_alive():
        peak = max(peak, rss_bytes(socklab.pid))
        sender.join(0.02)
    assert not errors, errors
    s = socklab.wait_session(lambda s: not s["online"], "the upload's end", timeout=120)
    peak = max(peak, rss_bytes(socklab.pid))
    assert (s["end_reason"], s["bytes_up"]) == ("closed_by_device", TOTAL)
    growth = peak - baseline
    print(f"socklab RSS: baseline {baseline >> 20} MiB, peak {peak >> 20} MiB")
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth >> 20} MiB"

    db = sqlite3.connect(f"file:{socklab.db}?mode=ro", uri=True)
    try:
        stored, first = db.execute(
            "SELECT SUM(LENGTH(data)), (SELECT data FROM messages WHERE session_id = ?1"
            " ORDER BY id LIMIT 1) FROM messages WHERE session_id = ?1",
            (s["id"],),
        ).fetchone()
    finally:
        db.close()
    assert stored == TOTAL
    assert first == block[: len(first)]
