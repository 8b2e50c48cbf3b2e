"""The device's readable callback, setsockopt(SOL_SOCKET, 20, cb): called from one shared
background thread when a socket is readable (data, FIN, incoming connection, datagram),
never twice at once, never reading for the script; None unregisters; exceptions are printed
with their traceback on stdout, as the device prints them."""

from __future__ import annotations

import socket as cpy
import threading
import time

import pytest
import usocket
from usocket_peers import PEER_TIMEOUT_S, profile, usocket_pair

PROFILES = ["quecpython", "legacy", "micropython"]
CALLBACK = 20


def wait_until(what: str, check, timeout: float = PEER_TIMEOUT_S):
    """Polls check() until truthy (the limit only turns a hang into a failure)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return result


def register(sock, callback) -> None:
    sock.setsockopt(usocket.SOL_SOCKET, CALLBACK, callback)


@pytest.mark.parametrize("name", PROFILES)
def test_data_and_fin_call_the_callback_which_reads_itself(name):
    """Data arrives: callback(sock) gets the same object and reads it; then the FIN calls it
    again and the read there sees the FIN rule (107 on the device, b'' upstream)."""
    with profile(name), usocket_pair() as (cli, conn):
        seen: list = []

        def on_readable(s):
            assert s is cli
            try:
                seen.append(s.recv(100))
            except OSError as e:
                seen.append(e.args)
            if seen[-1] in (b"", (107,)):
                register(s, None)

        register(cli, on_readable)
        conn.sendall(b"hello")
        wait_until("the data", lambda: b"hello" in seen)
        conn.close()
        wait_until("the FIN", lambda: len(seen) >= 2)
        assert seen == [b"hello", (107,) if name != "micropython" else b""]


@pytest.mark.parametrize("name", PROFILES)
def test_a_callback_that_does_not_read_leaves_the_data(name):
    """The dispatcher reads nothing: bytes stay for the script, and the callback is called
    again while they stay unread."""
    with profile(name), usocket_pair() as (cli, conn):
        calls = []
        register(cli, lambda s: calls.append(time.monotonic()))
        conn.sendall(b"keep me")
        wait_until("repeated calls", lambda: len(calls) >= 3)
        register(cli, None)
        cli.settimeout(PEER_TIMEOUT_S)
        assert cli.recv(100) == b"keep me"


@pytest.mark.parametrize("name", PROFILES)
def test_listener_and_datagram_sockets(name):
    """An incoming connection makes a listener readable; a datagram a UDP socket."""
    with profile(name):
        lst = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        udp = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        try:
            lst.bind(("127.0.0.1", 0))
            lst.listen(2)
            udp.bind(("127.0.0.1", 0))
            got: dict = {}

            def on_listener(s):
                conn = s.accept()[0]
                got["accepted"] = conn
                register(s, None)

            def on_udp(s):
                got["datagram"] = s.recvfrom(100)[0]
                register(s, None)

            register(lst, on_listener)
            register(udp, on_udp)
            from usocket_peers import local_addr

            client = cpy.create_connection(local_addr(lst)[:2], timeout=PEER_TIMEOUT_S)
            with cpy.socket(cpy.AF_INET, cpy.SOCK_DGRAM) as sender:
                sender.sendto(b"dgram", local_addr(udp)[:2])
            wait_until("both callbacks", lambda: len(got) == 2)
            assert got["datagram"] == b"dgram"
            got["accepted"].close()
            client.close()
        finally:
            lst.close()
            udp.close()


def test_none_unregisters_and_close_drops_the_registration():
    """After None (or close) the callback is not called any more, though data arrives."""
    with usocket_pair() as (cli, conn), usocket_pair() as (cli2, conn2):
        calls: list = []
        register(cli, lambda s: calls.append("cli") or s.recv(100))
        register(cli2, lambda s: calls.append("cli2") or s.recv(100))
        conn.sendall(b"a")
        wait_until("first call", lambda: "cli" in calls)
        register(cli, None)
        cli2.close()
        before = list(calls)
        conn.sendall(b"b")
        conn2.sendall(b"c")
        # A third socket still registered shows the dispatcher is alive meanwhile.
        with usocket_pair() as (cli3, conn3):
            register(cli3, lambda s: calls.append("cli3") or s.recv(100))
            conn3.sendall(b"d")
            wait_until("the live registration", lambda: "cli3" in calls)
            register(cli3, None)
        assert [c for c in calls[len(before) :] if c != "cli3"] == []
        cli.settimeout(PEER_TIMEOUT_S)
        assert cli.recv(100) == b"b"


def test_one_shared_thread_and_never_two_calls_at_once():
    """Three sockets readable at once: every call comes from the same thread, none
    overlaps another (the callback sleeps to give an overlap every chance)."""
    pairs = [usocket_pair() for _ in range(3)]
    opened = [p.__enter__() for p in pairs]
    try:
        active = [0]
        max_active = [0]
        threads = set()
        done = []
        lock = threading.Lock()

        def on_readable(s):
            with lock:
                active[0] += 1
                max_active[0] = max(max_active[0], active[0])
            threads.add(threading.get_ident())
            time.sleep(0.02)
            data = s.recv(100)
            with lock:
                active[0] -= 1
            done.append(data)
            register(s, None)

        for cli, _ in opened:
            register(cli, on_readable)
        for i, (_, conn) in enumerate(opened):
            conn.sendall(b"x%d" % i)
        wait_until("three calls", lambda: len(done) == 3)
        assert sorted(done) == [b"x0", b"x1", b"x2"]
        assert max_active[0] == 1
        assert len(threads) == 1 and threading.get_ident() not in threads
    finally:
        for p in pairs:
            p.__exit__(None, None, None)


def test_exceptions_are_printed_like_the_device_and_dispatch_goes_on(capsys):
    """A failing callback prints 'Traceback ...' and the exception on stdout; the next
    readable socket's callback still runs."""
    with usocket_pair() as (cli, conn), usocket_pair() as (cli2, conn2):

        def boom(s):
            register(s, None)
            raise ValueError("boom in callback")

        ok: list = []
        register(cli, boom)
        conn.sendall(b"1")
        time.sleep(0.1)
        register(cli2, lambda s: ok.append(s.recv(10)) or register(s, None))
        conn2.sendall(b"2")
        wait_until("the second callback", lambda: ok)
        out = capsys.readouterr().out
        assert "Traceback (most recent call last)" in out
        assert "ValueError: boom in callback" in out


def test_bad_callback_values():
    """A non-callable is a TypeError in the device profiles; closed sockets raise 9."""
    s = usocket.socket()
    with pytest.raises(TypeError):
        register(s, 5)
    s.close()
    with pytest.raises(OSError) as e:
        register(s, print)
    assert e.value.args == (9,)
