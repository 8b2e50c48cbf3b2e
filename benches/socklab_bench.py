"""socklab benchmarks, each against a bare tokio echo server run side by side.

    python benches/socklab_bench.py [--quick] [--connections N] [--devices N] [--secs S]

Builds nothing: it runs already built binaries (flags or environment, default
``$CARGO_TARGET_DIR/release`` or ``target/release``): ``socklab`` (SOCKLAB_BIN),
``socklab-loadgen`` (SOCKLAB_LOADGEN_BIN) and ``bare-echo`` (BARE_ECHO_BIN), built with
``cargo build --release -p socklab -p socklab-bench``. Every server listens on loopback
port 0 with a temporary database; all traffic stays on 127.0.0.0/8.

Scenarios (issue 3):

* scale: N idle device connections (default 10,000) spread over several 127.x source
  addresses; the server's VmRSS growth per connection once it sees them all online, and its
  accept rate. Target: >= 50,000 connections at < 8 KiB each.
* ingest: D devices (default 1,000) each send 64-byte messages as fast as they can for S
  seconds (default 10); socklab's messages *stored* per second (counted in its database
  after the run) against the messages per second the bare echo server reads. Target: >= 50%.
  A second baseline, ``bare-echo --discard`` (reads, sends nothing back), is stricter:
  echoing costs the echo server and the load generator a syscall per read that socklab
  does not pay. The runs alternate (``--repeat``, default 2) and the best of each is kept,
  because a shared 2-core machine is noisy.
* control plane: latency of GET /api/sessions (both listings) and POST
  /api/sessions/{id}/send while the socklab ingest runs, against the same requests on an
  idle socklab.

Prints tables with ratios and targets and exits 0 when every scenario ran (missed targets
are reported as MISS, not as a failure); exits 1 when a scenario could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _socklab_bench_util import (  # the helper next to this script
    Child,
    http,
    install_cleanup,
    launch_socklab,
    listen_overflows,
    machine_line,
    prometheus,
    raise_nofile,
    stable_rss_kib,
    stop_all,
    table,
    verdict,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
MSG_BYTES = 64
FD_RESERVE = 100  # descriptors a server needs besides its connections (listeners, DB, ...)
SOURCES_PER_SHARD = 8
SCALE_TARGET_CONNS = 50_000
SCALE_TARGET_KIB = 8.0
INGEST_TARGET_RATIO = 0.5


@dataclass
class Server:
    """A running server under test."""

    kind: str
    child: Child
    tcp: str
    http: str | None = None
    db: Path | None = None

    def online(self) -> int:
        """Connections the server itself counts as online."""
        if self.kind == "socklab":
            return int(self.metrics()["socklab_sessions_online"])
        self.child.send_line("stats")
        return int(self.child.expect("stats", 10)["online"])

    def metrics(self) -> dict[str, float]:
        return prometheus(http("GET", f"http://{self.http}/metrics"))


@dataclass
class Bins:
    socklab: str
    loadgen: str
    bare_echo: str


def default_bin(name: str, env: str) -> str:
    if os.environ.get(env):
        return os.environ[env]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / name)


def start_socklab(bins: Bins, tmp: Path, tag: str) -> Server:
    child, info = launch_socklab(bins.socklab, tmp, tag)
    return Server("socklab", child, info["tcp"][0], info["http"], tmp / f"{tag}.db")


def start_bare(bins: Bins, tmp: Path, tag: str, discard: bool = False) -> Server:
    argv = [bins.bare_echo] + (["--discard"] if discard else [])
    child = Child(tag, argv, tmp)
    kind = "bare-discard" if discard else "bare-echo"
    return Server(kind, child, child.expect("ready", 15)["addr"])


def sources_for(connections: int) -> int:
    """Source addresses for one load generator: enough that each uses at most half of
    `net.ipv4.ip_local_port_range`, and at least 8."""
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    ports = max(1, int(high) - int(low) + 1)
    return min(250, max(SOURCES_PER_SHARD, math.ceil(connections / (ports // 2 or 1))))


def source_block() -> int:
    """A random second octet, so runs do not meet their predecessors' TIME_WAIT ports."""
    return random.randint(16, 250)


# ---------------------------------------------------------------------------------------------
# Scale


def scale(server: Server, bins: Bins, tmp: Path, requested: int) -> dict[str, Any]:
    """Two rounds of connect, measure, disconnect: the first gives the figures, the second
    tells memory that is reused (RSS stays flat) from memory that leaks (RSS grows again)."""
    soft = raise_nofile(requested + 4096)[0]
    target = min(requested, soft - FD_RESERVE)
    base_rss = stable_rss_kib(server.child.pid, 0.5)
    first = scale_round(server, bins, tmp, target, soft - 128)
    second = scale_round(server, bins, tmp, target, soft - 128)
    online = first["online"]
    return {
        **first,
        "server": server.kind,
        "requested": requested,
        "target": target,
        "capped_by_nofile": target < requested,
        "nofile": soft,
        "rss_base_kib": base_rss,
        "kib_per_conn": (first["rss_loaded_kib"] - base_rss) / online if online else None,
        "rss_loaded2_kib": second["rss_loaded_kib"],
        "rss_after2_kib": second["rss_after_kib"],
        "online2": second["online"],
    }


def scale_round(server: Server, bins: Bins, tmp: Path, target: int, per_shard: int) -> dict:
    """Opens `target` idle connections (in as many load generator processes as the
    descriptor limit needs), measures, closes them and waits until the server sees none."""
    shards = max(1, math.ceil(target / per_shard))
    block = source_block()
    overflows = listen_overflows()
    t0, t0_wall = time.monotonic(), time.time()
    gens = []
    for i in range(shards):
        n = target // shards + (1 if i < target % shards else 0)
        argv = [bins.loadgen, "idle", "--target", server.tcp, "--connections", str(n)]
        argv += ["--sources", f"127.{block}.{i}.1-127.{block}.{i}.{sources_for(n)}"]
        argv += ["--max-hold-secs", "900"]
        gens.append(Child(f"{server.kind}-idle-{block}-{i}", argv, tmp))
    seen = {"online": 0, "at": t0, "changed": t0}

    def all_online() -> bool:
        now, online = time.monotonic(), server.online()
        if online != seen["online"]:
            seen.update(online=online, at=now, changed=now)
        return online >= target or now - seen["changed"] > 10  # all in, or stuck

    wait_until(all_online, 60 + target / 200, 0.05)
    connected = [g.expect("connected", 60 + target / 200) for g in gens]
    online = server.online()
    overflows = listen_overflows() - overflows
    api_online = None
    accept_s = last_accept_ms(server) / 1000 - t0_wall
    if server.kind == "socklab":
        listeners = http("GET", f"http://{server.http}/api/listeners")["listeners"]
        api_online = sum(li["online"] for li in listeners)
    loaded_rss = stable_rss_kib(server.child.pid)
    for g in gens:
        g.close_stdin()
    for g in gens:
        g.expect("closed", 120)
        g.wait(30)
    t_close = time.monotonic()
    wait_until(lambda: server.online() == 0, 60 + target / 500, 0.1)
    offline_s = time.monotonic() - t_close
    if accept_s <= 0:  # no server timestamp: fall back to when polling saw the last one
        accept_s = seen["at"] - t0
    return {
        "shards": shards,
        "connected": sum(c["connected"] for c in connected),
        "failed": sum(c["failed"] for c in connected),
        "errors": [c["errors"] for c in connected if c["errors"]],
        "online": online,
        "api_online": api_online,
        "listen_overflows": overflows,
        "accept_s": accept_s,
        "accept_rate": online / accept_s if accept_s > 0 else None,
        "rss_loaded_kib": loaded_rss,
        "rss_after_kib": stable_rss_kib(server.child.pid),
        "offline_s": offline_s,
    }


def last_accept_ms(server: Server) -> int:
    """Wall-clock Unix ms of the server's latest accept: socklab's newest online session's
    start, bare-echo's own record. The accept rate comes from these rather than from the
    50 ms polling."""
    if server.kind == "socklab":
        page = http("GET", f"http://{server.http}/api/sessions?state=online&limit=1")
        return int(page["sessions"][0]["started_at_ms"]) if page["sessions"] else 0
    server.child.send_line("stats")
    return int(server.child.expect("stats", 10).get("last_accept_ms", 0))


# ---------------------------------------------------------------------------------------------
# Ingest and control plane


@dataclass
class IngestPlan:
    """What every ingest run does."""

    devices: int
    secs: float
    nagle: bool


def ingest_argv(bins: Bins, server: Server, plan: IngestPlan) -> list[str]:
    block = source_block()
    return [
        bins.loadgen, "ingest", "--target", server.tcp, "--devices", str(plan.devices),
        "--secs", str(plan.secs), "--msg-bytes", str(MSG_BYTES),
        "--sources", f"127.{block}.200.1-127.{block}.200.{sources_for(plan.devices)}",
    ] + (["--nagle"] if plan.nagle else [])  # fmt: skip


def ingest_bare(bins: Bins, tmp: Path, plan: IngestPlan, discard: bool) -> dict[str, Any]:
    server = start_bare(bins, tmp, f"ingest-{random.randrange(10**6)}", discard)
    try:
        gen = Child("bare-ingest", ingest_argv(bins, server, plan), tmp)
        conn = gen.expect("connected", 60)
        gen.expect("sending", 30)
        t0 = time.monotonic()
        done = gen.expect("done", plan.secs + 200)
        t_end = time.monotonic()
        gen.wait(10)
        server.child.send_line("stats")
        consumed = server.child.expect("stats", 10)["bytes_received"]
    finally:
        server.child.stop()
    return ingest_result(server.kind, conn, done, consumed, None, t_end - t0)


def ingest_socklab(
    bins: Bins, tmp: Path, plan: IngestPlan, baseline_s: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    server = start_socklab(bins, tmp, f"socklab-ingest-{random.randrange(10**6)}")
    try:
        idle_probe = run_probe(bins, tmp, server, baseline_s, "probe-idle")
        gen = Child("socklab-ingest", ingest_argv(bins, server, plan), tmp)
        conn = gen.expect("connected", 60)
        gen.expect("sending", 30)
        t0 = time.monotonic()
        probe = Child("probe-load", probe_argv(bins, server, max(plan.secs - 0.5, 0.5)), tmp)
        load_probe = probe.expect(("probe", "probe_failed"), plan.secs + 60)
        probe.wait(10)
        done = gen.expect("done", plan.secs + 200)
        gen.wait(10)
        sent = done["bytes_sent"]
        # Stored, not just read: wait until socklab has read everything and its store
        # queue is empty, then count in the database until every sent byte is there.
        wait_until(
            lambda: (
                (m := server.metrics())['socklab_bytes_total{direction="up"}'] >= sent
                and m["socklab_store_queue_depth"] == 0
            ),
            120,
            0.05,
        )
        stored: dict[str, Any] = {}

        def all_stored() -> bool:
            t = time.monotonic()
            stored.update(count_stored(server.db), at=t)
            return stored["bytes"] >= sent

        wait_until(all_stored, 60, 0.1)
    finally:
        server.child.stop()
    result = ingest_result(
        "socklab", conn, done, stored["bytes"], stored["rows"], stored["at"] - t0
    )
    return result, idle_probe, load_probe


def count_stored(db: Path | None) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows, nbytes = con.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM messages WHERE direction = 0"
        ).fetchone()
    finally:
        con.close()
    return {"rows": rows, "bytes": nbytes}


def ingest_result(
    kind: str, conn: dict, done: dict, consumed: int, rows: int | None, seconds: float
) -> dict[str, Any]:
    return {
        "server": kind,
        "devices": done["connected"],
        "failed": conn["failed"],
        "window_s": done["window_s"],
        "msgs_sent": done["bytes_sent"] / MSG_BYTES,
        "offered_rate": done["bytes_sent"] / MSG_BYTES / done["window_s"],
        "msgs_counted": consumed / MSG_BYTES,
        "rows": rows,
        "lost_bytes": done["bytes_sent"] - consumed,
        "seconds": seconds,
        "rate": consumed / MSG_BYTES / seconds,
        "undrained": done["undrained_tasks"],
        "nagle": done["nagle"],
    }


def probe_argv(bins: Bins, server: Server, secs: float) -> list[str]:
    return [
        bins.loadgen, "probe", "--http", str(server.http), "--device", server.tcp,
        "--secs", f"{secs:.2f}", "--interval-ms", "10",
    ]  # fmt: skip


def run_probe(bins: Bins, tmp: Path, server: Server, secs: float, tag: str) -> dict[str, Any]:
    probe = Child(tag, probe_argv(bins, server, secs), tmp)
    try:
        return probe.expect(("probe", "probe_failed"), secs + 60)
    finally:
        probe.wait(10)


# ---------------------------------------------------------------------------------------------
# Reporting


def mib(kib: int) -> float:
    return kib / 1024


def report_scale(results: list[dict[str, Any]]) -> str:
    bare = next((r for r in results if r["server"] == "bare-echo"), None)
    rows = []
    for r in results:
        ratio = None
        if bare and bare["kib_per_conn"] and r["kib_per_conn"] is not None:
            ratio = r["kib_per_conn"] / bare["kib_per_conn"]
        rows.append([
            r["server"], r["target"], r["online"], r["failed"], r["accept_rate"],
            r["listen_overflows"],
            mib(r["rss_base_kib"]), mib(r["rss_loaded_kib"]), r["kib_per_conn"], ratio,
            mib(r["rss_after_kib"]), mib(r["rss_loaded2_kib"]), mib(r["rss_after2_kib"]),
        ])  # fmt: skip
    headers = [
        "server", "connections", "online", "failed", "accepts/s", "SYN drops", "RSS idle MiB",
        "RSS loaded MiB", "KiB/conn", "x bare", "closed MiB", "again MiB", "closed MiB",
    ]  # fmt: skip
    text = table("Scale: idle TCP connections", headers, rows)
    text += (
        "\nnote: KiB/conn = VmRSS growth / connections online; 'again' = a second round of the"
        " same connections after all closed (flat = memory reused, growth = leak); SYN drops ="
        " kernel ListenOverflows during the first round (system-wide), each a 1 s retransmit"
    )
    for r in results:
        if r["capped_by_nofile"]:
            text += (
                f"\nnote: {r['server']}: {r['requested']:,} requested, capped at {r['target']:,} "
                f"by RLIMIT_NOFILE {r['nofile']:,} (hard limit; raising it needs CAP_SYS_RESOURCE)"
            )
        if r["api_online"] is not None and r["api_online"] != r["online"]:
            text += f"\nnote: /api/listeners says {r['api_online']:,} online"
        for errors in r["errors"]:
            text += f"\nnote: {r['server']} connect errors: {errors}"
    return text


def report_ingest(runs: list[dict[str, Any]]) -> str:
    best = best_runs(runs)
    echo, discard = best.get("bare-echo"), best.get("bare-discard")
    rows = []
    for r in best.values():
        counted = "stored" if r["server"] == "socklab" else "read"
        rows.append([
            r["server"], r["devices"], r["window_s"], r["offered_rate"], r["msgs_counted"],
            counted, r["rows"], r["lost_bytes"], r["seconds"], r["rate"],
            r["rate"] / echo["rate"] if echo and echo["rate"] else None,
            r["rate"] / discard["rate"] if discard and discard["rate"] else None,
        ])  # fmt: skip
    headers = [
        "server", "devices", "send s", "sent msgs/s", "msgs", "counted", "DB rows", "lost B",
        "until counted s", "msgs/s", "x echo", "x discard",
    ]  # fmt: skip
    title = f"Ingest: {MSG_BYTES}-byte messages, as fast as possible"
    if runs and runs[0].get("nagle"):
        title += " (devices with Nagle on)"
    text = table(title, headers, rows)
    sl = best.get("socklab")
    if sl and sl["rows"]:
        text += (
            f"\nnote: socklab stores one row per read; {sl['msgs_counted'] / sl['rows']:.1f} "
            f"messages per row on average (msgs = stored bytes / {MSG_BYTES})"
        )
    if len(runs) > len(best):
        per = {k: [r["rate"] for r in runs if r["server"] == k] for k in best}
        listed = "; ".join(f"{k} " + ", ".join(f"{v:,.0f}" for v in vs) for k, vs in per.items())
        text += f"\nnote: best of {len(runs) // len(best)} alternating runs shown; msgs/s: {listed}"
    return text


def best_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The run with the highest rate for each server, in first-seen order."""
    best: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["server"] not in best or r["rate"] > best[r["server"]]["rate"]:
            best[r["server"]] = r
    return best


def report_probe(idle: dict[str, Any], load: dict[str, Any]) -> str:
    if "endpoints" not in idle or "endpoints" not in load:
        return f"Control plane: probe failed: idle={idle.get('error')} load={load.get('error')}"
    rows = []
    for name, i in idle["endpoints"].items():
        lo = load["endpoints"][name]
        errors = sum(lo["errors"].values()) + lo["bad_status"]
        rows.append([
            name, i["p50_ms"], i["p99_ms"], lo["p50_ms"], lo["p99_ms"], lo["max_ms"],
            lo["p50_ms"] / i["p50_ms"] if i["p50_ms"] else None,
            lo["p99_ms"] / i["p99_ms"] if i["p99_ms"] else None, lo["count"], errors,
        ])  # fmt: skip
    headers = [
        "request (ms)", "idle p50", "idle p99", "load p50", "load p99", "load max",
        "p50 x idle", "p99 x idle", "requests", "errors",
    ]  # fmt: skip
    text = table("Control plane: API latency while the socklab ingest runs", headers, rows)
    text += (
        f"\nnote: sends delivered to the probe's device under load: {load['delivered_bytes']:,}"
        f" of {load['expected_bytes']:,} bytes"
    )
    return text


def report_targets(scales: list[dict[str, Any]], ingest: list[dict[str, Any]] | None) -> str:
    rows = []
    sl = next((r for r in scales if r["server"] == "socklab"), None)
    if sl:
        rows.append([
            "scale: concurrent connections", sl["online"], f">= {SCALE_TARGET_CONNS:,}",
            verdict(sl["online"] >= SCALE_TARGET_CONNS),
        ])  # fmt: skip
        kib = sl["kib_per_conn"]
        rows.append([
            "scale: socklab KiB per connection", kib, f"< {SCALE_TARGET_KIB:g}",
            verdict(kib is not None and kib < SCALE_TARGET_KIB),
        ])  # fmt: skip
    if ingest:
        best = best_runs(ingest)
        sock, echo, discard = best["socklab"], best["bare-echo"], best["bare-discard"]
        ratio = sock["rate"] / echo["rate"] if echo["rate"] else 0.0
        rows.append([
            "ingest: socklab stored / bare echo read", ratio, f">= {INGEST_TARGET_RATIO:.2f}",
            verdict(ratio >= INGEST_TARGET_RATIO),
        ])  # fmt: skip
        rows.append([
            "ingest: socklab stored / bare discard read",
            sock["rate"] / discard["rate"] if discard["rate"] else 0.0, "(info)", "-",
        ])  # fmt: skip
        lost = sum(r["lost_bytes"] for r in ingest if r["server"] == "socklab")
        rows.append(["ingest: bytes lost by socklab (all runs)", lost, "0", verdict(lost == 0)])
    return table("Targets (issue 3)", ["target", "measured", "goal", "verdict"], rows)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 connections, 100 devices x 3 s")
    p.add_argument("--connections", type=int, help="idle connections (default 10,000)")
    p.add_argument("--devices", type=int, help="ingest devices (default 1,000)")
    p.add_argument("--secs", type=float, help="ingest seconds (default 10)")
    p.add_argument("--scenarios", default="scale,ingest", help="comma list: scale, ingest")
    p.add_argument("--repeat", type=int, help="alternating ingest runs, best kept (default 2)")
    p.add_argument(
        "--nagle", action="store_true", help="ingest devices leave Nagle on (default: NODELAY)"
    )
    p.add_argument("--socklab", default=default_bin("socklab", "SOCKLAB_BIN"))
    p.add_argument("--loadgen", default=default_bin("socklab-loadgen", "SOCKLAB_LOADGEN_BIN"))
    p.add_argument("--bare-echo", default=default_bin("bare-echo", "BARE_ECHO_BIN"))
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    connections = args.connections or (2_000 if args.quick else 10_000)
    devices = args.devices or (100 if args.quick else 1_000)
    secs = args.secs or (3.0 if args.quick else 10.0)
    repeat = args.repeat or (1 if args.quick else 2)
    if not (1 <= connections <= 1_000_000 and 1 <= devices <= 100_000 and 0 < secs <= 3600):
        p.error("--connections 1..1e6, --devices 1..1e5, --secs (0, 3600]")
    if not 1 <= repeat <= 10:
        p.error("--repeat 1..10")
    bins = Bins(args.socklab, args.loadgen, args.bare_echo)
    missing = [b for b in vars(bins).values() if not os.access(b, os.X_OK)]
    if missing:
        print(f"missing binaries: {', '.join(missing)}", file=sys.stderr)
        print("build them: cargo build --release -p socklab -p socklab-bench", file=sys.stderr)
        return 2
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    install_cleanup()
    raise_nofile(connections + 4096)
    print(f"socklab benchmarks: {' '.join(sys.argv)}")
    print(f"machine: {machine_line()}\n", flush=True)
    results: dict[str, Any] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="socklab-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            if "scale" in scenarios:
                scales = []
                for start in (start_bare, start_socklab):
                    server = start(bins, tmp, f"scale-{start.__name__}")
                    try:
                        scales.append(scale(server, bins, tmp, connections))
                    finally:
                        server.child.stop()
                results["scale"] = scales
                print(report_scale(scales) + "\n", flush=True)
            if "ingest" in scenarios:
                plan = IngestPlan(devices, secs, args.nagle)
                runs: list[dict[str, Any]] = []
                probes: dict[int, tuple[dict, dict]] = {}
                for _ in range(repeat):
                    runs.append(ingest_bare(bins, tmp, plan, discard=False))
                    runs.append(ingest_bare(bins, tmp, plan, discard=True))
                    sock, idle_probe, load_probe = ingest_socklab(bins, tmp, plan, min(3.0, secs))
                    runs.append(sock)
                    probes[id(sock)] = (idle_probe, load_probe)
                results["ingest"] = runs
                idle_probe, load_probe = probes[id(best_runs(runs)["socklab"])]
                results["probe"] = {"idle": idle_probe, "load": load_probe}
                print(report_ingest(runs) + "\n", flush=True)
                print(report_probe(idle_probe, load_probe) + "\n", flush=True)
        except (RuntimeError, OSError, KeyError) as e:
            print(f"benchmark failed: {e}", file=sys.stderr)
            failed = True
        except KeyboardInterrupt:
            print("interrupted; servers and load generators stopped", file=sys.stderr)
            return 130
        finally:
            stop_all()
    ingest = results.get("ingest")
    if results:
        print(report_targets(results.get("scale", []), ingest))
        print(f"\nmachine after: {machine_line()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
