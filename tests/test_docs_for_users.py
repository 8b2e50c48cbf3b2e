"""The user docs against the program they describe: the first-ten-minutes guide shows what
socklab and the tutorial's device script really print (warnings included), every command-line
flag and console command is documented, relative links lead somewhere, and no internal notes
(issue numbers, implementation markers) are left in the README files and docs/."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, SOCKLAB_BIN

GUIDE = REPO / "docs" / "first-ten-minutes.md"
USER_DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted(REPO.glob("crates/*/README.md")),
]
WAIT_S = 20
TUTORIAL_REPLY = "exact:1234567890=>text:0123456789"

# What differs from one machine or run to the next, in the order it is replaced.
VARYING = [
    (re.compile(re.escape(str(REPO)) + "|/home/me/usocket-rs"), "<clone>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"), "<timestamp>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}Z"), "<time>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"/\S*?socklab\.db"), "<db>"),
    (re.compile(r"(?:[0-9A-F]{2}:){31}[0-9A-F]{2}"), "<sha256>"),
]


def normal(line: str) -> str:
    for pattern, replacement in VARYING:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def guide_blocks() -> list[list[str]]:
    """The guide's fenced blocks, each as its lines."""
    return [
        b.split("\n")
        for b in re.findall(r"^```[a-z]*\n(.*?)\n```$", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    ]


def block_with(text: str) -> list[str]:
    found = [b for b in guide_blocks() if any(text in line for line in b)]
    assert len(found) == 1, f"one block of {GUIDE.name} shows {text!r}"
    return found[0]


class Lines:
    """A process's merged stdout and stderr, read line by line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def until(self, needle: str) -> list[str]:
        """Every line read so far, once one holds `needle` (fails at the end of output)."""
        while not any(needle in line for line in self.seen):
            try:
                line = self.queue.get(timeout=WAIT_S)
            except queue.Empty:
                pytest.fail(f"no {needle!r} in {WAIT_S} s; printed so far: {self.seen}")
            assert line is not None, f"output ended before {needle!r}: {self.seen}"
            self.seen.append(line)
        return self.seen

    def stop(self) -> None:
        """Ends the process (if it still runs) and closes its pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=WAIT_S)
        self.pump.join(timeout=WAIT_S)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def rest(self) -> list[str]:
        """Every line, once the process has closed its output."""
        while True:
            line = self.queue.get(timeout=WAIT_S)
            if line is None:
                return self.seen
            self.seen.append(line)


def assert_shown(expected: list[str], printed: list[str]) -> None:
    """Every line the guide shows is printed, up to what varies between runs."""
    got = {normal(line) for line in printed}
    missing = [line for line in expected if line.strip() and normal(line) not in got]
    assert not missing, f"the guide shows {missing}\nbut socklab printed {printed}"


def socklab(
    tmp_path: Path, *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SOCKLAB_BIN, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"},
    )


def test_first_ten_minutes_guide_shows_what_the_commands_print(tmp_path: Path) -> None:
    """Start, the tutorial's device script, the console's view of it, Ctrl-C, TLS start and
    the mistakes socklab catches: each block of output in the guide is what is printed."""
    db = tmp_path / "socklab.db"
    listen = ["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    proc = socklab(
        tmp_path, *listen, "--db", str(db), "--auto-reply", TUTORIAL_REPLY, stdin=subprocess.PIPE
    )
    out = Lines(proc)
    try:
        assert_shown(block_with("socklab: dashboard http"), out.until("socklab running:"))
        port = int(re.search(r"devices on tcp 127\.0\.0\.1:(\d+)", "\n".join(out.seen)).group(1))

        device = subprocess.run(
            [sys.executable, "examples/use_socket.py", "127.0.0.1", str(port)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=WAIT_S,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )
        assert device.returncode == 0, device.stdout
        # The device's output, its compatibility warning included, line for line.
        shown = block_with("send 12 bytes")
        assert [normal(x) for x in device.stdout.splitlines()] == [normal(x) for x in shown]

        assert_shown(
            block_with("#1 tcp 127.0.0.1:34860 online"), out.until("offline: closed_by_device")
        )
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=WAIT_S) == 0
        assert_shown(block_with("socklab shutting down"), out.rest())
    finally:
        out.stop()

    # The TLS start prints where the certificate is and its fingerprint.
    tls = socklab(
        tmp_path,
        "--tcp",
        "127.0.0.1:0",
        "--tls-tcp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--db",
        str(db),
    )
    tls_out = Lines(tls)
    try:
        printed = tls_out.until("devices trust it with")
        assert_shown(block_with("socklab: TLS certificate SHA-256"), printed)
    finally:
        tls_out.stop()


def test_the_mistakes_the_guide_lists_are_reported_as_shown(tmp_path: Path) -> None:
    mistakes = block_with("$ socklab --db /nonexistent/x.db")
    db = str(tmp_path / "m.db")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    with busy:
        runs = [
            ["--db", "/nonexistent/x.db"],
            [
                "--tcp",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--link",
                "3:gprs",
                "--db",
                db,
            ],
            ["--tcp", f"127.0.0.1:{busy.getsockname()[1]}", "--http", "127.0.0.1:0", "--db", db],
        ]
        printed: list[str] = []
        for args in runs:
            run = Lines(socklab(tmp_path, *args))
            printed += run.rest()
            assert run.proc.wait(timeout=WAIT_S) != 0
            run.stop()
    assert_shown([line for line in mistakes if not line.startswith("$ ")], printed)
    assert not (tmp_path / "m.db").exists(), "a failed start created the database"


def test_every_flag_and_console_command_is_documented(tmp_path: Path) -> None:
    """`socklab --help`'s flags are in the user docs; the console's commands in socklab's README."""
    docs = "\n".join(p.read_text() for p in USER_DOCS)
    usage = subprocess.run(
        [SOCKLAB_BIN, "--help"], capture_output=True, text=True, check=True
    ).stdout
    flags = set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", usage, re.MULTILINE)) - {
        "--help",
        "--version",
    }
    assert len(flags) > 20, usage
    assert not [f for f in sorted(flags) if f not in docs], "flags missing from README.md and docs/"

    proc = socklab(
        tmp_path,
        "--tcp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--db",
        str(tmp_path / "c.db"),
        stdin=subprocess.PIPE,
    )
    console = Lines(proc)
    try:
        assert proc.stdin is not None
        proc.stdin.write("help\n")
        proc.stdin.flush()
        shown = "\n".join(console.until("stop PID|all"))
    finally:
        console.stop()
    commands = set(re.findall(r"^  ([a-z]+)\b", shown, re.MULTILINE))
    assert {"send", "snippet", "every", "label", "listen", "connect"} <= commands, shown
    readme = (REPO / "crates" / "socklab" / "README.md").read_text()
    assert not [c for c in sorted(commands) if f"`{c}" not in readme], "console commands missing"


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_user_docs_hold_no_internal_notes_and_no_dead_links(doc: Path) -> None:
    text = doc.read_text()
    notes = re.findall(r"(?i)\bissue\s*#?\d+|\[implemented\b|\bTODO\b|\bFIXME\b|socklab-core", text)
    assert not notes, f"{doc.name}: {notes}"
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s) and mailto links
        assert (doc.parent / target).exists(), (
            f"{doc.name} links to {target}, which is not in the repository"
        )
