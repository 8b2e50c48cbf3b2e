"""Threads and blocking: the GIL is released, close() from another thread wakes blocked
calls with OSError(9), Ctrl-C interrupts a blocking recv, and the thread-stop hook."""

from __future__ import annotations

import gc
import signal
import threading
import time

import pytest
import usocket
from usocket_peers import full_backlog, open_descriptors, opened_since, run_python, usocket_pair


def blocked_call(fn):
    """Run fn in a thread; return (thread, result box)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (the test inspects it)
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_reader_thread_while_main_thread_sends():
    """The tutorial's pattern: a thread blocked in recv does not stall the main thread."""
    with usocket_pair() as (cli, conn):
        t, box = blocked_call(lambda: cli.recv(100))
        time.sleep(0.2)
        assert t.is_alive()
        for _ in range(50):  # the main thread keeps running Python and sending
            cli.send(b"x")
        assert conn.recv(100)
        conn.sendall(b"reply")
        t.join(5)
        assert box == {"value": b"reply"}


@pytest.mark.parametrize("what", ["recv", "accept", "connect", "recvfrom-udp", "readline"])
def test_close_from_another_thread_wakes_a_blocked_call(what):
    """close() wakes recv/accept/connect (and UDP recvfrom, readline) with OSError(9)."""
    with usocket_pair() as (cli, _conn), full_backlog() as unreachable:
        if what in ("recv", "readline"):
            s = cli
            fn = s.recv if what == "recv" else (lambda: s.readline())
            call = (lambda: fn(10)) if what == "recv" else fn
        elif what == "accept":
            s = usocket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            call = s.accept
        elif what == "connect":
            s = usocket.socket()
            call = lambda: s.connect(unreachable)
        else:
            s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            call = lambda: s.recvfrom(10)
        t, box = blocked_call(call)
        time.sleep(0.3)
        assert t.is_alive(), box
        s.close()
        t.join(2)
        assert not t.is_alive()
        err = box.get("error")
        assert type(err) is OSError and err.args == (9,), box


def test_dropped_socket_releases_its_descriptor():
    """A socket garbage-collected without close() closes its fd."""
    before = open_descriptors()
    socks = [usocket.socket() for _ in range(50)]
    new_sockets = [target for _, target in opened_since(before) if target.startswith("socket:")]
    assert len(new_sockets) == 50
    del socks
    gc.collect()
    assert opened_since(before) == set()


CTRL_C_SCRIPT = r"""
import os, signal, socket, threading, time, usocket
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(1)
s = usocket.socket(); s.connect(lst.getsockname()); conn, _ = lst.accept()
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    s.recv(10)
    print("no interrupt")
except KeyboardInterrupt:
    print("KeyboardInterrupt after %.1f s" % (time.monotonic() - t0))
"""


def test_ctrl_c_interrupts_a_blocking_recv():
    """SIGINT during a blocking recv in the main thread raises KeyboardInterrupt."""
    r = run_python(CTRL_C_SCRIPT, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("KeyboardInterrupt after"), r.stdout + r.stderr


SIGNAL_IN_LAST_SLICE_SCRIPT = r"""
import signal, socket, usocket
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(1)
s = usocket.socket(); s.connect(lst.getsockname()); conn, _ = lst.accept()
s.settimeout(0.1)  # the whole wait is one slice, the last one before the deadline
signal.setitimer(signal.ITIMER_REAL, 0.01)
try:
    s.recv(10)
    print("no error")
except Alarm:
    print("alarm")
except OSError as e:
    print("OSError", e.args)
"""


def test_a_signal_in_the_last_slice_of_a_timed_wait_runs_its_handler_at_once():
    """A timed recv skips the signal check in its last slice, except when a signal
    interrupted it: the handler's exception comes out of recv, not OSError(110) after it."""
    r = run_python(SIGNAL_IN_LAST_SLICE_SCRIPT, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "alarm", r.stdout + r.stderr


def test_ctrl_c_interrupts_a_blocking_accept_from_outside():
    """SIGINT sent by another process interrupts a blocking accept."""
    import subprocess
    import sys

    code = (
        "import usocket\n"
        "s = usocket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "print('ready', flush=True)\n"
        "try:\n    s.accept()\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
        assert out.strip() == "interrupted"
    finally:
        p.kill()
        p.wait()


def test_thread_stop_hook_ends_a_blocked_recv_with_systemexit():
    """_request_thread_stop(ident) makes that thread's blocking call raise SystemExit."""
    with usocket_pair() as (cli, _):
        idents: dict = {}

        def target():
            idents["me"] = threading.get_ident()
            return cli.recv(10)

        t, box = blocked_call(target)
        time.sleep(0.3)
        assert t.is_alive()
        usocket._usocket._request_thread_stop(idents["me"])
        try:
            t.join(2)
            assert not t.is_alive()
            assert isinstance(box.get("error"), SystemExit)
        finally:
            usocket._usocket._clear_thread_stop(idents["me"])


def test_thread_stop_mark_applies_to_later_calls_until_cleared():
    """A marked thread's next blocking call stops at once; clearing the mark restores it."""
    with usocket_pair() as (cli, conn):
        me = threading.get_ident()
        usocket._usocket._request_thread_stop(me)
        try:
            with pytest.raises(SystemExit):
                cli.recv(10)
        finally:
            usocket._usocket._clear_thread_stop(me)
        conn.sendall(b"ok")
        assert cli.recv(10) == b"ok"


def test_other_threads_are_not_affected_by_a_stop_mark():
    """Marking one thread leaves the others' blocking calls alone."""
    with usocket_pair() as (cli, conn):
        other = threading.Thread(target=lambda: None)
        other.start()
        other.join()
        usocket._usocket._request_thread_stop(other.ident)
        try:
            conn.sendall(b"fine")
            assert cli.recv(10) == b"fine"
        finally:
            usocket._usocket._clear_thread_stop(other.ident)


def test_switching_to_nonblocking_ends_a_blocked_recv_with_11():
    """setblocking(False) from another thread turns a blocked recv into EAGAIN (no spin)."""
    with usocket_pair() as (cli, _):
        t, box = blocked_call(lambda: cli.recv(10))
        time.sleep(0.2)
        assert t.is_alive()
        cli.setblocking(False)
        t.join(2)
        err = box.get("error")
        assert type(err) is OSError and err.args == (11,), box


LINES = 50_000


@pytest.mark.parametrize("name", ["quecpython", "legacy", "micropython"])
def test_readline_from_four_threads_loses_and_splices_nothing(name):
    """4 threads doing readline on one socket against a fast producer: every line arrives
    exactly once and whole (stream reads take turns, as on the device)."""
    from usocket_peers import profile

    expected = [b"line %06d %s\n" % (i, b"x" * (i % 23)) for i in range(LINES)]
    with profile(name), usocket_pair() as (cli, conn):
        cli.settimeout(30)
        got: list[list[bytes]] = [[] for _ in range(4)]
        errors: list[BaseException] = []

        def reader(out: list[bytes]) -> None:
            try:
                while True:
                    try:
                        line = cli.readline()
                    except OSError as e:
                        if e.args == (107,):  # the FIN rule: one reader sees it once
                            continue
                        raise
                    if not line:
                        return
                    out.append(line)
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=reader, args=(g,), daemon=True) for g in got]
        for t in threads:
            t.start()
        blob = b"".join(expected)
        for i in range(0, len(blob), 4096):  # many small sends: lines straddle them
            conn.sendall(blob[i : i + 4096])
        conn.close()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        lines = [line for g in got for line in g]
        assert len(lines) == LINES
        assert sorted(lines) == expected
        for g in got:  # each thread saw its own lines in stream order
            assert g == sorted(g)


def test_a_stop_mark_ends_calls_even_when_they_would_not_wait():
    """A marked thread's recv raises SystemExit though data is waiting, and so does send
    (the fast path that skips the wait keeps the stop rule)."""
    with usocket_pair() as (cli, conn):
        conn.sendall(b"waiting")
        time.sleep(0.1)
        me = threading.get_ident()
        usocket._usocket._request_thread_stop(me)
        try:
            with pytest.raises(SystemExit):
                cli.recv(10)
            with pytest.raises(SystemExit):
                cli.send(b"x")
        finally:
            usocket._usocket._clear_thread_stop(me)
        assert cli.recv(10) == b"waiting"
