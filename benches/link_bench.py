"""Benchmark of socklab's link emulation: what the link layer costs when it does nothing
(`--link perfect` against no link: ingest rate and memory per session, target within 5%),
and what 1,000 sessions under `nbiot` cost and deliver.

Run from the repository root after `cargo build --release -p socklab -p socklab-bench`:

    python benches/link_bench.py            # full: 1,000 ingest devices x 10 s, 10,000 idle
    python benches/link_bench.py --quick    # under a minute
    python benches/link_bench.py --baseline-bin PATH   # adds a "pre-link" row: a socklab
                                            # built before the link layer existed

Binaries: SOCKLAB_BIN / SOCKLAB_LOADGEN_BIN, else $CARGO_TARGET_DIR (or target)/release.
Every child is stopped when this script ends, whatever way it ends.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _socklab_bench_util import (
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
    wait_until,
)

MSG_BYTES = 64
NBIOT_UP_BPS = 50_000
PERFECT_TARGET = 0.05


def start(bin_: str, tmp: Path, tag: str, link: str | None) -> Lab:
    return start_lab(bin_, tmp, tag, ["--link", link, "--seed", "1"] if link else [])


def sources(n: int) -> str:
    block = random.randint(16, 250)
    return f"127.{block}.7.1-127.{block}.7.{max(8, min(250, n // 2000 + 8))}"


def ingest(bins: dict[str, str], tmp: Path, link: str | None, devices: int, secs: float) -> dict:
    """Devices send 64-byte messages as fast as they can; the rate is messages socklab took
    in and committed (store queue empty) per second from the start of sending. `link`
    "pre-link" runs the baseline binary (--baseline-bin) without a link."""
    tag = f"ingest-{link or 'none'}-{random.randrange(10**6)}"
    binary = bins["baseline"] if link == "pre-link" else bins["socklab"]
    lab = start(binary, tmp, tag, None if link == "pre-link" else link)
    try:
        argv = [bins["loadgen"], "ingest", "--target", lab.tcp, "--devices", str(devices)]
        argv += ["--secs", str(secs), "--msg-bytes", str(MSG_BYTES), "--sources", sources(devices)]
        gen = Child(tag + "-gen", argv, tmp)
        gen.expect("connected", 60)
        gen.expect("sending", 30)
        t0 = time.monotonic()
        done = gen.expect("done", secs + 200)
        gen.wait(10)
        sent = done["bytes_sent"]
        wait_until(
            lambda: (
                (m := lab.metrics())['socklab_bytes_total{direction="up"}'] >= sent
                and m["socklab_store_queue_depth"] == 0
            ),
            120,
            0.05,
        )
        seconds = time.monotonic() - t0
    finally:
        lab.child.stop()
    return {"link": link or "none", "devices": devices, "msgs": sent / MSG_BYTES,
            "seconds": seconds, "rate": sent / MSG_BYTES / seconds}  # fmt: skip


def idle_memory(bins: dict[str, str], tmp: Path, link: str | None, conns: int) -> dict:
    """Resident memory per idle session: RSS with `conns` connections open minus before."""
    tag = f"idle-{(link or 'none').replace(',', '_')}-{random.randrange(10**6)}"
    binary = bins["baseline"] if link == "pre-link" else bins["socklab"]
    lab = start(binary, tmp, tag, None if link == "pre-link" else link)
    try:
        base = stable_rss_kib(lab.child.pid, 0.5)
        argv = [bins["loadgen"], "idle", "--target", lab.tcp, "--connections", str(conns)]
        argv += ["--sources", sources(conns), "--max-hold-secs", "300"]
        gen = Child(tag + "-gen", argv, tmp)
        gen.expect("connected", 120)
        wait_until(lambda: lab.metrics()["socklab_sessions_online"] >= conns, 60, 0.05)
        online = int(lab.metrics()["socklab_sessions_online"])
        loaded = stable_rss_kib(lab.child.pid)
        gen.close_stdin()
        gen.expect("closed", 60)
        gen.wait(10)
    finally:
        lab.child.stop()
    return {"link": link or "none", "online": online, "kib": (loaded - base) / max(online, 1)}


def nbiot_load(bins: dict[str, str], tmp: Path, devices: int, secs: float) -> dict:
    """`devices` sessions under nbiot, each device sending as fast as it can: the upload
    socklab delivers against the profile's cap, socklab's CPU, and API latency meanwhile."""
    lab = start(bins["socklab"], tmp, f"nbiot-{random.randrange(10**6)}", "nbiot")
    try:
        argv = [bins["loadgen"], "ingest", "--target", lab.tcp, "--devices", str(devices)]
        argv += ["--secs", str(secs), "--msg-bytes", str(MSG_BYTES), "--sources", sources(devices)]
        argv += ["--drain-timeout-secs", "1"]
        gen = Child("nbiot-gen", argv, tmp)
        gen.expect("connected", 60)
        gen.expect("sending", 30)
        warmup = min(4.0, secs / 2)  # the 2 ± 1.5 s latency and the 1 s batches fill first
        time.sleep(warmup)
        b0, c0, t0 = lab.up_bytes(), lab.cpu_s(), time.monotonic()
        api_ms = []
        while time.monotonic() - t0 < secs - warmup - 0.5:
            s = time.monotonic()
            http("GET", f"http://{lab.http}/api/sessions?state=online&limit=100")
            api_ms.append((time.monotonic() - s) * 1000)
            time.sleep(0.2)
        b1, c1, t1 = lab.up_bytes(), lab.cpu_s(), time.monotonic()
        online = int(lab.metrics()["socklab_sessions_online"])
        rss = stable_rss_kib(lab.child.pid, 0.3, 3)
        gen.stop()
    finally:
        lab.child.stop()
    cap = devices * NBIOT_UP_BPS / 8
    rate = (b1 - b0) / (t1 - t0)
    return {"devices": online, "rate_bps": rate * 8, "cap_bps": cap * 8, "ratio": rate / cap,
            "cpu_pct": 100 * (c1 - c0) / (t1 - t0), "rss_mib": rss / 1024,
            "api_median_ms": statistics.median(api_ms), "api_max_ms": max(api_ms)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    p.add_argument(
        "--baseline-bin",
        help="also measure this socklab binary (e.g. one built before the link layer existed)",
    )
    p.add_argument("--rounds", type=int, help="ingest rounds per configuration")
    p.add_argument("--ingest-only", action="store_true", help="only the ingest comparison")
    args = p.parse_args(argv)
    install_cleanup()
    bins = {
        "socklab": default_bin("socklab", "SOCKLAB_BIN"),
        "loadgen": default_bin("socklab-loadgen", "SOCKLAB_LOADGEN_BIN"),
    }
    if args.baseline_bin:
        bins["baseline"] = args.baseline_bin
    extra = ["pre-link"] if args.baseline_bin else []
    for b in bins.values():
        if not Path(b).exists():
            print(f"missing binary {b}: cargo build --release -p socklab -p socklab-bench")
            return 2
    devices, secs, rounds, idle_n = (200, 3.0, 1, 2000) if args.quick else (1000, 10.0, 2, 10000)
    rounds = args.rounds or rounds
    nb_devices, nb_secs = (1000, 8.0) if args.quick else (1000, 15.0)
    raise_nofile(idle_n + 4096)
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="link-bench-") as d:
        tmp = Path(d)
        runs: dict[str, list[dict]] = {k: [] for k in ["none", "perfect", *extra]}
        for _ in range(rounds):  # alternate, so drift hits all alike
            for link, results in runs.items():
                results.append(ingest(bins, tmp, None if link == "none" else link, devices, secs))
        best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items()}
        for k, v in runs.items():
            print(f"{k}: " + ", ".join(f"{r['rate']:,.0f}" for r in v) + " msgs/s")
        ratio = best["perfect"]["rate"] / best["none"]["rate"]
        print(table(
            f"Ingest: {devices} devices x {secs:g} s, 64-byte messages (best of {rounds})",
            ["link", "msgs stored", "seconds", "msgs/s", "vs none"],
            [[k, f"{r['msgs']:,.0f}", f"{r['seconds']:.2f}", f"{r['rate']:,.0f}",
              f"{r['rate'] / best['none']['rate']:.3f}"] for k, r in best.items()],
        ))  # fmt: skip
        if args.ingest_only:
            return 0
        mem = [idle_memory(bins, tmp, link, idle_n) for link in (None, "perfect", "nbiot", *extra)]
        base_kib = mem[0]["kib"]
        print(table(
            f"Memory: {idle_n:,} idle sessions",
            ["link", "online", "KiB/session", "vs none"],
            [[m["link"], f"{m['online']:,}", f"{m['kib']:.2f}", f"{m['kib'] / base_kib:.3f}"]
             for m in mem],
        ))  # fmt: skip
        nb = nbiot_load(bins, tmp, nb_devices, nb_secs)
        print(table(
            f"nbiot: {nb_devices} devices sending as fast as they can ({nb_secs:g} s)",
            ["online", "delivered up", "cap (50 kbit/s each)", "ratio", "socklab CPU",
             "RSS", "API median / max"],
            [[f"{nb['devices']:,}", f"{nb['rate_bps'] / 1e6:.2f} Mbit/s",
              f"{nb['cap_bps'] / 1e6:.2f} Mbit/s", f"{nb['ratio']:.3f}", f"{nb['cpu_pct']:.0f} %",
              f"{nb['rss_mib']:.0f} MiB",
              f"{nb['api_median_ms']:.1f} / {nb['api_max_ms']:.1f} ms"]],
        ))  # fmt: skip
        mem_ratio = mem[1]["kib"] / base_kib
        ok_rate = ratio >= 1 - PERFECT_TARGET
        ok_mem = mem_ratio <= 1 + PERFECT_TARGET
        print(f"perfect vs none: ingest {ratio:.3f} ({'OK' if ok_rate else 'MISSED'}), "
              f"memory {mem_ratio:.3f} ({'OK' if ok_mem else 'MISSED'}); target within 5%")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
