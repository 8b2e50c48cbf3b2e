"""What the benchmarks that run usocket-rs and CPython side by side share: timing one run
(wall and this process's CPU time), keeping the best of alternating runs, and printing the
table of ratios with a target column (a missed target is marked MISS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Stopwatch:
    """Wall time and this process's CPU time since it was made."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def stop(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) since the start."""
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def best_of(
    reps: int, runs: dict[str, Callable[[], tuple[float, float]]]
) -> dict[str, tuple[float, float]]:
    """Runs each of `runs` (name: a function returning (wall, CPU) seconds) `reps` times,
    alternating between them so a change in the machine's load affects all alike, and
    returns each name's best wall time and best CPU time (taken separately)."""
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            wall, cpu = run()
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


@dataclass
class Row:
    """One line of the table: the baseline's and the subject's figure, their ratio
    (above 1.00: the subject is faster) and the ratio aimed for, if any."""

    name: str
    baseline: str
    subject: str
    ratio: float
    target: float | None = None


def print_table(title: str, columns: Sequence[str], rows: Sequence[Row], note: str) -> None:
    """Prints `rows` under `title`; `columns` names the baseline and the subject."""
    width = max(30, *(len(r.name) for r in rows))
    print(title)
    print(f"{'workload':<{width}} {columns[0]:>14} {columns[1]:>14} {'ratio':>7} {'target':>7}")
    for r in rows:
        goal = f">={r.target:.2f}" if r.target else ""
        miss = "  MISS" if r.target and r.ratio < r.target else ""
        line = f"{r.name:<{width}} {r.baseline:>14} {r.subject:>14} {r.ratio:>7.2f} {goal:>7}{miss}"
        print(line.rstrip())
    print(note)
