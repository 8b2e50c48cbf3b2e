"""Every errno case produced for real, the exception shape, the FIN rule, bad input and
descriptor leaks on error paths."""

from __future__ import annotations

import sys
import threading
import time

import pytest
import usocket
from usocket_peers import (
    Peer,
    full_backlog,
    hold_open,
    open_descriptors,
    opened_since,
    refused_port,
    send_then_close,
    usocket_pair,
)


def errno_of(excinfo: pytest.ExceptionInfo) -> int:
    e = excinfo.value
    assert type(e) is OSError, type(e)
    assert len(e.args) == 1 and e.errno == e.args[0]
    return e.args[0]


def test_raising_an_error_keeps_the_gil():
    """The OSError is made without letting the GIL go, so under GIL contention a timeout or
    an EAGAIN reaches Python without waiting for another thread's switch interval: while
    the main thread raises 200 errors, a thread that wants the GIL never gets it."""
    ran = [0]
    stop = threading.Event()

    def wants_the_gil() -> None:
        while not stop.is_set():
            ran[0] += 1

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)  # the other thread asks for the GIL only after 0.5 s
    other = threading.Thread(target=wants_the_gil)
    with usocket_pair() as (cli, _conn):
        cli.setblocking(False)
        try:
            other.start()
            time.sleep(0.05)  # it runs; the main thread takes the GIL back when it asks
            before = ran[0]
            errnos = set()
            for _ in range(200):
                try:
                    cli.recv(10)
                except OSError as e:
                    errnos.add(e.args[0])
            after = ran[0]
        finally:
            stop.set()
            sys.setswitchinterval(old_interval)
            other.join()
    assert errnos == {11}
    assert after == before, f"the other thread ran {after - before} times meanwhile"


def test_exception_shape_is_a_plain_one_argument_oserror():
    """type(e) is OSError, args == (110,), str(e) == '[Errno 110] ETIMEDOUT'."""
    with usocket_pair() as (cli, _conn):
        cli.settimeout(0.05)
        with pytest.raises(OSError) as ei:
            cli.recv(10)
    e = ei.value
    assert type(e) is OSError and not isinstance(e, TimeoutError)
    assert e.args == (110,) and e.errno == 110 and e.strerror == "ETIMEDOUT"
    assert str(e) == "[Errno 110] ETIMEDOUT"


def test_refused_connect_is_104():
    """A refused port gives ECONNRESET (lwIP), not 111."""
    s = usocket.socket()
    with pytest.raises(OSError) as ei:
        s.connect(("127.0.0.1", refused_port()))
    assert errno_of(ei) == 104 and str(ei.value) == "[Errno 104] ECONNRESET"
    s.close()


def test_second_connect_is_114_after_failure_and_after_success():
    """The device marks the socket before connecting: any second connect is EALREADY."""
    s = usocket.socket()
    with pytest.raises(OSError):
        s.connect(("127.0.0.1", refused_port()))
    with pytest.raises(OSError) as ei:
        s.connect(("127.0.0.1", refused_port()))
    assert errno_of(ei) == 114
    s.close()
    with usocket_pair() as (cli, _):
        with pytest.raises(OSError) as ei:
            cli.connect(("127.0.0.1", 1))
        assert errno_of(ei) == 114


def test_recv_timeout_is_110():
    """A timed-out recv raises 110 and the socket stays usable."""
    with usocket_pair() as (cli, conn):
        cli.settimeout(0.1)
        with pytest.raises(OSError) as ei:
            cli.recv(10)
        assert errno_of(ei) == 110
        conn.sendall(b"late")
        assert cli.recv(10) == b"late"


def test_accept_timeout_is_110_and_nonblocking_accept_is_11():
    """accept with a timeout and with nothing pending."""
    s = usocket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.settimeout(0.05)
    with pytest.raises(OSError) as ei:
        s.accept()
    assert errno_of(ei) == 110
    s.setblocking(False)
    with pytest.raises(OSError) as ei:
        s.accept()
    assert errno_of(ei) == 11
    s.close()


def test_connect_timeout_is_110():
    """A connect that never completes (full backlog) times out with 110."""
    with full_backlog() as addr:
        s = usocket.socket()
        s.settimeout(0.2)
        with pytest.raises(OSError) as ei:
            s.connect(addr)
        assert errno_of(ei) == 110
        s.close()


def test_nonblocking_recv_with_nothing_is_11():
    """Non-blocking recv with no data raises EAGAIN 11."""
    with usocket_pair() as (cli, _):
        cli.setblocking(False)
        with pytest.raises(OSError) as ei:
            cli.recv(10)
        assert errno_of(ei) == 11 and str(ei.value) == "[Errno 11] EAGAIN"


def test_nonblocking_connect_is_115_then_completes():
    """A non-blocking connect raises 115; the connection then comes up."""
    stop = threading.Event()
    peer = Peer(hold_open(stop))
    s = usocket.socket()
    s.setblocking(False)
    with pytest.raises(OSError) as ei:
        s.connect(peer.address)
    assert errno_of(ei) == 115
    import select

    select.select([], [s], [], 5)
    assert s.getsocketsta() == 4
    s.close()
    stop.set()
    peer.join()


def test_fin_rule_first_read_raises_107_then_empty_bytes():
    """Data before the FIN is delivered, then 107 once, then b''."""
    peer = Peer(send_then_close(b"last words"))
    s = usocket.socket()
    s.connect(peer.address)
    peer.join()
    assert s.recv(100) == b"last words"
    with pytest.raises(OSError) as ei:
        s.recv(100)
    assert errno_of(ei) == 107 and str(ei.value) == "[Errno 107] ENOTCONN"
    assert s.recv(100) == b""
    assert s.read(5) == b""
    s.close()


def test_fin_rule_applies_to_stream_reads_too():
    """read() / readline() / readinto() hitting a bare FIN raise 107 once."""
    for call in (
        lambda s: s.read(),
        lambda s: s.read(4),
        lambda s: s.readline(),
        lambda s: s.readinto(bytearray(4)),
        lambda s: s.recvfrom(4),
    ):
        peer = Peer(send_then_close(b""))
        s = usocket.socket()
        s.connect(peer.address)
        peer.join()
        with pytest.raises(OSError) as ei:
            call(s)
        assert errno_of(ei) == 107
        assert call(s) in (b"", 0) or call(s)[0] == b""
        s.close()


def test_closed_socket_raises_9_everywhere():
    """Every I/O call on a closed socket raises EBADF; close is idempotent."""
    s = usocket.socket()
    s.close()
    s.close()
    calls = [
        lambda: s.connect(("127.0.0.1", 1)),
        lambda: s.send(b"x"),
        lambda: s.sendall(b"x"),
        lambda: s.sendto(b"x", ("127.0.0.1", 1)),
        lambda: s.recv(1),
        lambda: s.recvfrom(1),
        lambda: s.accept(),
        lambda: s.bind(("127.0.0.1", 0)),
        lambda: s.listen(1),
        lambda: s.read(1),
        lambda: s.readline(),
        lambda: s.write(b"x"),
        lambda: s.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1),
    ]
    for call in calls:
        with pytest.raises(OSError) as ei:
            call()
        assert errno_of(ei) == 9 and str(ei.value) == "[Errno 9] EBADF"
    s.settimeout(1)  # silently ignored, as on the device
    s.setblocking(True)
    assert s.fileno() == -1 and s.getsocketsta() == -1


def test_dns_failure_is_minus_202():
    """getaddrinfo and connect on an unresolvable name raise OSError(-202), str '-202'."""
    with pytest.raises(OSError) as ei:
        usocket.getaddrinfo("no-such-host.invalid", 80)
    assert errno_of(ei) == -202 and str(ei.value) == "-202"
    s = usocket.socket()
    with pytest.raises(OSError) as ei:
        s.connect(("no-such-host.invalid", 80))
    assert errno_of(ei) == -202
    s.close()


def test_bind_in_use_is_98():
    """Binding a port in use raises EADDRINUSE."""
    a = usocket.socket()
    a.bind(("127.0.0.1", 0))
    a.listen(1)
    from usocket_peers import local_addr

    b = usocket.socket()
    with pytest.raises(OSError) as ei:
        b.bind(local_addr(a))
    assert errno_of(ei) == 98
    a.close()
    b.close()


def test_address_shapes():
    """Not a tuple/list: TypeError; wrong length: ValueError; non-int port: TypeError."""
    s = usocket.socket()
    try:
        for bad in ("127.0.0.1:80", 80, None, {"a": 1}):
            with pytest.raises(TypeError):
                s.connect(bad)
        for bad in ((), ("127.0.0.1",), ("127.0.0.1", 80, 0), ["a", 1, 2, 3]):
            with pytest.raises(ValueError):
                s.bind(bad)
        for bad in (("127.0.0.1", "80"), ("127.0.0.1", 80.0), ("127.0.0.1", None)):
            with pytest.raises(TypeError):
                s.connect(bad)
        with pytest.raises(TypeError):
            s.connect((127, 80))
        with pytest.raises(OverflowError):
            s.connect(("127.0.0.1", 70000))
        with pytest.raises(OverflowError):
            s.bind(("127.0.0.1", -1))
    finally:
        s.close()


def test_wrong_types_and_sizes():
    """Non-buffer data: TypeError; negative size: ValueError; huge: MemoryError/OverflowError."""
    with usocket_pair() as (cli, _):
        for bad in (1, None, 1.5, ["a"]):
            with pytest.raises(TypeError):
                cli.send(bad)
            with pytest.raises(TypeError):
                cli.write(bad)
        with pytest.raises(TypeError):
            cli.recv("10")
        with pytest.raises(TypeError):
            cli.recv(1.0)
        with pytest.raises(ValueError):
            cli.recv(-1)
        with pytest.raises(MemoryError):
            cli.recv(1 << 40)
        with pytest.raises(OverflowError):
            cli.recv(1 << 80)
        with pytest.raises(TypeError):
            cli.readinto(b"immutable")
        with pytest.raises(TypeError):
            cli.recv(10, 0)  # no flags argument on the device


def test_no_descriptor_leaks_on_error_paths():
    """Failed connects, binds, timeouts, closes and dropped sockets leave no fd behind."""
    before = open_descriptors()
    for _ in range(20):
        s = usocket.socket()
        with pytest.raises(OSError):
            s.connect(("127.0.0.1", refused_port()))
        with pytest.raises(OSError):
            s.connect(("127.0.0.1", 1))
        s.close()
        t = usocket.socket()
        with pytest.raises(OSError):
            t.bind(("no-such-host.invalid", 0))
        del t  # dropped without close()
        with pytest.raises(OSError):
            usocket.socket(99, 1)
        with pytest.raises(ValueError):
            usocket.socket().bind(("127.0.0.1",))
    with usocket_pair() as (cli, _):
        cli.settimeout(0.01)
        with pytest.raises(OSError):
            cli.recv(1)
    import gc

    gc.collect()
    assert opened_since(before) == set()
