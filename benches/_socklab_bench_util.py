"""Helpers for the socklab benches: child processes, socklab launches, /proc readings, HTTP, tables.

Every child is started with a parent-death signal (it dies if this process dies, even on
SIGKILL) and registered so that normal exit, an exception or Ctrl-C stops it; every wait
here has a deadline.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence  # noqa: UP035 - Python 3.9 needs typing here

ROOT = Path(__file__).resolve().parent.parent

_CHILDREN: list[Child] = []
# `setpriv --pdeathsig KILL` makes the kernel kill a child when this process dies, even by
# SIGKILL, without a preexec_fn (unsafe in a process with threads).
_SETPRIV = shutil.which("setpriv")


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raises RLIMIT_NOFILE for this process (and so for its children) as far as allowed.

    Raising the hard limit needs CAP_SYS_RESOURCE; without it the soft limit goes up to the
    hard one. Returns the (soft, hard) limits in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(wanted, hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Child:
    """A child process whose stdout is read line by line on a thread; JSON lines are queued."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, stdin_pipe: bool = True):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.stderr"
        prefix = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        with open(self.log_path, "wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                prefix + self.argv,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.text: list[str] = []
        threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True).start()
        _CHILDREN.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            try:
                value = json.loads(line)
            except ValueError:
                self.text.append(line)
                continue
            if isinstance(value, dict):
                self.lines.put(value)

    def expect(self, phase: str | tuple[str, ...], timeout: float) -> dict[str, Any]:
        """The next JSON line whose "phase" is `phase` (or one of them); other lines before
        it are skipped."""
        phases = (phase,) if isinstance(phase, str) else phase
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no {phase!r} line within {timeout:.0f} s")
            try:
                value = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise RuntimeError(
                        f"{self.name} exited ({self.proc.returncode}) before {phase!r}; "
                        f"stderr: {tail(self.log_path)}"
                    ) from None
                continue
            if value.get("phase") in phases:
                return value

    def send_line(self, line: str) -> None:
        """Writes one line to the child's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """Closes the child's stdin (the load generator's 'release' signal)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.close_stdin()
        if self in _CHILDREN:
            _CHILDREN.remove(self)
        return self.proc.returncode

    def wait(self, timeout: float) -> int | None:
        """Waits for the child to exit by itself; kills it after `timeout`."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.stop(1.0)


def stop_all() -> None:
    """Stops every child still running (atexit, signals)."""
    for child in _CHILDREN.copy():  # stop() removes from the list
        try:
            child.stop(5.0)
        except Exception:  # noqa: BLE001 - best effort during teardown
            child.proc.kill()


def install_cleanup() -> None:
    """Stops the children at exit, and turns SIGTERM/SIGHUP into a normal exit."""
    atexit.register(stop_all)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (a background
    # job of a non-interactive shell), so the children are always stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def stable_rss_kib(pid: int, settle_s: float = 1.0, timeout_s: float = 10.0) -> int:
    """VmRSS once it has stopped moving (two readings `settle_s` apart within 0.5%)."""
    deadline = time.monotonic() + timeout_s
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        now = rss_kib(pid)
        if abs(now - last) <= max(16, last // 200):
            return now
        last = now
    return last


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows counter: SYNs dropped because a listener's accept
    queue was full (each costs that client a 1 s retransmit). System-wide, not per process."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return 0


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls `pred` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def launch_socklab(
    bin_: str, tmp: Path, tag: str, extra: Sequence[str] = ()
) -> tuple[Child, dict[str, Any]]:
    """Start socklab on loopback port 0 with a database in `tmp` and wait (30 s at most)
    for its ready file: the child and the bound addresses ({"tcp": [...], "http": ...})."""
    ready = tmp / f"{tag}.ready.json"
    argv = [bin_, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--quiet"]
    argv += ["--db", str(tmp / f"{tag}.db"), "--ready-file", str(ready), *extra]
    child = Child(tag, argv, tmp, stdin_pipe=False)
    info: dict[str, Any] = {}

    def is_ready() -> bool:
        try:
            info.update(json.loads(ready.read_text()))
            return bool(info.get("tcp"))
        except (OSError, ValueError):
            return child.proc.poll() is not None

    if not wait_until(is_ready, 30, 0.05) or not info:
        raise RuntimeError(f"socklab did not become ready (see {child.log_path})")
    return child, info


def default_bin(name: str, env: str) -> str:
    """A binary: $ENV if set, else $CARGO_TARGET_DIR (or <repo>/target)/release/NAME."""
    if os.environ.get(env):
        return os.environ[env]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / name)


@dataclass
class Lab:
    """A running socklab started by `start_lab`: its process, addresses and database."""

    name: str
    child: Child
    tcp: str
    http: str
    db: Path

    def metrics(self) -> dict[str, float]:
        return prometheus(http("GET", f"http://{self.http}/metrics"))

    def up_bytes(self) -> float:
        return self.metrics()['socklab_bytes_total{direction="up"}']

    def online(self) -> int:
        return int(self.metrics()["socklab_sessions_online"])

    def cpu_s(self) -> float:
        """User + system CPU seconds the process used so far."""
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_lab(bin_: str, tmp: Path, tag: str, extra: Sequence[str] = ()) -> Lab:
    """`launch_socklab` as a `Lab` (first TCP listener, HTTP address, database)."""
    child, info = launch_socklab(bin_, tmp, tag, extra)
    return Lab(tag, child, info["tcp"][0], info["http"], tmp / f"{tag}.db")


def http(method: str, url: str, body: dict | None = None, timeout: float = 10.0) -> Any:
    """One HTTP request to a loopback URL; returns the parsed JSON or the text."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        if resp.headers.get_content_type() == "application/json":
            return json.loads(raw)
        return raw.decode()


def prometheus(text: str) -> dict[str, float]:
    """Parses Prometheus text into {"name{labels}": value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def fmt(value: Any) -> str:
    """Formats a table cell: thousands separators, 2-3 significant decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(headers), rule, *(line(r) for r in cells)])


def verdict(ok: bool | None) -> str:
    """PASS/MISS for a target, '-' when there is none."""
    return "-" if ok is None else ("PASS" if ok else "MISS")


def machine_line() -> str:
    """One line about the machine and its current load (benchmarks share it)."""
    load = os.getloadavg()
    ports = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (
        f"cpus {os.cpu_count()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
        f"ip_local_port_range {ports[0]}-{ports[1]}, RLIMIT_NOFILE {soft}/{hard}"
    )
