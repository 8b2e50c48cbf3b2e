"""Link emulation on UDP with a real usocket device: datagram loss over 10,000 datagrams
matches the configured rate within statistical bounds, and a fixed seed repeats the exact
loss pattern; a UDP NAT drop ends the session.
"""

from __future__ import annotations

import time
from typing import Any

import usocket

DATAGRAMS = 10_000
LOSS = 0.10
BURST = 2.0
# Gilbert–Elliott losses come in bursts, which widens the spread of the observed rate
# beyond the binomial one: sd ≈ sqrt(p(1-p)/n * (2*burst - 1)) ≈ 0.0052 here; allow ~4 sd.
TOLERANCE = 0.02


def send_datagrams(port: int) -> None:
    """Sends numbered datagrams, paced so that the kernel's receive buffer normally never
    overflows (only the emulated link should lose them)."""
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        for i in range(DATAGRAMS):
            sock.sendto(b"%05d" % i, ("127.0.0.1", port))
            if i % 20 == 19:
                time.sleep(0.002)
    finally:
        sock.close()


def fates(lab: Any) -> dict[int, bool]:
    """Whether the link dropped each datagram socklab received, by datagram number, once
    the history stops growing."""
    session = lab.wait_session(lambda s: s["proto"] == "udp")
    seen = {"n": -1, "since": time.monotonic()}

    def settled() -> list[dict[str, Any]] | None:
        got = lab.messages(session["id"])
        if len(got) != seen["n"]:
            seen.update(n=len(got), since=time.monotonic())
        done = len(got) >= DATAGRAMS or time.monotonic() - seen["since"] > 1.0
        return got if done else None

    messages = lab.wait_for("every datagram recorded", settled, timeout=60)
    delivered = sum(not m["dropped"] for m in messages)
    assert lab.get(f"/api/sessions/{session['id']}")[1]["msgs_up"] == delivered
    return {int(m["text"]): m["dropped"] for m in messages}


def test_udp_loss_rate_and_seed(socklab_factory):
    """10% loss with bursts of 2 over 10,000 datagrams: the observed rate is within bounds,
    losses come in bursts, and a second run with the same seed gives the same fates (up to
    the first datagram the kernel itself dropped in either run, should the machine be so
    loaded that socklab fell behind: from there the link sees a different sequence)."""
    spec = f"perfect,loss_up={LOSS},loss_burst={BURST}"
    runs = []
    for _ in range(2):
        lab = socklab_factory(link=spec, seed=7)
        send_datagrams(lab.udp_port)
        runs.append(fates(lab))
        lab.stop()
    for run in runs:
        assert len(run) >= DATAGRAMS * 0.95, len(run)
    same = next((i for i in range(DATAGRAMS) if i not in runs[0] or i not in runs[1]), DATAGRAMS)
    assert same >= DATAGRAMS // 10, same
    assert [runs[0][i] for i in range(same)] == [runs[1][i] for i in range(same)]
    first = [runs[0][i] for i in sorted(runs[0])]
    rate = sum(first) / len(first)
    print(f"observed loss {rate:.4f} over {len(first)} datagrams (configured {LOSS})")
    assert abs(rate - LOSS) <= TOLERANCE, rate
    bursts = sum(1 for i, lost in enumerate(first) if lost and (i == 0 or not first[i - 1]))
    mean_burst = sum(first) / bursts
    assert 1.5 <= mean_burst <= 2.6, mean_burst


def test_udp_nat_drop_ends_the_mapping(socklab_factory):
    """On UDP a NAT idle timeout ends the session (reason nat_dropped); the device's next
    datagram arrives as a new session, as through a new NAT mapping."""
    lab = socklab_factory(link="perfect,nat_idle=0.5s", udp_idle_timeout=30)
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        sock.sendto(b"one", ("127.0.0.1", lab.udp_port))
        first = lab.wait_session(lambda s: s["proto"] == "udp")
        ended = lab.wait_session(lambda s: s["id"] == first["id"] and not s["online"])
        assert ended["end_reason"] == "nat_dropped"
        sock.sendto(b"two", ("127.0.0.1", lab.udp_port))
        second = lab.wait_session(lambda s: s["proto"] == "udp" and s["id"] != first["id"])
        assert second["online"]
    finally:
        sock.close()
