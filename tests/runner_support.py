"""Helpers for the runner tests: start ``usocket-run`` in a subprocess, loopback peers.

Every wait here is bounded: subprocesses are killed after their timeout, peers use socket
timeouts, and reading a subprocess's output line by line stops at a deadline.

Runs use ``--strict-map`` unless a test asks otherwise (``strict=False``), so nothing a test
script does can reach past loopback. Every run starts with one stderr line saying where
``/usr`` and ``/bak`` map; :func:`run_device` and :meth:`Running.finish` check it is there
and return stderr without it (the line itself is in ``paths_line``).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
#: Upper bound for any single run; the scripts themselves finish in well under a second.
RUN_TIMEOUT_S = 30.0


#: Start of the line every run prints first on stderr.
PATHS_PREFIX = "usocket-run: /usr -> "


def runner_cmd(*args: str, strict: bool = True) -> list[str]:
    """The command line of ``python -m usocket run [--strict-map] ARGS``."""
    return [sys.executable, "-m", "usocket", "run", *(["--strict-map"] if strict else []), *args]


def split_paths_line(stderr: str) -> tuple[str, str]:
    """(the /usr-/bak line, the rest of stderr); the line must come first."""
    first, _, rest = stderr.partition("\n")
    assert first.startswith(PATHS_PREFIX), f"no paths line first on stderr: {stderr!r}"
    return first, rest


def run_device(
    *args: str,
    timeout: float = RUN_TIMEOUT_S,
    strict: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``usocket-run ARGS`` to completion and capture its text output.

    ``stderr`` comes without the paths line, which is in ``paths_line`` (empty when the run
    stopped before the script started, e.g. on a bad option).
    """
    result = subprocess.run(
        runner_cmd(*args, strict=strict),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    result.paths_line = ""  # type: ignore[attr-defined]
    if result.stderr.startswith(PATHS_PREFIX):
        result.paths_line, result.stderr = split_paths_line(result.stderr)  # type: ignore[attr-defined]
    return result


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port that was free a moment ago (for scripts that take a fixed port)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A ``usocket-run`` subprocess whose stdout can be awaited line by line."""

    def __init__(self, *args: str, strict: bool = True, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            runner_cmd(*args, strict=strict),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._out = b""

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Block until stdout has a line containing ``text``; return that line."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            for line in self._out.decode(errors="replace").splitlines():
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {text!r} in time; stdout so far: {self._out!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"exited before {text!r}; stdout: {self._out!r}")
                self._out += chunk

    def finish(self, timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
        """Wait for the exit; return (status, all stdout, stderr without the paths line)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"run did not end; stdout {out!r} stderr {err!r}") from None
        _paths, rest = split_paths_line(err.decode(errors="replace"))
        return (self.proc.returncode, (self._out + out).decode(errors="replace"), rest)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


class TcpPeer:
    """A CPython TCP server on 127.0.0.1 that runs ``handler(conn, index)`` per connection.

    It accepts ``connections`` connections one after another in a thread, records every
    line received in ``lines`` and re-raises a handler's error in :meth:`join`.
    """

    def __init__(self, handler, connections: int = 1, timeout: float = 15.0) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(5)
        self.listener.settimeout(timeout)
        self.port = self.listener.getsockname()[1]
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self._handler = handler
        self._connections = connections
        self._timeout = timeout
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            for index in range(self._connections):
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(self._timeout)
                    self._handler(conn, index, self)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc
        finally:
            self.listener.close()

    def read_line(self, conn: socket.socket) -> str:
        """Read one ``\\n``-terminated line (byte by byte: no read-ahead across lines)."""
        data = b""
        while not data.endswith(b"\n"):
            byte = conn.recv(1)
            if not byte:
                break
            data += byte
        line = data.decode().strip()
        self.lines.append(line)
        return line

    def join(self, timeout: float = RUN_TIMEOUT_S) -> None:
        """Wait for the peer to finish and raise what went wrong in it, if anything."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "peer did not finish"
        if self.error is not None:
            raise self.error


def write_script(directory: Path, name: str, source: str) -> Path:
    """Write a device script (dedented by the caller) and return its path."""
    path = directory / name
    path.write_text(source, encoding="utf-8")
    return path
