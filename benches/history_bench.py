"""Searching and exporting a large socklab history.

Builds a database of N stored messages (default 1,000,000: 2,000 sessions, payloads of 20 to
200 bytes, a few with an IMEI), starts socklab on it, and measures:

* search: GET /api/messages for text, hex, regex, one session, a time range, against a
  baseline run side by side: the same scan done directly with SQLite (python's sqlite3,
  `SELECT COUNT(*) ... WHERE instr(data, ?)`), so the ratio is the API's cost on top of
  the database scan;
* export: `socklab export --all` per format in MB/s of payload, against reading every
  payload from SQLite directly (python's sqlite3) as the baseline.

    python benches/history_bench.py [--messages N] [--rounds R]

Loopback only; everything it starts stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _socklab_bench_util import http, install_cleanup, launch_socklab, machine_line, table

REPO = Path(__file__).resolve().parents[1]
SOCKLAB = os.environ.get("SOCKLAB_BIN", str(REPO / "target" / "release" / "socklab"))


def build_history(tmp: Path, messages: int) -> tuple[Path, int, int]:
    """A socklab database with `messages` stored messages: (path, payload bytes, t0 ms)."""
    child, _ = launch_socklab(SOCKLAB, tmp, "history")  # creates the schema
    child.proc.terminate()
    child.proc.wait(timeout=30)
    db = tmp / "history.db"
    rng = random.Random(7)
    sessions = 2000
    t0 = int(time.time() * 1000) - messages  # one message per ms, ending now
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.executemany(
        "INSERT INTO sessions (id, listener_id, proto, peer, local, started_ms, ended_ms, end_reason) "
        "VALUES (?, 0, ?, ?, '127.0.0.1:34187', ?, ?, 'closed_by_device')",
        [
            (s, "tcp" if s % 4 else "udp", f"127.0.0.1:{20000 + s}", t0, t0 + messages)
            for s in range(1, sessions + 1)
        ],
    )
    words = [b"temp=", b"hum=", b"status ok", b"ping", b"GET /cfg", b"\x00\x01\x02", b"ack"]
    total = 0
    batch = []
    for i in range(messages):
        body = b" ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))[:200]
        if i % 10_000 == 0:
            body = b"IMEI 8612340%08d" % i
        total += len(body)
        batch.append((i + 1, 1 + i % sessions, t0 + i, i % 3 == 0, body))
        if len(batch) == 50_000:
            con.executemany(
                "INSERT INTO messages (id, session_id, ts_ms, direction, data) VALUES (?, ?, ?, ?, ?)",
                batch,
            )
            batch = []
    if batch:
        con.executemany(
            "INSERT INTO messages (id, session_id, ts_ms, direction, data) VALUES (?, ?, ?, ?, ?)",
            batch,
        )
    con.commit()
    con.close()
    return db, total, t0


def best(fn, rounds: int) -> tuple[float, object]:
    """Best wall time of `rounds` runs of fn, and its last result."""
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    install_cleanup()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="history-bench-") as d:
        tmp = Path(d)
        t = time.perf_counter()
        db, payload, t0 = build_history(tmp, args.messages)
        print(
            f"history: {args.messages:,} messages, {payload / 1e6:.1f} MB of payload, "
            f"{db.stat().st_size / 1e6:.0f} MB database (built in {time.perf_counter() - t:.1f} s)\n"
        )
        (tmp / "history.ready.json").unlink(missing_ok=True)  # the schema run's
        child, info = launch_socklab(SOCKLAB, tmp, "history")
        base = "http://" + info["http"]
        direct = sqlite3.connect(db)
        mid = t0 + args.messages // 2
        cases = [
            (
                "text q=IMEI",
                "q=IMEI",
                "SELECT COUNT(*) FROM messages WHERE instr(data, ?) > 0",
                (b"IMEI",),
            ),
            (
                "hex=000102",
                "hex=000102",
                "SELECT COUNT(*) FROM messages WHERE instr(data, ?) > 0",
                (b"\x00\x01\x02",),
            ),
            (
                "regex IMEI \\d{15}",
                "regex=" + urllib.parse.quote(r"IMEI \d{15}"),
                "SELECT COUNT(*) FROM messages WHERE instr(data, ?) > 0",
                (b"IMEI ",),
            ),
            (
                "one session, q=ack",
                "session=17&q=ack",
                "SELECT COUNT(*) FROM messages WHERE session_id = 17 AND instr(data, ?) > 0",
                (b"ack",),
            ),
            (
                "last 10% by time, q=ping",
                f"since_ms={t0 + args.messages * 9 // 10}&q=ping",
                "SELECT COUNT(*) FROM messages WHERE ts_ms >= ? AND instr(data, ?) > 0",
                (t0 + args.messages * 9 // 10, b"ping"),
            ),
            (
                "direction=down, q=temp",
                "direction=down&q=temp",
                "SELECT COUNT(*) FROM messages WHERE direction = 1 AND instr(data, ?) > 0",
                (b"temp",),
            ),
        ]
        rows = []
        for name, query, sql, params in cases:
            api_s, r = best(
                lambda q=query: http("GET", f"{base}/api/messages?limit=100&{q}", timeout=300),
                args.rounds,
            )
            base_s, n = best(
                lambda s=sql, p=params: direct.execute(s, p).fetchone()[0], args.rounds
            )
            rows.append((name, r["total"], n, api_s * 1000, base_s * 1000, api_s / base_s))
        del mid
        print(
            table(
                f"Search over {args.messages:,} stored messages (best of {args.rounds})",
                ["search", "matches", "sqlite matches", "socklab ms", "sqlite ms", "x sqlite"],
                rows,
            )
        )
        print()
        child.proc.terminate()
        child.proc.wait(timeout=30)

        base_s, got = best(
            lambda: sum(len(r[0]) for r in direct.execute("SELECT data FROM messages")), args.rounds
        )
        assert got == payload
        rows = [("sqlite read (baseline)", got / 1e6, base_s, payload / 1e6 / base_s, 1.0)]
        for fmt_ in ("jsonl", "csv", "raw", "pcapng"):

            def run(f=fmt_):
                out = subprocess.run(
                    [SOCKLAB, "export", "--all", "--format", f, "--db", str(db)],
                    capture_output=True,
                    timeout=600,
                    check=True,
                )
                return len(out.stdout)

            secs, size = best(run, args.rounds)
            rows.append(
                (
                    fmt_,
                    size / 1e6,
                    secs,
                    payload / 1e6 / secs,
                    (payload / 1e6 / secs) / (payload / 1e6 / base_s),
                )
            )
        print(
            table(
                f"Export of all {args.messages:,} messages (best of {args.rounds}); MB/s of payload exported",
                ["format", "output MB", "seconds", "payload MB/s", "x sqlite read"],
                rows,
            )
        )
        direct.close()
    print("\n" + json.dumps({"messages": args.messages}))


if __name__ == "__main__":
    main()
