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
    """Sends numbered datagrams, paced so the kernel's receive buffer never overflows (only
    the emulated link may lose them)."""
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        for i in range(DATAGRAMS):
            sock.sendto(b"%05d" % i, ("127.0.0.1", port))
            if i % 50 == 49:
                time.sleep(0.002)
    finally:
        sock.close()


def loss_pattern(lab: Any) -> list[int]:
    """Numbers of the datagrams the link dropped, once all 10,000 are in the history."""
    session = lab.wait_session(lambda s: s["proto"] == "udp")

    def complete() -> list[dict[str, Any]] | None:
        got = lab.messages(session["id"])
        return got if len(got) >= DATAGRAMS else None

    messages = lab.wait_for("every datagram recorded", complete, timeout=60)
    assert len(messages) == DATAGRAMS
    delivered = [m for m in messages if not m["dropped"]]
    assert lab.get(f"/api/sessions/{session['id']}")[1]["msgs_up"] == len(delivered)
    return [int(m["text"]) for m in messages if m["dropped"]]


def test_udp_loss_rate_and_seed(socklab_factory):
    """10% loss with bursts of 2: the observed rate is within bounds, and a second run with
    the same seed drops exactly the same datagrams."""
    spec = f"perfect,loss_up={LOSS},loss_burst={BURST}"
    patterns = []
    for _ in range(2):
        lab = socklab_factory(link=spec, seed=7)
        send_datagrams(lab.udp_port)
        patterns.append(loss_pattern(lab))
        lab.stop()
    rate = len(patterns[0]) / DATAGRAMS
    print(f"observed loss {rate:.4f} (configured {LOSS})")
    assert abs(rate - LOSS) <= TOLERANCE, rate
    assert patterns[0] == patterns[1]
    runs = sum(1 for i, n in enumerate(patterns[0]) if i == 0 or patterns[0][i - 1] != n - 1)
    mean_burst = len(patterns[0]) / runs
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
