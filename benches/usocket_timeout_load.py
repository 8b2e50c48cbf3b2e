"""Timeouts under load: how late does recv() with settimeout(0.2) raise, while 50 other
threads are blocked in recv() on other sockets and Python threads keep the GIL busy?

    python benches/usocket_timeout_load.py [--quick]

For each module (CPython's socket as the baseline, and usocket) the same load is set up:
50 loopback connections whose peers never send, one thread blocked in recv() on each, and
two threads spinning in pure Python (so the GIL is always wanted). The main thread then
times recv() on a silent socket with settimeout(0.2), many times. The samples are taken in
rounds that alternate between the modules, so a change in the machine's load during the
run affects both alike. The overshoot is the time
past the 0.2 s deadline at which the timeout error reached Python (usocket: OSError(110);
CPython: TimeoutError). Printed: the overshoot distribution in milliseconds, side by side,
the median without the load (what the machine itself adds), and the ratio of the medians (CPython / usocket: above 1.00 means usocket is closer to the
deadline). The timed recv() runs once in the main thread and once in a thread of its own:
Python hands the GIL over differently to the main thread.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time

# 50+ sockets at once is the point here; the device limit warning would only add noise.
os.environ.setdefault("USOCKET_MAX_SOCKETS", "0")

import usocket

TIMEOUT_S = 0.2
BLOCKED = 50
SPINNERS = 2
ROUNDS = 3


class Load:
    """50 connections with a thread blocked in recv on each, plus GIL-busy spinners."""

    def __init__(self, module) -> None:
        self.module = module
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(BLOCKED + 4)
        self.port = self.listener.getsockname()[1]
        self.peers: list[socket.socket] = []
        self.clients = []
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()
        for _ in range(BLOCKED):
            client = self.connect()
            t = threading.Thread(target=self.blocked_reader, args=(client,), daemon=True)
            t.start()
            self.threads.append(t)
        for _ in range(SPINNERS):
            t = threading.Thread(target=self.spin, daemon=True)
            t.start()
            self.threads.append(t)
        time.sleep(0.3)  # let every reader block

    def connect(self):
        client = self.module.socket(self.module.AF_INET, self.module.SOCK_STREAM)
        client.connect(("127.0.0.1", self.port))
        peer, _ = self.listener.accept()
        self.peers.append(peer)
        self.clients.append(client)
        return client

    @staticmethod
    def blocked_reader(sock) -> None:
        try:
            sock.recv(100)  # ends when the peer closes
        except OSError:
            pass

    def spin(self) -> None:
        x = 0
        while not self.stop.is_set():
            for i in range(1000):
                x += i * i

    def close(self) -> None:
        self.stop.set()
        for peer in self.peers:
            peer.close()  # FIN: every blocked reader returns
        for t in self.threads:
            t.join(10)
        for client in self.clients:
            client.close()
        self.listener.close()


class NoLoad(Load):
    """The same silent connection without the blocked readers and spinners (the floor)."""

    def __init__(self, module) -> None:  # the parent's setup, minus the load
        self.module = module
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.peers, self.clients, self.threads = [], [], []
        self.stop = threading.Event()


def overshoots_ms(
    module, samples: int, loaded: bool = True, in_worker: bool = False
) -> list[float]:
    """Overshoot of a 0.2 s recv timeout (under load, or idle), in ms, `samples` times,
    timed in the main thread or, `in_worker`, in a thread of its own."""
    load = Load(module) if loaded else NoLoad(module)
    try:
        sock = load.connect()  # its peer never sends
        sock.settimeout(TIMEOUT_S)
        out: list[float] = []
        if in_worker:
            worker = threading.Thread(target=time_timeouts, args=(module, sock, samples, out))
            worker.start()
            worker.join()
        else:
            time_timeouts(module, sock, samples, out)
        return out
    finally:
        load.close()


def time_timeouts(module, sock, samples: int, out: list[float]) -> None:
    """Times `samples` recv() calls on the silent `sock`, appending each overshoot (ms)."""
    for _ in range(samples):
        t0 = time.perf_counter()
        try:
            sock.recv(100)
            raise AssertionError("the silent peer sent something")
        except OSError as e:
            elapsed = time.perf_counter() - t0
            if module is usocket:
                assert type(e) is OSError and e.args == (110,), e
            else:
                assert isinstance(e, TimeoutError), e
        out.append((elapsed - TIMEOUT_S) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (a few seconds)")
    opts = ap.parse_args()
    samples = 12 if opts.quick else 60

    modules = (("CPython", socket), ("usocket", usocket))
    idle: dict[str, list[float]] = {name: [] for name, _ in modules}
    places = (("main thread", False), ("worker thread", True))
    results = {(place, name): [] for place, _ in places for name, _ in modules}
    for _ in range(ROUNDS):
        for name, mod in modules:
            idle[name] += overshoots_ms(mod, samples // ROUNDS // 2, loaded=False)
            for place, in_worker in places:
                results[place, name] += overshoots_ms(mod, samples // ROUNDS, in_worker=in_worker)
    print(
        f"recv() with settimeout({TIMEOUT_S}) under load: {BLOCKED} threads blocked in recv, "
        f"{SPINNERS} GIL-busy threads, {samples} samples each"
    )
    rows = [
        ("min", min),
        ("median", statistics.median),
        ("p90", lambda v: percentile(v, 0.9)),
        ("p99", lambda v: percentile(v, 0.99)),
        ("max", max),
    ]
    for place, _ in places:
        print(f"\novershoot past the deadline, ms, recv() in the {place}")
        print(f"{'':<10} {'CPython':>10} {'usocket':>10}")
        for label, fn in rows:
            c, u = fn(results[place, "CPython"]), fn(results[place, "usocket"])
            print(f"{label:<10} {c:>10.2f} {u:>10.2f}")
        c = statistics.median(results[place, "CPython"])
        u = statistics.median(results[place, "usocket"])
        print(
            f"median ratio (CPython / usocket, higher = usocket closer to the deadline): {c / u:.2f}"
        )
    print(
        f"\n{'idle med.':<10} {statistics.median(idle['CPython']):>10.2f} "
        f"{statistics.median(idle['usocket']):>10.2f}   (no load, main thread: the machine's own floor)"
    )


if __name__ == "__main__":
    main()
