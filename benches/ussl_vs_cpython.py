"""ussl (rustls in usocket-core) vs CPython's ssl module (OpenSSL): the same TLS workloads,
side by side, in one run.

    python benches/ussl_vs_cpython.py [--quick]

Both clients talk to the same loopback TLS peer, a separate process using CPython's ssl
with a P-256 ECDSA certificate made for the run (trustme). Both clients use TLS 1.2 (the
device's protocol; CPython's context is capped to match) and no certificate verification
(the device default without ``ca``), except in the "verified" handshake row, where both
check the chain and the host name against the run's CA.

Workloads:

* handshake: TCP connect + TLS handshake + close, per connection;
* round trips: 64-byte request, 64-byte response over one TLS connection;
* bulk download: 128 MiB (full run) from the peer, read with ``recv(65536)``;
* bulk upload: 128 MiB to the peer with ``write``/``sendall`` of 64 KiB.

For every workload the client's CPU time is printed too: the peer and the client
share the machine's cores, so on a busy machine wall-clock throughput says more about the
peer than about the client, while CPU time is the client's own cost.

Each workload alternates between the two clients and keeps the best of several runs.
Ratios are ussl relative to CPython: for times, CPython time / ussl time; for throughput,
ussl / CPython (1.00 = same, higher = ussl faster). Targets: throughput >= 0.90, handshake
time at most 1.1x CPython's (ratio >= 0.91).
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import trustme
import usocket
from _vs_cpython import Row, Stopwatch, best_of, print_table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python" / "usocket" / "_device"))
ussl = importlib.import_module("ussl")

PEER = r"""
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", 0))
lst.listen(128)
print(lst.getsockname()[1], flush=True)

def serve(raw):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        f = conn.makefile("rb")
        cmd = f.readline().split()
        if not cmd:
            return
        if cmd[0] == b"echo":
            size = int(cmd[1])
            while True:
                data = f.read(size)
                if len(data) < size:
                    break
                conn.sendall(data)
        elif cmd[0] == b"down":
            left = int(cmd[1])
            chunk = memoryview(bytes(1 << 20))
            while left > 0:
                n = min(left, len(chunk))
                conn.sendall(chunk[:n])
                left -= n
            f.read(1)
        elif cmd[0] == b"up":
            left = int(cmd[1])
            buf = bytearray(1 << 16)
            while left > 0:
                n = conn.recv_into(buf)
                if not n:
                    break
                left -= n
            conn.sendall(b"k")
            f.read(1)
    except (OSError, ValueError):
        pass
    finally:
        raw.close()

while True:
    c, _ = lst.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


class Clients:
    """The two TLS clients: connect + handshake, with or without verification."""

    def __init__(self, port: int, ca_pem: str, ca_file: str) -> None:
        self.port = port
        self.ca_pem = ca_pem
        self.plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.plain.check_hostname = False
        self.plain.verify_mode = ssl.CERT_NONE
        self.plain.maximum_version = ssl.TLSVersion.TLSv1_2
        self.verified = ssl.create_default_context(cafile=ca_file)
        self.verified.maximum_version = ssl.TLSVersion.TLSv1_2

    def cpython(self, verify: bool = False) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = self.verified if verify else self.plain
        return ctx.wrap_socket(raw, server_hostname="localhost")

    def ussl(self, verify: bool = False):
        raw = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        raw.connect(("127.0.0.1", self.port))
        with socket.socket(fileno=os.dup(raw.fileno())) as view:
            view.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if verify:
            return ussl.wrap_socket(raw, ca=self.ca_pem, server_hostname="localhost")
        return ussl.wrap_socket(raw, server_hostname="localhost")


def handshakes(open_tls, count: int) -> tuple[float, float]:
    clock = Stopwatch()
    for _ in range(count):
        s = open_tls()
        s.close()
    return clock.stop()


def round_trips(s, count: int) -> tuple[float, float]:
    write = s.write if hasattr(s, "getsocketsta") else s.sendall
    write(b"echo 64\n")
    msg = b"x" * 64
    clock = Stopwatch()
    for _ in range(count):
        write(msg)
        got = s.recv(64)
        while len(got) < 64:
            got += s.recv(64 - len(got))
    times = clock.stop()
    s.close()
    return times


def download(s, total: int) -> tuple[float, float]:
    write = s.write if hasattr(s, "getsocketsta") else s.sendall
    write(b"down %d\n" % total)
    got = 0
    recv = s.recv
    clock = Stopwatch()
    while got < total:
        got += len(recv(65536))
    times = clock.stop()
    s.close()
    return times


def upload(s, total: int) -> tuple[float, float]:
    write = s.write if hasattr(s, "getsocketsta") else s.sendall
    write(b"up %d\n" % total)
    chunk = bytes(65536)
    clock = Stopwatch()
    left = total
    while left > 0:
        write(chunk)
        left -= len(chunk)
    assert s.recv(1) == b"k"
    times = clock.stop()
    s.close()
    return times


def best(run, clients: Clients, arg: int, reps: int) -> tuple[float, float, float, float]:
    """Best wall time and best client CPU time for each client, alternating runs so drift
    affects both alike: (CPython wall, ussl wall, CPython CPU, ussl CPU)."""
    got = best_of(
        reps, {"c": lambda: run(clients.cpython, arg), "u": lambda: run(clients.ussl, arg)}
    )
    return got["c"][0], got["u"][0], got["c"][1], got["u"][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a few seconds)")
    opts = ap.parse_args()
    shakes, trips, mib, reps = (100, 2_000, 32, 3) if opts.quick else (400, 10_000, 128, 5)

    folder = Path(tempfile.mkdtemp(prefix="ussl-bench-"))
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    peer = subprocess.Popen(
        [sys.executable, "-c", PEER, str(cert_file), str(key_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    rows = []
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())
        clients = Clients(port, ca.cert_pem.bytes().decode(), str(ca_file))
        probe = clients.cpython()
        cipher = probe.cipher()
        probe.close()
        for make in (clients.cpython, clients.ussl):  # warm up the peer and both paths
            handshakes(make, 20)
            round_trips(make(), 200)

        for verify in (False, True):
            c, u, c_cpu, u_cpu = best(
                lambda make, n, v=verify: handshakes(lambda: make(v), n), clients, shakes, reps
            )
            label = "verified" if verify else "no verify"
            rows.append(
                Row(
                    f"handshake, {label} (x{shakes})",
                    f"{c / shakes * 1e6:.0f} us",
                    f"{u / shakes * 1e6:.0f} us",
                    c / u,
                    0.91,
                )
            )
            rows.append(
                Row(
                    "  client CPU per handshake",
                    f"{c_cpu / shakes * 1e6:.0f} us",
                    f"{u_cpu / shakes * 1e6:.0f} us",
                    c_cpu / u_cpu,
                )
            )
        c, u, c_cpu, u_cpu = best(lambda make, n: round_trips(make(), n), clients, trips, reps)
        rows.append(
            Row(
                f"round trip 64 B (x{trips})",
                f"{c / trips * 1e6:.1f} us",
                f"{u / trips * 1e6:.1f} us",
                c / u,
            )
        )
        rows.append(
            Row(
                "  client CPU per round trip",
                f"{c_cpu / trips * 1e6:.1f} us",
                f"{u_cpu / trips * 1e6:.1f} us",
                c_cpu / u_cpu,
            )
        )
        total = mib << 20
        for name, run in (("download", download), ("upload", upload)):
            c, u, c_cpu, u_cpu = best(lambda make, n, r=run: r(make(), n), clients, total, reps)
            rows.append(
                Row(
                    f"bulk {name} {mib} MiB",
                    f"{total / c / 2**20:.0f} MiB/s",
                    f"{total / u / 2**20:.0f} MiB/s",
                    c / u,
                    0.90,
                )
            )
            rows.append(
                Row(
                    f"  client CPU per MiB ({name})",
                    f"{c_cpu / mib * 1e3:.2f} ms",
                    f"{u_cpu / mib * 1e3:.2f} ms",
                    c_cpu / u_cpu,
                )
            )
    finally:
        peer.kill()
        peer.wait()

    print_table(
        f"ussl vs CPython ssl ({'quick' if opts.quick else 'full'} run, best of {reps}; "
        f"TLS 1.2, {cipher[0]})",
        ("CPython", "ussl"),
        rows,
        "ratio: ussl speed relative to CPython's ssl (1.00 = same, higher = ussl faster)",
    )


if __name__ == "__main__":
    main()
