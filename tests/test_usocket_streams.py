"""The socket as a stream: read(n) waits for n bytes, readline across packets, readinto,
write's extra arguments, and the non-blocking results."""

from __future__ import annotations

import threading
import time

import pytest
import usocket
from usocket_peers import usocket_pair


def dribble(conn, chunks, gap_s=0.02):
    """Send chunks as separate packets from a thread."""

    def run():
        for c in chunks:
            conn.sendall(c)
            time.sleep(gap_s)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_read_n_waits_for_n_bytes():
    """read(10) returns 10 bytes even when they arrive in several packets."""
    with usocket_pair() as (cli, conn):
        t = dribble(conn, [b"012", b"3456", b"789", b"extra"])
        assert cli.read(10) == b"0123456789"
        t.join()
        assert cli.read(5) == b"extra"


def test_read_without_size_reads_to_the_end():
    """read() returns everything up to the peer's close."""
    with usocket_pair() as (cli, conn):
        conn.sendall(b"a" * 100000)
        conn.close()
        assert cli.read() == b"a" * 100000


def test_readline_across_packet_boundaries():
    """Lines split across packets come back whole; a final unterminated line at EOF too."""
    with usocket_pair() as (cli, conn):
        t = dribble(conn, [b"fir", b"st\nsec", b"ond\n", b"third\nfou", b"rth"])
        assert cli.readline() == b"first\n"
        assert cli.readline() == b"second\n"
        assert cli.readline() == b"third\n"
        t.join()
        conn.close()
        assert cli.readline() == b"fourth"
        with pytest.raises(OSError) as ei:
            cli.readline()
        assert ei.value.args == (107,)
        assert cli.readline() == b""


def test_readline_limit_and_mixing_with_recv():
    """readline(limit) stops at limit; bytes read ahead are returned by recv/read first."""
    with usocket_pair() as (cli, conn):
        conn.sendall(b"abcdef\nrest of it")
        assert cli.readline(3) == b"abc"
        assert cli.readline() == b"def\n"
        time.sleep(0.05)
        assert cli.recv(4) == b"rest"
        assert cli.read(6) == b" of it"


def test_readinto_fills_the_buffer():
    """readinto(buf) fills buf from several packets; nbytes limits it."""
    with usocket_pair() as (cli, conn):
        t = dribble(conn, [b"12", b"345", b"6789"])
        buf = bytearray(6)
        assert cli.readinto(buf) == 6 and buf == b"123456"
        t.join()
        view = memoryview(bytearray(10))
        assert cli.readinto(view, 2) == 2 and bytes(view[:2]) == b"78"


def test_write_with_length_and_offset():
    """write(buf, n) writes the first n bytes; write(buf, off, n) from off."""
    with usocket_pair() as (cli, conn):
        assert cli.write(b"0123456789", 3) == 3
        assert cli.write(b"0123456789", 5, 2) == 2
        assert cli.write(b"abc", 10, 10) == 0
        got = b""
        while len(got) < 5:
            got += conn.recv(10)
        assert got == b"01256"


def test_nonblocking_stream_methods_return_none():
    """quecpython profile: read/readline/readinto/write with nothing to do return None."""
    with usocket_pair() as (cli, conn):
        cli.setblocking(False)
        assert cli.read(10) is None
        assert cli.readline() is None
        assert cli.readinto(bytearray(3)) is None
        conn.sendall(b"par")
        time.sleep(0.05)
        assert cli.read(10) == b"par"  # partial data on a non-blocking socket


def test_timeout_applies_to_stream_reads():
    """read(n) with a timeout and no data raises 110."""
    with usocket_pair() as (cli, _):
        cli.settimeout(0.05)
        for call in (lambda: cli.read(3), lambda: cli.readline()):
            with pytest.raises(OSError) as ei:
                call()
            assert ei.value.args == (110,)


def test_send_returns_the_full_count_for_large_data():
    """send() on a blocking socket loops until everything is written."""
    payload = bytes(range(256)) * 8192  # 2 MiB, more than the socket buffers
    with usocket_pair() as (cli, conn):
        got = bytearray()

        def drain():
            while len(got) < len(payload):
                got.extend(conn.recv(65536))

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        assert cli.send(payload) == len(payload)
        t.join(10)
        assert bytes(got) == payload


def test_send_empty_returns_zero_and_warns_once():
    """send(b'') is 0 on the PC but OSError(110) on the device: DeviceCompatibilityWarning."""
    usocket._usocket._reset_warnings()
    with usocket_pair() as (cli, _):
        with pytest.warns(usocket.DeviceCompatibilityWarning, match="send"):
            assert cli.send(b"") == 0
        assert cli.send(b"") == 0  # once per process: no second warning (errors are on)
