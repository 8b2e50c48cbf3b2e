"""The usocket API over real loopback sockets: namespace, shapes, TCP/UDP, IPv4/IPv6."""

from __future__ import annotations

import select
import selectors
import socket as cpy
import threading
import types

import pytest
import usocket
from usocket_peers import Peer, echo_handler, hold_open, local_addr, sockopt, usocket_pair

DEVICE_CONSTANTS = {
    "AF_INET": 2,
    "AF_INET6": 10,
    "SOCK_STREAM": 1,
    "SOCK_DGRAM": 2,
    "SOCK_RAW": 3,
    "IPPROTO_IP": 0,
    "IPPROTO_TCP": 6,
    "IPPROTO_UDP": 17,
    "IPPROTO_TCP_SER": 7,
    "TCP_CUSTOMIZE_PORT": 8,
    "SOL_SOCKET": 4095,
    "SO_REUSEADDR": 4,
    "TCP_KEEPALIVE": 2,
}


def test_namespace_is_the_devices_and_nothing_more():
    """The module has exactly the device's names plus DeviceCompatibilityWarning."""
    public = {
        n
        for n in dir(usocket)
        if not n.startswith("_") and not isinstance(getattr(usocket, n), types.ModuleType)
    }
    assert public == set(DEVICE_CONSTANTS) | {"socket", "getaddrinfo", "DeviceCompatibilityWarning"}
    for name, value in DEVICE_CONSTANTS.items():
        assert getattr(usocket, name) == value
    for absent in (
        "timeout",
        "error",
        "SO_KEEPALIVE",
        "MSG_PEEK",
        "create_connection",
        "inet_pton",
    ):
        assert not hasattr(usocket, absent)
    assert set(usocket.__all__) == public
    assert issubclass(usocket.DeviceCompatibilityWarning, UserWarning)


def test_socket_type_and_methods():
    """The class is called socket, has the device's methods and none of CPython's extras."""
    s = usocket.socket()
    try:
        assert type(s).__name__ == "socket"
        for m in [
            "close",
            "bind",
            "listen",
            "accept",
            "connect",
            "send",
            "sendall",
            "sendto",
            "recv",
            "recvfrom",
            "read",
            "readinto",
            "readline",
            "write",
            "makefile",
            "fileno",
            "setblocking",
            "settimeout",
            "setsockopt",
            "getsocketsta",
        ]:
            assert callable(getattr(s, m)), m
        for m in ("getpeername", "getsockname", "gettimeout", "shutdown", "recv_into", "family"):
            assert not hasattr(s, m), m
    finally:
        s.close()


def test_constructor_is_positional_only_and_accepts_protos_7_and_8():
    """Keywords are rejected; protos 7 and 8 give ordinary sockets."""
    with pytest.raises(TypeError):
        usocket.socket(af=usocket.AF_INET)
    with pytest.raises(TypeError):
        usocket.socket(2, 1, 0, 0)
    for proto in (0, 6, 7, 8):
        usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM, proto).close()
    usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM, usocket.TCP_CUSTOMIZE_PORT).close()
    usocket.socket(True).close()  # ints convert with int semantics, bool included


def test_getaddrinfo_shape():
    """One 5-tuple, type 1, proto 0, canonname = host as passed, 2-tuple sockaddr."""
    assert usocket.getaddrinfo("127.0.0.1", 34187) == [(2, 1, 0, "127.0.0.1", ("127.0.0.1", 34187))]
    assert usocket.getaddrinfo("localhost", "80", 0, 0, 0, 0)[0][-1][1] == 80
    assert usocket.getaddrinfo("", 5) == [(2, 1, 0, "", ("0.0.0.0", 5))]
    assert usocket.getaddrinfo("::1", 7) == [(10, 1, 0, "::1", ("::1", 7))]


def test_tcp_round_trip_accept_shape_and_states():
    """A usocket listener and client: accept's 3-tuple, getsocketsta 1 / 0 / 4 / 7 / -1."""
    srv = usocket.socket()
    srv.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    assert srv.getsocketsta() == 1
    port = local_addr(srv)[1]
    cli = usocket.socket()
    assert cli.getsocketsta() == 0
    cli.connect(("127.0.0.1", port))
    assert cli.getsocketsta() == 4
    conn, ip, peer_port = srv.accept()
    assert type(conn) is usocket.socket and ip == "127.0.0.1" and isinstance(peer_port, int)
    assert conn.send(b"hello") == 5
    assert cli.recv(5) == b"hello"
    conn.close()
    select.select([cli.fileno()], [], [], 5)
    assert cli.getsocketsta() == 7
    cli.close()
    srv.close()
    assert (cli.getsocketsta(), srv.getsocketsta(), cli.fileno()) == (-1, -1, -1)


def test_getsocketsta_walks_0_4_7_minus1_against_a_cpython_peer():
    """0 fresh, 4 connected, 7 after the peer's FIN, -1 after close."""
    stop = threading.Event()
    peer = Peer(hold_open(stop))
    s = usocket.socket()
    seen = [s.getsocketsta()]
    s.connect(peer.address)
    seen.append(s.getsocketsta())
    stop.set()
    peer.join()
    select.select([s.fileno()], [], [], 5)
    seen.append(s.getsocketsta())
    s.close()
    seen.append(s.getsocketsta())
    assert seen == [0, 4, 7, -1]


def test_str_is_accepted_for_sending():
    """send/sendall/write accept str (UTF-8), as the device does."""
    with usocket_pair() as (cli, conn):
        assert cli.send("héllo") == 6
        cli.sendall("ab")
        assert cli.write("cd") == 2
        got = b""
        while len(got) < 10:
            got += conn.recv(64)
        assert got == "héllo".encode() + b"abcd"


def test_send_accepts_buffers():
    """bytes, bytearray and memoryview all send."""
    with usocket_pair() as (cli, conn):
        assert cli.send(bytearray(b"ab")) == 2
        assert cli.send(memoryview(b"xcdx")[1:3]) == 2
        cli.sendall(memoryview(bytearray(b"ef")))
        got = b""
        while len(got) < 6:
            got += conn.recv(64)
        assert got == b"abcdef"


def test_udp_sendto_recvfrom():
    """UDP: sendto returns the count, recvfrom gives (bytes, (ip, port))."""
    a = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    b = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        b.bind(("127.0.0.1", 0))
        port = local_addr(b)[1]
        assert a.sendto(b"ping", ("127.0.0.1", port)) == 4
        data, (ip, src_port) = b.recvfrom(100)
        assert data == b"ping" and ip == "127.0.0.1"
        assert b.sendto("pong", [ip, src_port]) == 4
        assert a.recvfrom(100)[0] == b"pong"
        assert b.getsocketsta() == 0
    finally:
        a.close()
        b.close()


def test_sendto_rejects_host_names():
    """sendto needs a numeric host: a name is ValueError, as on the device."""
    s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError):
            s.sendto(b"x", ("localhost", 9))
    finally:
        s.close()


def test_ipv6_tcp_and_udp_on_loopback():
    """IPv6 on ::1: TCP connect/accept and UDP, addresses as 2-tuples."""
    srv = usocket.socket(usocket.AF_INET6, usocket.SOCK_STREAM)
    srv.bind(("::1", 0))
    srv.listen(1)
    port = local_addr(srv)[1]
    cli = usocket.socket(usocket.AF_INET6, usocket.SOCK_STREAM)
    cli.connect(("::1", port))
    conn, ip, _ = srv.accept()
    assert ip == "::1"
    cli.send(b"six")
    data, addr = conn.recvfrom(10)
    assert data == b"six" and addr[0] == "::1" and len(addr) == 2
    for s in (conn, cli, srv):
        s.close()
    u = usocket.socket(usocket.AF_INET6, usocket.SOCK_DGRAM)
    u.bind(("::1", 0))
    uport = local_addr(u)[1]
    u.sendto(b"self", ("::1", uport))
    data, addr = u.recvfrom(10)
    assert data == b"self" and addr == ("::1", uport)
    u.close()


def test_makefile_returns_the_socket_itself():
    """makefile() ignores up to two arguments and returns self."""
    s = usocket.socket()
    try:
        assert s.makefile() is s
        assert s.makefile("rb") is s
        assert s.makefile("rwb", 0) is s
        with pytest.raises(TypeError):
            s.makefile("rb", 0, 1)
    finally:
        s.close()


def test_select_and_selectors_work_on_usocket_objects():
    """fileno() is the real fd: select.select and selectors accept usocket objects."""
    with usocket_pair() as (cli, conn):
        assert select.select([cli], [], [], 0)[0] == []
        conn.sendall(b"x")
        assert select.select([cli], [], [], 5)[0] == [cli]
        with selectors.DefaultSelector() as sel:
            sel.register(cli, selectors.EVENT_READ, "data")
            events = sel.select(timeout=5)
            assert [key.data for key, _ in events] == ["data"]
        assert cli.recv(1) == b"x"


def test_settimeout_and_setblocking_values():
    """None, 0, floats and ints are accepted; negative/NaN are ValueError; str TypeError."""
    s = usocket.socket()
    try:
        for v in (None, 0, 0.5, 3, True):
            s.settimeout(v)
        s.setblocking(False)
        s.setblocking(1)
        for bad in (-1, float("nan")):
            with pytest.raises(ValueError):
                s.settimeout(bad)
        with pytest.raises(TypeError):
            s.settimeout("1")
    finally:
        s.close()


def test_setsockopt_options(capfd):
    """SO_REUSEADDR and TCP_KEEPALIVE apply (level ignored); others print the warning line."""
    s = usocket.socket()
    try:
        s.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
        s.setsockopt(0, usocket.SO_REUSEADDR, 1)  # level is ignored on the device
        s.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, 1)
        assert sockopt(s, cpy.SOL_SOCKET, cpy.SO_REUSEADDR) == 1
        assert sockopt(s, cpy.SOL_SOCKET, cpy.SO_KEEPALIVE) == 1
        assert sockopt(s, cpy.IPPROTO_TCP, cpy.TCP_KEEPIDLE) == 60
        assert s.setsockopt(usocket.SOL_SOCKET, 99, 1) is None
        out = capfd.readouterr().out
        assert out == "Warning: lwip.setsockopt() option not implemented\n"
        with pytest.raises(TypeError):
            s.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, "1")
        u = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        u.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, 5)  # ignored on UDP
        u.close()
    finally:
        s.close()


def test_bind_empty_host_means_every_interface():
    """bind(('', port)) binds 0.0.0.0 (and :: for IPv6)."""
    s = usocket.socket()
    s6 = usocket.socket(usocket.AF_INET6)
    try:
        s.bind(("", 0))
        s6.bind(("", 0))
        assert local_addr(s)[0] == "0.0.0.0"
        assert local_addr(s6)[0] == "::"
    finally:
        s.close()
        s6.close()


def test_connect_resolves_host_names():
    """connect() accepts a host name (resolved like getaddrinfo)."""
    peer = Peer(echo_handler)
    s = usocket.socket()
    try:
        s.connect(("localhost", peer.port))
        s.sendall(b"name")
        assert s.read(4) == b"name"
    finally:
        s.close()
        peer.join()


def test_listen_backlog_is_optional_and_negative_is_clamped():
    """listen() and listen(-5) both work."""
    for backlog in ((), (-5,), (10,)):
        s = usocket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(*backlog)
        assert s.getsocketsta() == 1
        s.close()


def test_accepted_socket_is_blocking_whatever_the_listener_mode():
    """accept() on a non-blocking listener gives a blocking connection (as on the device)."""
    import os

    srv = usocket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = cpy.create_connection(local_addr(srv))
    srv.setblocking(False)
    select.select([srv], [], [], 5)
    conn, _, _ = srv.accept()
    try:
        assert os.get_blocking(conn.fileno())
        c.sendall(b"blocking")
        assert conn.read(8) == b"blocking"
    finally:
        conn.close()
        c.close()
        srv.close()
