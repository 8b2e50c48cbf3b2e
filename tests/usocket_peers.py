"""Loopback peers and helpers for the usocket tests (CPython's own sockets on the far end).

Every peer runs in a daemon thread with socket timeouts, so a failing test cannot hang.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import usocket

REPO = Path(__file__).resolve().parent.parent
PEER_TIMEOUT_S = 10.0


def open_descriptors() -> set[tuple[int, str]]:
    """The descriptors this process has open, each as (number, what it points at)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            found.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
    return found


def opened_since(before: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Descriptors open now that were not open at `before`.

    Descriptors that other threads closed meanwhile (a finished peer, a collected
    socket from an earlier test) do not count, so only what was opened since shows.
    """
    return open_descriptors() - before


class Peer:
    """A CPython TCP listener on loopback whose accepted connections a handler serves."""

    def __init__(
        self, handler: Callable[[socket.socket], None], host: str = "127.0.0.1", count: int = 1
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.settimeout(PEER_TIMEOUT_S)
        self.listener.bind((host, 0))
        self.listener.listen(8)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self.received = bytearray()
        self._thread = threading.Thread(target=self._serve, args=(handler, count), daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def _serve(self, handler: Callable[[socket.socket], None], count: int) -> None:
        try:
            for _ in range(count):
                conn, _ = self.listener.accept()
                conn.settimeout(PEER_TIMEOUT_S)
                with conn:
                    handler(conn)
        except BaseException as e:  # noqa: BLE001 (reported by join())
            self.errors.append(e)

    def join(self) -> None:
        """Wait for the handler(s) to finish, re-raising their failure."""
        self._thread.join(PEER_TIMEOUT_S + 5)
        self.listener.close()
        if self.errors:
            raise self.errors[0]


def echo_handler(conn: socket.socket) -> None:
    """Echo everything until the client closes."""
    while data := conn.recv(65536):
        conn.sendall(data)


def send_then_close(payload: bytes) -> Callable[[socket.socket], None]:
    """A handler that sends ``payload`` then closes (the client sees a FIN)."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(payload)

    return handler


def tutorial_handler(received: bytearray) -> Callable[[socket.socket], None]:
    """The tutorial's server: read the 12-byte upload, answer ``0123456789``."""

    def handler(conn: socket.socket) -> None:
        while len(received) < 12:
            chunk = conn.recv(64)
            if not chunk:
                break
            received.extend(chunk)
        conn.sendall(b"0123456789")
        conn.recv(64)  # wait for the client's close

    return handler


def hold_open(stop: threading.Event) -> Callable[[socket.socket], None]:
    """A handler that keeps the connection open, silent, until ``stop`` is set."""

    def handler(conn: socket.socket) -> None:
        stop.wait(PEER_TIMEOUT_S)

    return handler


def refused_port() -> int:
    """A loopback port with nothing listening (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def full_backlog() -> Iterator[tuple[str, int]]:
    """A loopback listener whose accept queue is full, so a new connect never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                f.connect(listener.getsockname())
            fillers.append(f)
        yield listener.getsockname()
    finally:
        for f in fillers:
            f.close()
        listener.close()


@contextlib.contextmanager
def usocket_pair(host: str = "127.0.0.1") -> Iterator[tuple[usocket.socket, socket.socket]]:
    """A connected (usocket client, CPython server-side connection) pair."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = usocket.socket(usocket.AF_INET6 if ":" in host else usocket.AF_INET)
        client.connect(listener.getsockname()[:2])
        conn, _ = listener.accept()
        conn.settimeout(PEER_TIMEOUT_S)
        try:
            yield client, conn
        finally:
            client.close()
            conn.close()


@contextlib.contextmanager
def profile(name: str) -> Iterator[None]:
    """Run the body under usocket profile ``name``, restoring the previous one after."""
    before = usocket._profile()
    usocket._apply_profile(name)
    try:
        yield
    finally:
        usocket._apply_profile(before)


def run_python(code: str, timeout: float = 30.0, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (for process-wide behaviour) and capture output."""
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def local_addr(sock: usocket.socket) -> tuple:
    """The local address of a usocket socket (the device API has no getsockname)."""
    with socket.socket(fileno=os.dup(sock.fileno())) as view:
        return view.getsockname()


def sockopt(sock: usocket.socket, level: int, name: int) -> int:
    """Read an int socket option of a usocket socket through CPython."""
    with socket.socket(fileno=os.dup(sock.fileno())) as view:
        return view.getsockopt(level, name)
