"""What the peer sees at close() (a FIN, or only a RST with a zero linger, also while another
thread is blocked on the socket), and the FIN arriving in the middle of a stream read, in all
three profiles, blocking and with a timeout."""

from __future__ import annotations

import socket as cpy
import struct
import threading
import time

import pytest
import usocket
from usocket_peers import PEER_TIMEOUT_S, profile, usocket_pair

PROFILES = ["quecpython", "legacy", "micropython"]
LINGER_ZERO = struct.pack("ii", 1, 0)


def set_linger_zero(sock: usocket.socket) -> None:
    """SO_LINGER on with a zero time: usocket's own setsockopt in the micropython profile,
    the same option through a CPython view of the descriptor in the device profiles (their
    setsockopt has no SO_LINGER)."""
    if usocket._profile() == "micropython":
        sock.setsockopt(usocket.SOL_SOCKET, usocket.SO_LINGER, LINGER_ZERO)
        return
    import os

    with cpy.socket(fileno=os.dup(sock.fileno())) as view:
        view.setsockopt(cpy.SOL_SOCKET, cpy.SO_LINGER, LINGER_ZERO)


def blocked_recv(sock: usocket.socket) -> tuple[threading.Thread, dict]:
    """A thread blocked in sock.recv(); its result or exception lands in the box."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = sock.recv(100)
        except BaseException as e:  # noqa: BLE001 (the test inspects it)
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.2)
    assert t.is_alive(), box
    return t, box


def peer_outcome(conn: cpy.socket) -> str:
    """What the CPython peer's next read sees: 'eof', 'reset' or the data."""
    try:
        data = conn.recv(100)
    except ConnectionResetError:
        return "reset"
    return "eof" if data == b"" else f"data {data!r}"


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("waiter", [False, True], ids=["alone", "with-blocked-recv"])
@pytest.mark.parametrize("linger_zero", [False, True], ids=["normal", "linger0"])
def test_close_sends_what_the_options_say(name, waiter, linger_zero):
    """Linger 0: the peer sees only a RST (ECONNRESET, no EOF first); otherwise a clean
    EOF. A thread blocked in recv at close time gets OSError(9) without changing that."""
    with profile(name), usocket_pair() as (cli, conn):
        cli.send(b"hello")
        assert conn.recv(100) == b"hello"
        if linger_zero:
            set_linger_zero(cli)
        t, box = blocked_recv(cli) if waiter else (None, None)
        cli.close()
        if t is not None:
            t.join(PEER_TIMEOUT_S)
            assert not t.is_alive()
            err = box.get("error")
            assert type(err) is OSError and err.args == (9,), box
        conn.settimeout(PEER_TIMEOUT_S)
        assert peer_outcome(conn) == ("reset" if linger_zero else "eof")


def test_close_wakes_a_blocked_recv_with_nothing_on_the_wire():
    """The wake-up of a blocked reader sends nothing: the peer reads no EOF while the
    socket it talks to is still open through another reference (a dup'd descriptor)."""
    import os

    with usocket_pair() as (cli, conn):
        keep = os.dup(cli.fileno())
        try:
            t, box = blocked_recv(cli)
            cli.close()
            t.join(PEER_TIMEOUT_S)
            assert type(box.get("error")) is OSError and box["error"].args == (9,)
            conn.settimeout(0.3)
            with pytest.raises(TimeoutError):
                conn.recv(100)  # no FIN went out: the connection is still open
            os.write(keep, b"still here")
            conn.settimeout(PEER_TIMEOUT_S)
            assert conn.recv(100) == b"still here"
        finally:
            os.close(keep)
        assert peer_outcome(conn) == "eof"


def fin_after(conn: cpy.socket, payload: bytes, delay: float) -> threading.Thread:
    """Sends payload, waits `delay`, then closes (FIN) from a thread."""

    def run() -> None:
        conn.sendall(payload)
        time.sleep(delay)
        conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def after_fin(name: str, sock: usocket.socket, call) -> None:
    """The read after the one that met the FIN: OSError(107) in device profiles, b'' in
    micropython; and the one after that b'' everywhere."""
    if name == "micropython":
        assert call() in (b"", 0)
    else:
        with pytest.raises(OSError) as e:
            call()
        assert type(e.value) is OSError and e.value.args == (107,)
    assert call() in (b"", 0)


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
@pytest.mark.parametrize("method", ["read", "readinto", "readline"])
@pytest.mark.parametrize("waiting", [False, True], ids=["fin-first", "fin-while-waiting"])
def test_fin_in_the_middle_of_a_stream_read(name, timeout, method, waiting):
    """A read that meets the FIN after some bytes returns them (short); the next read finds
    the peer closed: OSError(107) in quecpython/legacy, b'' in micropython."""
    with profile(name), usocket_pair() as (cli, conn):
        cli.settimeout(timeout)
        feeder = fin_after(conn, b"abc", 0.3 if waiting else 0.0)
        if not waiting:
            feeder.join(PEER_TIMEOUT_S)
            time.sleep(0.05)
        if method == "read":
            assert cli.read(10) == b"abc"
            after_fin(name, cli, lambda: cli.read(10))
        elif method == "readinto":
            buf = bytearray(10)
            assert cli.readinto(buf) == 3 and buf[:3] == b"abc"
            after_fin(name, cli, lambda: cli.readinto(bytearray(10)))
        else:
            assert cli.readline() == b"abc"
            after_fin(name, cli, cli.readline)
        feeder.join(PEER_TIMEOUT_S)


@pytest.mark.parametrize("name", PROFILES)
def test_read_to_the_end_keeps_the_bytes_before_the_fin(name):
    """read() without a size returns everything up to the FIN; then the FIN rule applies."""
    with profile(name), usocket_pair() as (cli, conn):
        cli.settimeout(PEER_TIMEOUT_S)
        feeder = fin_after(conn, b"x" * 100_000, 0.2)
        assert cli.read() == b"x" * 100_000
        after_fin(name, cli, cli.read)
        feeder.join(PEER_TIMEOUT_S)


@pytest.mark.parametrize("name", PROFILES)
def test_close_wakes_every_reader_including_one_waiting_for_its_turn(name):
    """Two threads reading one socket (one in recv, one waiting for its read turn) both
    get OSError(9) at close(), and the peer still sees a clean EOF."""
    with profile(name), usocket_pair() as (cli, conn):
        first = blocked_recv(cli)
        second = blocked_recv(cli)
        cli.close()
        for t, box in (first, second):
            t.join(PEER_TIMEOUT_S)
            assert not t.is_alive()
            err = box.get("error")
            assert type(err) is OSError and err.args == (9,), box
        conn.settimeout(PEER_TIMEOUT_S)
        assert peer_outcome(conn) == "eof"
