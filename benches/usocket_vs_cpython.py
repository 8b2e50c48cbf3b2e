"""usocket vs CPython's socket module: the same workloads, side by side, in one run.

    python benches/usocket_vs_cpython.py [--quick]

Workloads (each against the same loopback peer, a separate process using CPython sockets):

* round trips: 64-byte request, 64-byte response (per-call overhead);
* bulk: 256 MiB from the peer, read with ``recv(65536)`` (throughput);
* readline: 1 million short lines, usocket's ``readline()`` vs CPython's
  ``makefile('rb').readline``.

Each workload runs alternately for both modules and keeps the best of several repetitions,
for the wall time and, separately, for this (client) process's CPU time, which stays steady
on a busy machine where wall times swing with the scheduler. Ratios are usocket relative to
CPython: for times, CPython time / usocket time (above 1.00 means usocket is faster); for
throughput, usocket / CPython. Target: every ratio at least 1.10 (a miss is marked MISS).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

import usocket
from _vs_cpython import Row, Stopwatch, best_of, print_table

#: Every ratio should reach this (usocket at least 10 % faster than CPython).
TARGET = 1.10

PEER = r"""
import socket, sys, threading
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", 0))
lst.listen(16)
print(lst.getsockname()[1], flush=True)
LINE_CACHE = {}

def lines(n):
    if n not in LINE_CACHE:
        LINE_CACHE[n] = b"".join(b"line %07d\n" % i for i in range(n))
    return LINE_CACHE[n]

def serve(conn):
    f = conn.makefile("rb")
    cmd = f.readline().split()
    if cmd[0] == b"echo":
        size = int(cmd[1])
        while True:
            data = f.read(size)
            if len(data) < size:
                break
            conn.sendall(data)
    elif cmd[0] == b"bulk":
        left = int(cmd[1])
        chunk = memoryview(bytes(1 << 20))
        while left > 0:
            n = min(left, len(chunk))
            conn.sendall(chunk[:n])
            left -= n
        f.read(1)
    elif cmd[0] == b"lines":
        conn.sendall(lines(int(cmd[1])))
        f.read(1)
    conn.close()

while True:
    c, _ = lst.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def connect(module, port):
    s = module.socket(module.AF_INET, module.SOCK_STREAM)
    s.connect(("127.0.0.1", port))
    if module is socket:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        with socket.socket(fileno=os.dup(s.fileno())) as view:
            view.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def round_trips(module, port, count):
    s = connect(module, port)
    s.sendall(b"echo 64\n")
    msg = b"x" * 64
    clock = Stopwatch()
    for _ in range(count):
        s.sendall(msg)
        got = s.recv(64)
        while len(got) < 64:
            got += s.recv(64 - len(got))
    times = clock.stop()
    s.close()
    return times


def bulk(module, port, total):
    s = connect(module, port)
    s.sendall(b"bulk %d\n" % total)
    got = 0
    recv = s.recv
    clock = Stopwatch()
    while got < total:
        got += len(recv(65536))
    times = clock.stop()
    s.close()
    return times


def readlines(module, port, count):
    s = connect(module, port)
    s.sendall(b"lines %d\n" % count)
    reader = s.makefile("rb") if module is socket else s
    readline = reader.readline
    clock = Stopwatch()
    for _ in range(count):
        line = readline()
    times = clock.stop()
    assert line == b"line %07d\n" % (count - 1), line
    if reader is not s:
        reader.close()
    s.close()
    return times


def best(fn, port, arg, reps):
    """Best wall time and best client CPU time for each module, alternating runs so drift
    affects both alike: ((CPython wall, usocket wall), (CPython CPU, usocket CPU))."""
    got = best_of(reps, {"c": lambda: fn(socket, port, arg), "u": lambda: fn(usocket, port, arg)})
    return (got["c"][0], got["u"][0]), (got["c"][1], got["u"][1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a few seconds)")
    opts = ap.parse_args()
    trips, mib, lines, reps = (5_000, 64, 200_000, 3) if opts.quick else (50_000, 256, 1_000_000, 5)

    peer = subprocess.Popen([sys.executable, "-c", PEER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(peer.stdout.readline())
        for module in (socket, usocket):  # warm up the peer and both code paths
            round_trips(module, port, 1000)
            readlines(module, port, 1000)
        rows = []
        (c, u), (cc, uc) = best(round_trips, port, trips, reps)
        rows.append(
            Row(
                f"round trip 64 B (x{trips})",
                f"{c / trips * 1e6:.1f} us",
                f"{u / trips * 1e6:.1f} us",
                c / u,
                TARGET,
            )
        )
        rows.append(
            Row(
                "  client CPU per round trip",
                f"{cc / trips * 1e6:.1f} us",
                f"{uc / trips * 1e6:.1f} us",
                cc / uc,
                TARGET,
            )
        )
        total = mib << 20
        (c, u), (cc, uc) = best(bulk, port, total, reps)
        rows.append(
            Row(
                f"bulk {mib} MiB, recv(65536)",
                f"{total / c / 2**20:.0f} MiB/s",
                f"{total / u / 2**20:.0f} MiB/s",
                c / u,
                TARGET,
            )
        )
        rows.append(
            Row(
                "  client CPU per MiB",
                f"{cc / mib * 1e3:.3f} ms",
                f"{uc / mib * 1e3:.3f} ms",
                cc / uc,
                TARGET,
            )
        )
        (c, u), (cc, uc) = best(readlines, port, lines, reps)
        rows.append(
            Row(
                f"readline x{lines:,}",
                f"{c / lines * 1e9:.0f} ns/line",
                f"{u / lines * 1e9:.0f} ns/line",
                c / u,
                TARGET,
            )
        )
        rows.append(
            Row(
                "  client CPU per line",
                f"{cc / lines * 1e9:.0f} ns",
                f"{uc / lines * 1e9:.0f} ns",
                cc / uc,
                TARGET,
            )
        )
    finally:
        peer.kill()
        peer.wait()

    print_table(
        f"usocket vs CPython socket ({'quick' if opts.quick else 'full'} run, best of {reps})",
        ("CPython", "usocket"),
        rows,
        "ratio: usocket speed relative to CPython (1.00 = same, higher = usocket faster)",
    )


if __name__ == "__main__":
    main()
