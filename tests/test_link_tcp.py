"""Link emulation on TCP with real usocket devices over loopback: each profile's round-trip
time lies in its latency band, the bandwidth cap holds, and the order of a byte stream
survives jitter and outages.

Bounds are generous (they turn a broken link into a failure, not a slow machine into one);
`--seed` makes jitter repeatable.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import usocket
from conftest import recv_exactly

# Round-trip bands in seconds: up + down one-way delay, each latency ± jitter, widened by a
# scheduling allowance; gprs may hit a 2 s stall, nbiot batches deliveries to 1 s steps.
SLACK_S = 0.25
RTT_BANDS: dict[str, tuple[float, float]] = {
    "perfect": (0.0, 0.1 + SLACK_S),
    "cat1": (2 * 0.050, 2 * 0.110 + SLACK_S),
    "ltem": (2 * 0.100, 2 * 0.200 + SLACK_S),
    "gprs": (2 * 0.400, 2 * 0.800 + 2.0 + SLACK_S),
    "nbiot": (2 * 0.500, 2 * 3.500 + 2 * 1.0 + SLACK_S),
}
ROUND_TRIPS = 3  # nbiot's round trips take seconds: few samples


def connect(port: int, timeout: float = 20.0) -> Any:
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def measure_rtts(sock: Any, out: list[float]) -> None:
    """Echo round trips of a short line (socklab runs with --echo)."""
    for i in range(ROUND_TRIPS):
        line = b"rtt %d\n" % i
        start = time.monotonic()
        sock.sendall(line)
        assert recv_exactly(sock, len(line)) == line
        out.append(time.monotonic() - start)


def test_profile_round_trips_lie_in_their_bands(socklab_factory):
    """Every built-in profile, one listener each, measured at the same time: each round
    trip lies inside the profile's band, and socklab shows each session's link."""
    names = list(RTT_BANDS)
    extra = ["--tcp", "127.0.0.1:0"] * (len(names) - 1)
    lab = socklab_factory(*extra, echo=True, seed=1, link=[f"{i}:{n}" for i, n in enumerate(names)])
    socks = [connect(port) for port in lab.tcp_ports]
    try:
        online = lab.wait_for(
            "five sessions", lambda: len(s := lab.sessions("online")) == len(names) and s
        )
        by_listener = {s["listener_id"]: s["link"] for s in online}
        for i, name in enumerate(names):
            assert by_listener[i] == {"spec": name, "state": "ok"}
        rtts: dict[str, list[float]] = {n: [] for n in names}
        threads = [
            threading.Thread(target=measure_rtts, args=(socks[i], rtts[n]))
            for i, n in enumerate(names)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for sock in socks:
            sock.close()
    print({n: [round(r, 3) for r in v] for n, v in rtts.items()})
    for name in names:
        low, high = RTT_BANDS[name]
        assert len(rtts[name]) == ROUND_TRIPS, f"{name}: {rtts[name]}"
        for rtt in rtts[name]:
            assert low <= rtt <= high, f"{name}: rtt {rtt:.3f} s outside {low}..{high} s"


def test_bandwidth_cap_holds_both_ways(socklab_factory):
    """A 400 kbit/s cap each way over a 3 s transfer: the rate the device receives at and
    the rate socklab stores the device's upload at are within 10% of the cap."""
    rate_bps = 400_000
    size = 150_000  # 3 s at the cap
    lab = socklab_factory(link=f"perfect,up={rate_bps // 1000}k,down={rate_bps // 1000}k")
    sock = connect(lab.tcp_port)
    try:
        session = lab.wait_session(lambda s: s["online"])
        status, body = lab.post(f"/api/sessions/{session['id']}/send", {"hex": "ab" * size})
        assert status == 200, body
        upload = threading.Thread(target=sock.sendall, args=(b"u" * size,))
        upload.start()
        got, first_len, t_first = 0, 0, 0.0
        while got < size:
            chunk = sock.recv(65536)
            assert chunk
            if not got:
                first_len, t_first = len(chunk), time.monotonic()
            got += len(chunk)
        down_rate = (size - first_len) * 8 / (time.monotonic() - t_first)
        upload.join(timeout=30)

        def stored_up() -> list[dict[str, Any]] | None:
            up = [m for m in lab.messages(session["id"]) if m["direction"] == "up"]
            return up if sum(m["len"] for m in up) == size else None

        up = lab.wait_for("the whole upload stored", stored_up, timeout=30)
        span_s = (up[-1]["ts_ms"] - up[0]["ts_ms"]) / 1000
        up_rate = (size - up[0]["len"]) * 8 / span_s
    finally:
        sock.close()
    print(f"down {down_rate:.0f} bit/s, up {up_rate:.0f} bit/s (cap {rate_bps})")
    assert abs(down_rate - rate_bps) <= 0.1 * rate_bps, down_rate
    assert abs(up_rate - rate_bps) <= 0.1 * rate_bps, up_rate


def test_jitter_and_outage_keep_tcp_order(socklab_factory):
    """Under LTE-M jitter, with an outage injected mid-stream, the echo of 200 numbered
    lines comes back complete and in order, and nothing arrives during the outage."""
    lab = socklab_factory(echo=True, seed=3, link="ltem")
    sock = connect(lab.tcp_port)
    try:
        session = lab.wait_session(lambda s: s["online"])
        lines = [b"line %03d\n" % i for i in range(200)]
        sock.sendall(b"".join(lines[:100]))
        status, body = lab.post(
            f"/api/sessions/{session['id']}/fault", {"fault": "outage", "seconds": 1.5}
        )
        assert status == 200 and body["link"]["state"] == "outage", body
        outage_start = time.monotonic()
        sock.sendall(b"".join(lines[100:]))
        echoed = recv_exactly(sock, sum(len(x) for x in lines))
        assert time.monotonic() - outage_start >= 1.4
        assert echoed == b"".join(lines)
        assert lab.get(f"/api/sessions/{session['id']}")[1]["link"]["state"] == "ok"
    finally:
        sock.close()
