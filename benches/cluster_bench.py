"""socklab cluster benchmarks (nodes joined over a real nats-server), each beside a
single-node baseline run in the same invocation.

    python benches/cluster_bench.py [--quick] [--nodes N] [--devices N]
                                    [--ingest-devices N] [--secs S]

Runs already built binaries (``cargo build --release -p socklab -p socklab-bench``):
``socklab`` (SOCKLAB_BIN), ``socklab-loadgen`` (SOCKLAB_LOADGEN_BIN) and ``nats-server``
(NATS_SERVER, default from PATH). Everything listens on loopback port 0 (NATS on a free
port); devices connect from 127.x source addresses, one load generator process per node.

Scenarios:

* scale: N idle devices (default 100,000) spread over ``--nodes`` nodes (default 6: one
  process holds at most the per-process descriptor limit), beside one plain socklab
  holding one node's share. Reports the VmRSS growth per connection summed over the nodes
  (goal <= 4 KiB), the cluster-wide ``GET /api/sessions?state=online`` latency p50/p99 as
  answered by one node through scatter-gather (goal p99 < 100 ms), and the time for a
  64-byte broadcast to be written to every device's socket (socklab's bytes-down counters
  across all nodes reach 64 x N and no node's store queue holds a record; goal < 2 s).
* ingest: D devices (default 600) send 64-byte messages as fast as they can for S seconds,
  split over a 3-node cluster, against the same D devices on one plain node: messages
  stored per second (counted in every node's database after the run) as a ratio (goal >=
  0.8x), bytes lost (goal 0). A third run has a dashboard's event stream open on node 1
  (nodes publish their data events over NATS only while a node shows them). The runs
  alternate ``--repeat`` times (default 2, 1 with --quick); the best of each is shown.
  Then the NATS hop: one device on node 0 sends a message every
  10 ms while node 0's and node 1's event streams are read; node 1 gets node 0's events
  through NATS, and the difference per message (node 1's arrival minus node 0's) is the
  hop's added latency (p50/p99).

Prints tables with ratios and goals; exits 0 when every scenario ran (missed goals are
reported as MISS), 1 when one could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _socklab_bench_util import (  # the helper next to this script
    Child,
    Lab,
    default_bin,
    http,
    install_cleanup,
    machine_line,
    raise_nofile,
    stable_rss_kib,
    start_lab,
    table,
    verdict,
    wait_until,
)

MSG_BYTES = 64
PER_PROCESS_FDS = 19_500  # devices one socklab or load generator process takes here
GOAL_KIB = 4.0
GOAL_LIST_P99_MS = 100.0
GOAL_BROADCAST_S = 2.0
GOAL_INGEST_RATIO = 0.8


Node = Lab  # a cluster node, or a plain socklab for the baseline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nats(tmp: Path) -> tuple[Child, str]:
    port = free_port()
    nats = os.environ.get("NATS_SERVER") or shutil.which("nats-server") or "/usr/sbin/nats-server"
    child = Child("nats", [nats, "-a", "127.0.0.1", "-p", str(port)], tmp, stdin_pipe=False)

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    if not wait_until(up, 15):
        raise RuntimeError("nats-server did not start")
    return child, f"nats://127.0.0.1:{port}"


def start_node(socklab: str, tmp: Path, name: str, url: str | None) -> Node:
    return start_lab(socklab, tmp, name, ["--cluster", url, "--node", name] if url else [])


def sources(block: int, shard: int, count: int) -> str:
    """A range of 127.BLOCK.SHARD.x source addresses, enough for `count` connections."""
    n = min(250, max(8, math.ceil(count / 14_000)))
    return f"127.{block}.{shard}.1-127.{block}.{shard}.{n}"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------------------------------------
# Scale


def scale(loadgen: str, nodes: list[Node], per_node: int, tmp: Path, kind: str) -> dict:
    """Connects `per_node` idle devices to each node (one load generator per node), then
    measures memory, the online listing and a broadcast, and closes the devices."""
    total = per_node * len(nodes)
    base = [stable_rss_kib(n.child.pid, 0.5) for n in nodes]
    block = random.randint(16, 250)
    gens = []
    t0 = time.monotonic()
    for i, node in enumerate(nodes):
        argv = [loadgen, "idle", "--target", node.tcp, "--connections", str(per_node)]
        argv += ["--sources", sources(block, i, per_node), "--max-hold-secs", "900"]
        gens.append(Child(f"{kind}-idle-{i}", argv, tmp))
    connected = [g.expect("connected", 120 + per_node / 100) for g in gens]
    wait_until(lambda: sum(n.online() for n in nodes) >= total, 120, 0.2)
    online = sum(n.online() for n in nodes)
    connect_s = time.monotonic() - t0
    # Other nodes' events still arriving would be counted as memory per connection too
    # early or too late: wait until the listing from node 0 sees every device.
    wait_until(lambda: listing_total(nodes[0]) >= total, 120, 0.5)
    loaded = [stable_rss_kib(n.child.pid) for n in nodes]
    lat = list_latency(nodes[0], 200 if total > 20_000 else 300)
    bcast = broadcast(nodes, total)
    for g in gens:
        g.close_stdin()
    for g in gens:
        g.expect("closed", 120)
        g.wait(30)
    wait_until(lambda: sum(n.online() for n in nodes) == 0, 120, 0.2)
    growth = sum(loaded) - sum(base)
    return {
        "kind": kind,
        "nodes": len(nodes),
        "devices": total,
        "connected": sum(c["connected"] for c in connected),
        "failed": sum(c["failed"] for c in connected),
        "online": online,
        "connect_s": connect_s,
        "rss_base_mib": sum(base) / 1024,
        "rss_loaded_mib": sum(loaded) / 1024,
        "kib_per_conn": growth / online if online else None,
        **lat,
        **bcast,
    }


def listing_total(node: Node) -> int:
    body = http("GET", f"http://{node.http}/api/sessions?state=online&limit=1", timeout=30)
    return int(body["total"])


def list_latency(node: Node, count: int) -> dict[str, Any]:
    """Times `count` GET /api/sessions?state=online (first page of 100) on one keep-alive
    connection."""
    host, port = node.http.rsplit(":", 1)
    conn = HTTPConnection(host, int(port), timeout=30)
    times: list[float] = []
    missing: set[str] = set()
    try:
        for _ in range(count):
            t = time.perf_counter()
            conn.request("GET", "/api/sessions?state=online")
            resp = conn.getresponse()
            body = json.loads(resp.read())
            times.append((time.perf_counter() - t) * 1000)
            missing.update(body.get("missing_nodes", []))
    finally:
        conn.close()
    return {
        "list_p50_ms": percentile(times, 0.5),
        "list_p99_ms": percentile(times, 0.99),
        "list_n": len(times),
        "list_missing": sorted(missing),
    }


def bytes_down(nodes: list[Node]) -> int:
    """Bytes written to devices, from each node's own counter (no scatter-gather: the
    figure must not wait behind the cluster traffic it measures)."""
    return sum(int(n.metrics()['socklab_bytes_total{direction="down"}']) for n in nodes)


def broadcast(nodes: list[Node], total: int) -> dict[str, Any]:
    """POSTs a 64-byte broadcast to node 0; the time until every node has written it to
    every device: bytes down across the nodes grew by 64 x devices (a session counts its
    bytes as it records them) and no store queue holds a record any more (a session writes
    to its socket once the store has taken the record)."""
    before = bytes_down(nodes)
    t = time.perf_counter()
    answer = http("POST", f"http://{nodes[0].http}/api/broadcast", {"text": "b" * MSG_BYTES}, 60)
    answered = time.perf_counter() - t
    want = before + MSG_BYTES * total

    def written() -> bool:
        down = queued = 0
        for node in nodes:
            m = node.metrics()
            down += int(m['socklab_bytes_total{direction="down"}'])
            queued += int(m["socklab_store_queue_depth"])
        return down >= want and queued == 0

    reached = wait_until(written, 120, 0.01)
    return {
        "bcast_answer_s": answered,
        "bcast_s": time.perf_counter() - t if reached else None,
        "bcast_sessions": answer.get("sessions"),
    }


# ---------------------------------------------------------------------------------------------
# Ingest and the NATS hop


class EventsReader(threading.Thread):
    """A thread reading a node's /api/events as a dashboard does; subclasses say what
    they keep of it in `run`, and start themselves once their own fields are set."""

    def __init__(self, node: Node) -> None:
        super().__init__(daemon=True)
        host, port = node.http.rsplit(":", 1)
        self.conn = HTTPConnection(host, int(port), timeout=60)
        self.conn.request("GET", "/api/events")
        self.resp = self.conn.getresponse()

    def close(self) -> None:
        self.conn.close()


class Drain(EventsReader):
    """Reads a node's /api/events as a dashboard would, counting the bytes."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.bytes = 0
        self.start()

    def run(self) -> None:
        try:
            while chunk := self.resp.read1(65536):
                self.bytes += len(chunk)
        except (OSError, ValueError, AttributeError):
            return


def ingest(
    loadgen: str,
    nodes: list[Node],
    devices: int,
    secs: float,
    tmp: Path,
    kind: str,
    watch: Node | None = None,
):
    drain = Drain(watch) if watch else None
    block = random.randint(16, 250)
    gens = []
    shares = [
        devices // len(nodes) + (1 if i < devices % len(nodes) else 0) for i in range(len(nodes))
    ]
    for i, (node, n) in enumerate(zip(nodes, shares)):
        argv = [loadgen, "ingest", "--target", node.tcp, "--devices", str(n), "--secs", str(secs)]
        argv += ["--msg-bytes", str(MSG_BYTES), "--sources", sources(block, 200 + i, n)]
        gens.append(Child(f"{kind}-ingest-{i}", argv, tmp))
    for g in gens:
        g.expect("connected", 60)
    for g in gens:
        g.expect("sending", 30)
    t0 = time.monotonic()
    done = [g.expect("done", secs + 200) for g in gens]
    for g in gens:
        g.wait(10)
    sent = [d["bytes_sent"] for d in done]

    def drained() -> bool:
        for node, s in zip(nodes, sent):
            m = node.metrics()
            if m['socklab_bytes_total{direction="up"}'] < s or m["socklab_store_queue_depth"]:
                return False
        return True

    wait_until(drained, 120, 0.05)
    stored = [0] * len(nodes)

    def all_stored() -> bool:
        for i, node in enumerate(nodes):
            stored[i] = stored_bytes(node.db)
        return all(st >= s for st, s in zip(stored, sent))

    wait_until(all_stored, 60, 0.1)
    seconds = time.monotonic() - t0
    if drain:
        drain.close()
    return {
        "kind": kind,
        "nodes": len(nodes),
        "devices": sum(d["connected"] for d in done),
        "sent_msgs": sum(sent) / MSG_BYTES,
        "stored_msgs": sum(stored) / MSG_BYTES,
        "lost_bytes": sum(sent) - sum(stored),
        "seconds": seconds,
        "rate": sum(stored) / MSG_BYTES / seconds,
        "stream_mib": drain.bytes / 2**20 if drain else None,
    }


def stored_bytes(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        (n,) = con.execute(
            "SELECT coalesce(sum(length(data)), 0) FROM messages WHERE direction = 0"
        ).fetchone()
    finally:
        con.close()
    return int(n)


class Stream(EventsReader):
    """Reads a node's /api/events; records when each numbered message (`h` and six digits,
    padded) first arrived in a data event: a read that merged two sends counts for both."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.arrived: dict[int, float] = {}
        self.start()

    def run(self) -> None:
        try:
            for raw in self.resp:
                if not raw.startswith(b"data: ") or b'"type":"data"' not in raw:
                    continue
                t = time.monotonic()
                ev = json.loads(raw[6:])
                for seq in re.findall(r"h(\d{6})", ev["message"].get("text") or ""):
                    self.arrived.setdefault(int(seq), t)
        except (OSError, ValueError, AttributeError):
            return


def nats_hop(nodes: list[Node], secs: float) -> dict[str, Any]:
    """One device on node 0 sends a message every 10 ms while node 0's stream (its own
    events) and node 1's (node 0's events through NATS) are read. Per message: the time
    from the device's send to its event on each stream; the hop adds the difference."""
    time.sleep(2.0)  # let the nodes finish with the ingest before timing single events
    local, remote = Stream(nodes[0]), Stream(nodes[1])
    time.sleep(0.5)
    host, port = nodes[0].tcp.rsplit(":", 1)
    dev = socket.create_connection((host, int(port)), 10)
    dev.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sends: list[float] = []
    try:
        end = time.monotonic() + secs
        while time.monotonic() < end:
            t = time.monotonic()
            dev.sendall(b"h%06d" % len(sends) + b"." * (MSG_BYTES - 7))
            sends.append(t)
            time.sleep(0.01)
        wait_until(lambda: min(len(remote.arrived), len(local.arrived)) >= len(sends), 10)
    finally:
        dev.close()
        local.close()
        remote.close()

    def delays(stream: Stream) -> list[float]:
        if len(stream.arrived) != len(sends):
            print(f"note: {len(stream.arrived)} of {len(sends)} messages seen", flush=True)
            return []
        return [(stream.arrived[k] - s) * 1000 for k, s in enumerate(sends)]

    near, far = delays(local), delays(remote)
    # Per message: how much later node 1 (through NATS) saw it than node 0 did.
    added = [f - n for f, n in zip(far, near)]
    return {
        "hop_sent": len(sends),
        "local_p50_ms": percentile(near, 0.5),
        "local_p99_ms": percentile(near, 0.99),
        "remote_p50_ms": percentile(far, 0.5),
        "remote_p99_ms": percentile(far, 0.99),
        "hop_p50_ms": percentile(added, 0.5),
        "hop_p99_ms": percentile(added, 0.99),
    }


# ---------------------------------------------------------------------------------------------
# Orchestration and reporting


def report_scale(base: dict, clus: dict) -> str:
    def ratio(key: str) -> float | None:
        a, b = clus.get(key), base.get(key)
        return a / b if a is not None and b else None

    rows = []
    for r in (base, clus):
        rows.append([
            f"{r['kind']} ({r['nodes']} node{'s' if r['nodes'] > 1 else ''})", r["devices"],
            r["online"], r["failed"], r["connect_s"], r["rss_loaded_mib"], r["kib_per_conn"],
            r["list_p50_ms"], r["list_p99_ms"], r["bcast_answer_s"], r["bcast_s"],
        ])  # fmt: skip
    rows.append([
        "cluster / single", ratio("devices"), None, None, None, None, ratio("kib_per_conn"),
        ratio("list_p50_ms"), ratio("list_p99_ms"), ratio("bcast_answer_s"), ratio("bcast_s"),
    ])  # fmt: skip
    headers = [
        "run", "devices", "online", "failed", "connect s", "RSS MiB", "KiB/conn",
        "list p50 ms", "list p99 ms", "bcast answer s", "bcast all written s",
    ]  # fmt: skip
    text = table("Scale: idle devices, cluster against one plain node's share", headers, rows)
    goals = [
        ("KiB/conn", clus["kib_per_conn"], f"<= {GOAL_KIB}", (clus["kib_per_conn"] or 1e9) <= GOAL_KIB),
        ("list p99 ms", clus["list_p99_ms"], f"< {GOAL_LIST_P99_MS:.0f}", (clus["list_p99_ms"] or 1e9) < GOAL_LIST_P99_MS),
        ("broadcast s", clus["bcast_s"], f"< {GOAL_BROADCAST_S}", (clus["bcast_s"] or 1e9) < GOAL_BROADCAST_S),
    ]  # fmt: skip
    text += "\n" + table(
        f"Scale goals ({clus['devices']:,} devices on {clus['nodes']} nodes)",
        ["figure", "value", "goal", "verdict"],
        [[g[0], g[1], g[2], verdict(g[3])] for g in goals],
    )
    text += (
        "\nnote: KiB/conn = VmRSS growth summed over the nodes / devices online (each cluster"
        " node also keeps the newest 2,000 online sessions of every other node); list = GET"
        " /api/sessions?state=online (first page of 100) on node 0, scatter-gathered from every"
        " node; bcast all written = until bytes-down across the nodes grew by 64 x devices and"
        " no node's store queue holds a record"
    )
    if clus["list_missing"]:
        text += f"\nnote: nodes missing from some listings: {clus['list_missing']}"
    return text


def report_ingest(runs: dict[str, list[dict]], hop: dict) -> str:
    best = {kind: max(rs, key=lambda r: r["rate"]) for kind, rs in runs.items()}
    base, clus, watched = best["single"], best["cluster"], best["cluster-watched"]
    lost = sum(r["lost_bytes"] for rs in runs.values() for r in rs)
    rows = [
        [f"{r['kind']} ({r['nodes']} node{'s' if r['nodes'] > 1 else ''})", r["devices"],
         r["sent_msgs"], r["stored_msgs"], r["lost_bytes"], r["seconds"], r["rate"],
         r["stream_mib"]]
        for r in (base, clus, watched)
    ]  # fmt: skip
    ratio = clus["rate"] / base["rate"] if base["rate"] else None
    watched_ratio = watched["rate"] / base["rate"] if base["rate"] else None
    rows.append(["cluster / single", None, None, None, None, None, ratio, None])
    rows.append(["cluster-watched / single", None, None, None, None, None, watched_ratio, None])
    text = table(
        f"Ingest: {MSG_BYTES}-byte messages as fast as possible, stored",
        ["run", "devices", "sent msgs", "stored msgs", "lost B", "until stored s", "msgs/s",
         "stream MiB"],
        rows,
    )  # fmt: skip
    text += "\nnote: best of alternating runs shown; msgs/s: " + "; ".join(
        f"{kind} " + ", ".join(f"{r['rate']:,.0f}" for r in rs) for kind, rs in runs.items()
    )
    text += (
        "\nnote: cluster-watched = the cluster with a dashboard's event stream open on node 1"
        " (stream MiB: what it read), so every node publishes its data events over NATS"
    )
    text += "\n" + table(
        "Ingest goals",
        ["figure", "value", "goal", "verdict"],
        [
            ["stored msgs/s, cluster / single", ratio, f">= {GOAL_INGEST_RATIO}",
             verdict(ratio is not None and ratio >= GOAL_INGEST_RATIO)],
            ["stored msgs/s, cluster-watched / single", watched_ratio, "(info)", "-"],
            ["bytes lost (all runs)", lost, "0", verdict(lost == 0)],
        ],
    )  # fmt: skip
    text += "\n" + table(
        "NATS hop: device send -> data event on node 0's stream (local) and node 1's (via NATS)",
        ["messages", "local p50 ms", "local p99 ms", "via NATS p50 ms", "via NATS p99 ms",
         "added p50 ms", "added p99 ms"],
        [[hop["hop_sent"], hop["local_p50_ms"], hop["local_p99_ms"], hop["remote_p50_ms"],
          hop["remote_p99_ms"], hop["hop_p50_ms"], hop["hop_p99_ms"]]],
    )  # fmt: skip
    return text


def stop(children: list[Child]) -> None:
    for c in children:
        c.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="6,000 devices, 150 ingest, 3 s")
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--devices", type=int, default=None)
    ap.add_argument("--ingest-devices", type=int, default=None)
    ap.add_argument("--secs", type=float, default=None)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--repeat", type=int, default=None, help="ingest runs of each kind")
    args = ap.parse_args()
    devices = args.devices or (6_000 if args.quick else 100_000)
    ingest_devices = args.ingest_devices or (150 if args.quick else 600)
    secs = args.secs or (3.0 if args.quick else 10.0)
    nodes_n = max(2, args.nodes)
    per_node = math.ceil(devices / nodes_n)
    if per_node > PER_PROCESS_FDS:
        print(f"cluster_bench: {per_node:,} devices per node exceed one process's descriptor"
              f" limit here; use --nodes {math.ceil(devices / PER_PROCESS_FDS)} or more")  # fmt: skip
        return 1
    socklab = default_bin("socklab", "SOCKLAB_BIN")
    loadgen = default_bin("socklab-loadgen", "SOCKLAB_LOADGEN_BIN")
    install_cleanup()
    raise_nofile(PER_PROCESS_FDS + 500)
    print(f"cluster_bench: {machine_line()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmpname:
        tmp = Path(tmpname)
        if not args.skip_scale:
            print(f"\n== scale: {per_node:,} devices on one plain node, then {per_node * nodes_n:,}"
                  f" on {nodes_n} nodes", flush=True)  # fmt: skip
            try:
                single = start_node(socklab, tmp, "plain-scale", None)
                base = scale(loadgen, [single], per_node, tmp, "single")
                stop([single.child])
                nats, url = start_nats(tmp)
                nodes = [start_node(socklab, tmp, f"n{i}", url) for i in range(nodes_n)]
                clus = scale(loadgen, nodes, per_node, tmp, "cluster")
                stop([n.child for n in nodes] + [nats])
                print(report_scale(base, clus), flush=True)
            except (RuntimeError, OSError, KeyError) as e:
                print(f"scale: could not run: {e}")
                failed = True
        if not args.skip_ingest:
            print(f"\n== ingest: {ingest_devices} devices for {secs:.0f} s, one plain node, then"
                  " a 3-node cluster", flush=True)  # fmt: skip
            try:
                repeat = args.repeat or (1 if args.quick else 2)
                runs: dict[str, list[dict]] = {"single": [], "cluster": [], "cluster-watched": []}
                hop: dict[str, Any] = {}
                for r in range(repeat):
                    single = start_node(socklab, tmp, f"plain-ingest{r}", None)
                    runs["single"].append(
                        ingest(loadgen, [single], ingest_devices, secs, tmp, "single")
                    )
                    stop([single.child])
                    for kind in ("cluster", "cluster-watched"):
                        nats, url = start_nats(tmp)
                        nodes = [start_node(socklab, tmp, f"i{r}{kind[-1]}{i}", url)
                                 for i in range(3)]  # fmt: skip
                        watch = nodes[1] if kind == "cluster-watched" else None
                        runs[kind].append(
                            ingest(loadgen, nodes, ingest_devices, secs, tmp, kind, watch)
                        )
                        if kind == "cluster" and r == repeat - 1:
                            hop = nats_hop(nodes, 2.0 if args.quick else 5.0)
                        stop([n.child for n in nodes] + [nats])
                print(report_ingest(runs, hop), flush=True)
            except (RuntimeError, OSError, KeyError) as e:
                print(f"ingest: could not run: {e}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
