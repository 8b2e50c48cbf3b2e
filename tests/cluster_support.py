"""Helpers for the cluster tests: a real nats-server on a free loopback port, and socklab
nodes joined to it (`--cluster nats://127.0.0.1:PORT --node NAME`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Socklab, spawn_logged, stop_process, wait_started

NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/sbin/nats-server")


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    """One nats-server process on 127.0.0.1; `stop` and `start` keep the port. `config`:
    a nats-server configuration file (TLS, authorization) used as well."""

    def __init__(self, workdir: Path, config: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = config
        self.log_path = workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        config = ["-c", str(self.config)] if self.config else []
        cmd = [NATS_SERVER, *config, "-a", "127.0.0.1", "-p", str(self.port)]
        self.proc = spawn_logged(cmd, self.log_path)
        wait_started(self.proc, self.listening, "nats-server", self.log)

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, "nats-server", self.log)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    """A nats-server for this test only."""
    if not os.path.exists(NATS_SERVER) and not os.environ.get("CI"):
        pytest.skip("nats-server not installed (scripts/install-system-deps.sh installs it)")
    server = Nats(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def node_factory(nats: Nats, socklab_factory: Callable[..., Socklab]) -> Callable[..., Socklab]:
    """Starts a socklab node named NAME in the test's cluster: `node("a", echo=True)`."""

    def start(name: str, *args: str, **flags: Any) -> Socklab:
        lab = socklab_factory(*args, cluster=nats.url, node=name, **flags)
        lab.node = name  # type: ignore[attr-defined]
        return lab

    return start


@pytest.fixture
def devices() -> Iterator[Callable[[int], socket.socket]]:
    """Connects plain TCP devices to 127.0.0.1:PORT; closes them at the end of the test."""
    opened: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        opened.append(connect_device(port))
        return opened[-1]

    yield connect
    for sock in opened:
        sock.close()


def wait_until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Polls `check` until truthy; the limit turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cluster_sessions(lab: Socklab, state: str = "online") -> dict[str, Any]:
    """The cluster listing as `lab` answers it (status 200 asserted)."""
    status, body = lab.get(f"/api/sessions?state={state}&limit=1000")
    assert status == 200, body
    return body


def sees_nodes(lab: Socklab, names: set[str]) -> bool:
    """Whether `lab` hears every node in `names` (itself included) and they answer."""
    status, body = lab.get("/api/cluster")
    assert status == 200, body
    reachable = {n["node"] for n in body["nodes"] if n["reachable"]}
    return body["connected"] and names <= reachable


def connect_device(port: int, timeout: float = 20.0) -> socket.socket:
    """A plain TCP device on 127.0.0.1:PORT."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock
