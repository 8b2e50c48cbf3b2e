"""A blocking receive that has just been answered quickly spins a little before it sleeps
(request/response exchanges). These tests warm that spin up with fast exchanges, then check
that every blocking rule still holds: the bytes, close() from another thread, timeouts,
switching to non-blocking, Ctrl-C, datagrams, and that a silent socket does not keep
spinning."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import usocket
from conftest import recv_exactly
from usocket_peers import run_python, usocket_pair


def warm_up(cli, conn, rounds: int = 300) -> None:
    """Fast request/response exchanges: each reply comes within microseconds, so recv
    spins from the second round on. Every reply is checked."""
    for i in range(rounds):
        msg = b"%08d" % i
        cli.sendall(msg)
        assert conn.recv(8) == msg
        conn.sendall(msg[::-1])
        got = recv_exactly(cli, 8)
        assert got == msg[::-1]


def echo_in_thread(conn: socket.socket, stop: threading.Event) -> threading.Thread:
    """Answer each 8-byte request with its reverse until `stop` (or the client closes)."""

    def run():
        conn.settimeout(0.05)
        buf = b""
        while not stop.is_set():
            try:
                data = conn.recv(64)
            except TimeoutError:
                continue
            if not data:
                return
            buf += data
            while len(buf) >= 8:
                conn.sendall(buf[:8][::-1])
                buf = buf[8:]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_every_reply_arrives_whole_and_in_order_across_spins_and_sleeps():
    """Replies that come at once (caught by the spin) and replies that come late (after
    the spin gave up and the receive slept) all arrive, whole, in order."""
    with usocket_pair() as (cli, conn):
        stop = threading.Event()
        t = echo_in_thread(conn, stop)
        for i in range(2000):
            msg = b"%08d" % i
            if i % 250 == 249:
                time.sleep(0.002)  # a pause on the client side only changes nothing
            cli.sendall(msg)
            got = recv_exactly(cli, 8)
            assert got == msg[::-1], i
        stop.set()
        t.join(5)
    with usocket_pair() as (cli, conn):
        for i in range(20):  # the peer answers late: the spin misses, the sleep catches it
            cli.sendall(b"%08d" % i)
            assert conn.recv(8) == b"%08d" % i
            threading.Timer(0.01, conn.sendall, args=(b"late%04d" % i,)).start()
            got = recv_exactly(cli, 8)
            assert got == b"late%04d" % i


def test_close_from_another_thread_wakes_a_receive_that_was_spinning():
    """After fast exchanges, a recv waiting for a reply that never comes ends with
    OSError(9) when another thread closes the socket."""
    with usocket_pair() as (cli, conn):
        warm_up(cli, conn)
        box: dict = {}

        def blocked():
            try:
                box["value"] = cli.recv(8)
            except OSError as e:
                box["error"] = e

        t = threading.Thread(target=blocked, daemon=True)
        t.start()
        time.sleep(0.2)
        assert t.is_alive(), box
        cli.close()
        t.join(2)
        assert not t.is_alive()
        assert type(box.get("error")) is OSError and box["error"].args == (9,), box


def test_timeout_and_nonblocking_still_apply_after_fast_exchanges():
    """A timed recv after fast exchanges raises 110; a non-blocking one raises 11 (no
    spin: it never waits); data that arrives in time is returned."""
    with usocket_pair() as (cli, conn):
        warm_up(cli, conn)
        cli.settimeout(0.05)
        for _ in range(3):
            with pytest.raises(OSError) as timed_out:
                cli.recv(8)
            assert timed_out.value.args == (110,)
        warm_up(cli, conn, 50)
        cli.settimeout(0)
        with pytest.raises(OSError) as would_block:
            cli.recv(8)
        assert would_block.value.args == (11,)
        cli.settimeout(None)
        warm_up(cli, conn, 50)


def test_datagram_exchanges_spin_and_keep_their_rules():
    """UDP request/response: every datagram arrives whole with its sender; a timed
    recvfrom on a silent socket raises 110."""
    a = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        b.settimeout(5)
        for i in range(300):
            a.sendto(b"q%05d" % i, b.getsockname())
            data, sender = b.recvfrom(64)
            assert data == b"q%05d" % i
            b.sendto(b"r%05d" % i, sender)
            got, frm = a.recvfrom(64)
            assert got == b"r%05d" % i
            assert frm[-1] == b.getsockname()[1]
        a.settimeout(0.05)
        with pytest.raises(OSError) as timed_out:
            a.recvfrom(64)
        assert timed_out.value.args == (110,)
    finally:
        a.close()
        b.close()


def test_a_silent_socket_does_not_keep_spinning():
    """After fast exchanges, a recv that waits half a second for a reply uses a small part
    of that in CPU time: the spin gives up after microseconds and the thread sleeps.
    (A bound on the waiting thread's own CPU time, which load on the machine can only
    lower; not a measure of speed.)"""
    with usocket_pair() as (cli, conn):
        warm_up(cli, conn)
        box: dict = {}

        def waiting():
            t0 = time.thread_time()
            box["value"] = cli.recv(8)
            box["cpu"] = time.thread_time() - t0

        t = threading.Thread(target=waiting, daemon=True)
        t.start()
        time.sleep(0.5)
        conn.sendall(b"finally!")
        t.join(5)
        assert box["value"] == b"finally!"
        assert box["cpu"] < 0.1, box


CTRL_C_AFTER_SPIN_SCRIPT = r"""
import os, signal, socket, threading, usocket
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(1)
s = usocket.socket(); s.connect(lst.getsockname()); conn, _ = lst.accept()
for i in range(300):
    s.send(b"ping"); assert conn.recv(4) == b"ping"
    conn.sendall(b"pong"); assert s.recv(4) == b"pong"
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    s.recv(10)
    print("no interrupt")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


def test_ctrl_c_interrupts_a_receive_after_fast_exchanges():
    """SIGINT while the main thread waits in recv, after it was spinning, raises
    KeyboardInterrupt."""
    r = run_python(CTRL_C_AFTER_SPIN_SCRIPT, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "KeyboardInterrupt", r.stdout + r.stderr
