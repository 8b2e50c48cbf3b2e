"""Changing links under load: while 100 usocket devices stream, the listener's link is
changed again and again (each change reaches all 100 session tasks) and the API keeps
answering. Latencies are reported, not asserted beyond a generous sanity bound.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import usocket

DEVICES = 100
LINKS = ["ltem", "cat1,nat_idle=6h", "gprs", "perfect", None, "nbiot", "ltem", None]
SANITY_S = 5.0


def stream(port: int, stop: threading.Event, sent: list[int]) -> None:
    """One device: 64-byte messages every 10 ms until told to stop (or the link stalls it
    past its timeout, which only ends this device early)."""
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", port))
        n = 0
        while not stop.is_set():
            sock.sendall(b"m" * 63 + b"\n")
            n += 1
            time.sleep(0.01)
        sent.append(n)
    except OSError:
        sent.append(-1)
    finally:
        sock.close()


def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    result = call()
    return time.monotonic() - start, result


def test_link_changes_under_load_keep_the_api_responsive(socklab_factory, record_property):
    """100 streaming sessions, 8 listener link changes: every API call answers, the
    sessions carry the new link, and the devices keep streaming."""
    lab = socklab_factory()
    stop = threading.Event()
    sent: list[int] = []
    threads = [
        threading.Thread(target=stream, args=(lab.tcp_port, stop, sent)) for _ in range(DEVICES)
    ]
    for t in threads:
        t.start()
    try:
        lab.wait_for("100 sessions online", lambda: len(lab.sessions("online")) == DEVICES)
        baseline_s = []  # listing while streaming, before any link change
        for _ in LINKS:
            baseline_s.append(timed(lambda: lab.sessions("online"))[0])
            time.sleep(0.1)
        change_s, list_s = [], []
        for link in LINKS:
            elapsed, (status, body) = timed(
                lambda link=link: lab.put("/api/listeners/0/link", {"link": link})
            )
            assert status == 200, body
            change_s.append(elapsed)
            elapsed, online = timed(lambda: lab.sessions("online"))
            list_s.append(elapsed)
            assert len(online) == DEVICES
            assert all((s["link"] or {}).get("spec") == link for s in online), online[0]
            time.sleep(0.3)
    finally:
        lab.put("/api/listeners/0/link", {"link": None})
        stop.set()
        for t in threads:
            t.join(timeout=30)
    report = {
        "list_before_changes_median_ms": round(statistics.median(baseline_s) * 1000, 1),
        "change_median_ms": round(statistics.median(change_s) * 1000, 1),
        "change_max_ms": round(max(change_s) * 1000, 1),
        "list_median_ms": round(statistics.median(list_s) * 1000, 1),
        "list_max_ms": round(max(list_s) * 1000, 1),
    }
    print("API latency while 100 devices stream:", report)
    for key, value in report.items():
        record_property(key, value)
    assert max(change_s + list_s) < SANITY_S, report
    assert len(sent) == DEVICES and sum(n > 0 for n in sent) >= DEVICES * 0.9, sent
