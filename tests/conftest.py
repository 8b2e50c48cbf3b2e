"""Shared fixtures: a real socklab process per test (`socklab`, `socklab_factory`).

socklab runs from SOCKLAB_BIN (default <repo>/target/release/socklab) with every listener on
127.0.0.1 port 0, a temporary database, --quiet, and --ready-file; the fixture reads the bound
ports from the ready file. HTTP helpers use urllib and return (status, parsed JSON).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SOCKLAB_BIN = os.environ.get("SOCKLAB_BIN", str(REPO / "target" / "release" / "socklab"))
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0

_UNSET: Any = object()


@pytest.fixture(autouse=True, scope="session")
def _default_database_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every socklab a test starts gets --db in a temporary directory; should one be started
    without it, its default database (under XDG_DATA_HOME) lands here too, never in the
    user's ~/.local/share/socklab."""
    data_home = tmp_path_factory.mktemp("xdg-data")
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data_home)
    yield data_home
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


def spawn_logged(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Starts a server process (stdin closed) with its output appended to `log_path`."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    finally:
        log.close()


def wait_started(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], name: str, log: Callable[[], str]
) -> None:
    """Waits up to START_TIMEOUT_S for `ready()`; a process that exits first, or is not
    ready in time (it is then killed), raises RuntimeError with its log."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{name} not ready after {START_TIMEOUT_S} s:\n{log()}")
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes], sig: int, name: str, log: Callable[[], str]) -> int:
    """Signals a server process and waits for it; one that ignores the signal is killed
    and fails the test. Returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{name} ignored signal {sig}:\n{log()}") from None
    return proc.returncode


def _flags(flags: dict[str, Any]) -> list[str]:
    """Turns keyword arguments into CLI flags: echo=True -> --echo, a list repeats the flag."""
    out: list[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            for item in value:
                out += [flag, str(item)]
        else:
            out += [flag, str(value)]
    return out


class Socklab:
    """One socklab process and HTTP helpers for its API."""

    def __init__(
        self, workdir: Path, args: list[str], db: Path | None = None, http: str = "127.0.0.1:0"
    ) -> None:
        self.workdir = workdir
        self.http = http
        self.db = db or workdir / "socklab.db"
        self.ready_file = workdir / "ready.json"
        self.log_path = workdir / "socklab.log"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.start()

    def start(self) -> None:
        """Starts the process and waits for its ready file."""
        if self.ready_file.exists():
            self.ready_file.unlink()
        cmd = [
            SOCKLAB_BIN,
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--http",
            self.http,
            "--db",
            str(self.db),
            "--quiet",
            "--ready-file",
            str(self.ready_file),
            *self.args,
        ]
        self.proc = spawn_logged(cmd, self.log_path)
        wait_started(self.proc, self.ready_file.exists, "socklab", self.log)
        ready = json.loads(self.ready_file.read_text())
        self.ready = ready
        # A wildcard bind is reached through loopback.
        self.http_url = "http://" + ready["http"].replace("0.0.0.0:", "127.0.0.1:")
        self.tcp_ports = [int(a.rsplit(":", 1)[1]) for a in ready["tcp"]]
        self.udp_ports = [int(a.rsplit(":", 1)[1]) for a in ready["udp"]]
        self.tcp_port = self.tcp_ports[0] if self.tcp_ports else 0
        self.udp_port = self.udp_ports[0] if self.udp_ports else 0
        self.token: str | None = ready["token"]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: Any = _UNSET,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One API call; returns (status, parsed JSON or text). `token=None` sends none."""
        token = self.token if token is _UNSET else token
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
            err.close()
        if "json" in ctype:
            return status, json.loads(raw)
        return status, raw.decode(errors="replace")

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, {} if json is None else json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("PUT", path, {} if json is None else json, **kw)

    def sessions(self, state: str = "all") -> list[dict[str, Any]]:
        """Sessions, newest first (first page of up to 1000)."""
        status, body = self.get(f"/api/sessions?state={state}&limit=1000")
        assert status == 200, body
        return body["sessions"]

    def messages(self, session_id: int) -> list[dict[str, Any]]:
        """Every message of a session, oldest first."""
        out: list[dict[str, Any]] = []
        while True:
            status, body = self.get(
                f"/api/sessions/{session_id}/messages?limit=1000&offset={len(out)}"
            )
            assert status == 200, body
            out += body["messages"]
            if len(out) >= body["total"] or not body["messages"]:
                return out

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Polls `check` until it returns something truthy (a condition, not a timing test:
        the limit only turns a hang into a clear failure)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}\n--- socklab log ---\n{self.log()}"
                )
            time.sleep(0.02)

    def wait_session(
        self,
        check: Callable[[dict[str, Any]], bool],
        what: str = "a session",
        timeout: float = 20.0,
    ) -> dict:
        """The newest session satisfying `check`, waiting for it to appear."""
        return self.wait_for(
            what, lambda: next((s for s in self.sessions() if check(s)), None), timeout
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signals the process and waits for it; returns its exit status."""
        if self.proc is None:
            return self.returncode or 0
        self.returncode = stop_process(self.proc, sig, "socklab", self.log)
        self.proc = None
        return self.returncode

    def restart(self) -> None:
        """Stops (SIGTERM) and starts again on the same database (ports change)."""
        self.stop()
        self.start()


@pytest.fixture
def socklab_factory(tmp_path: Path) -> Iterator[Callable[..., Socklab]]:
    """Starts socklab processes with extra CLI arguments: positional strings are passed as
    they are, keywords become flags (echo=True -> --echo, auto_reply=[...] repeats). `db=`
    reuses a database; `http=` replaces the default --http 127.0.0.1:0. All are stopped at the end of the test."""
    started: list[Socklab] = []

    def start(
        *args: str, db: Path | None = None, http: str = "127.0.0.1:0", **flags: Any
    ) -> Socklab:
        workdir = tmp_path / f"socklab{len(started)}"
        workdir.mkdir()
        lab = Socklab(workdir, [*args, *_flags(flags)], db=db, http=http)
        started.append(lab)
        return lab

    yield start
    for lab in started:
        try:
            lab.stop()
        except AssertionError:
            pass


@pytest.fixture
def socklab(socklab_factory: Callable[..., Socklab]) -> Socklab:
    """A running socklab with default settings (TCP, UDP and HTTP on loopback port 0)."""
    return socklab_factory()


class ConsoleSocklab:
    """A socklab whose console a test drives: commands go to its stdin, and its stdout
    (live events and answers, stderr included) is read line by line."""

    def __init__(self, workdir: Path, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [SOCKLAB_BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"]
            + ["--db", str(workdir / "console.db"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        banner = self.read_until("devices on tcp ")
        self.tcp_port = int(banner.split("devices on tcp ", 1)[1].split(",")[0].rsplit(":", 1)[1])

    def say(self, line: str) -> None:
        """Types one command line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_until(self, needle: str) -> str:
        """Reads lines until one contains `needle`, and returns it (the test's own timeout
        ends a hang; a process that exits first fails at once)."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, f"socklab stdout ended before {needle!r}"
            if needle in line:
                return line

    def end_input(self) -> None:
        """Closes stdin (EOF): the console stops taking commands, the server keeps running."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self) -> int:
        """Terminates the process; returns its exit status."""
        self.end_input()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        finally:
            if self.proc.stdout is not None and not self.proc.stdout.closed:
                self.proc.stdout.close()


@pytest.fixture
def console_socklab(tmp_path: Path) -> Iterator[Callable[..., ConsoleSocklab]]:
    """Starts socklab with its console on pipes (`console_socklab("--echo")`); stopped at the
    end of the test."""
    started: list[ConsoleSocklab] = []

    def start(*args: str) -> ConsoleSocklab:
        workdir = tmp_path / f"console{len(started)}"
        workdir.mkdir()
        lab = ConsoleSocklab(workdir, list(args))
        started.append(lab)
        return lab

    yield start
    for lab in started:
        if lab.proc.poll() is None:
            lab.proc.kill()
        lab.stop()


DEVICE_TIMEOUT_S = 20


def recv_exactly(sock: Any, n: int) -> bytes:
    """Reads exactly n bytes from a usocket TCP socket (which has a timeout set)."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


@pytest.fixture
def tcp_device() -> Iterator[Callable[[int], Any]]:
    """Connects usocket TCP devices to 127.0.0.1:PORT (timeout set); closes them at the end."""
    import usocket

    opened: list[Any] = []

    def connect(port: int) -> Any:
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        sock.settimeout(DEVICE_TIMEOUT_S)
        sock.connect(("127.0.0.1", port))
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()
