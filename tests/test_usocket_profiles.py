"""The three profiles: quecpython (default), legacy and micropython, chosen by
USOCKET_PROFILE at import or switched with usocket._apply_profile."""

from __future__ import annotations

import socket as cpy
import time

import pytest
import usocket
from usocket_peers import (
    Peer,
    local_addr,
    profile,
    refused_port,
    run_python,
    send_then_close,
    usocket_pair,
)


def test_default_profile_is_quecpython():
    """Without USOCKET_PROFILE the profile is quecpython."""
    r = run_python("import usocket; print(usocket._profile())", USOCKET_PROFILE="")
    assert r.stdout.strip() == "quecpython"


@pytest.mark.parametrize("name", ["quecpython", "legacy", "micropython"])
def test_environment_variable_selects_the_profile(name):
    """USOCKET_PROFILE is read at import."""
    r = run_python(
        "import usocket; print(usocket._profile(), usocket.SOL_SOCKET)", USOCKET_PROFILE=name
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [name, "1" if name == "micropython" else "4095"]


def test_unknown_profile_is_a_valueerror():
    """An unknown name is refused, in-process and from the environment."""
    with pytest.raises(ValueError):
        usocket._apply_profile("esp32")
    assert usocket._profile() == "quecpython"
    r = run_python("import usocket", USOCKET_PROFILE="esp32")
    assert r.returncode != 0 and "ValueError" in r.stderr


def test_micropython_namespace():
    """micropython: upstream's names and Linux values; device-only names gone."""
    with profile("micropython"):
        assert (usocket.SOL_SOCKET, usocket.SO_REUSEADDR) == (1, 2)
        for name in (
            "MSG_PEEK",
            "MSG_DONTWAIT",
            "MSG_DONTROUTE",
            "SO_BROADCAST",
            "SO_KEEPALIVE",
            "SO_LINGER",
            "SO_ERROR",
            "IP_ADD_MEMBERSHIP",
            "IP_DROP_MEMBERSHIP",
            "inet_pton",
            "inet_ntop",
        ):
            assert hasattr(usocket, name), name
        for name in ("IPPROTO_TCP_SER", "TCP_CUSTOMIZE_PORT", "TCP_KEEPALIVE"):
            assert not hasattr(usocket, name), name
        s = usocket.socket()
        assert not hasattr(s, "getsocketsta")
        s.close()
        assert (
            usocket.inet_ntop(usocket.AF_INET6, usocket.inet_pton(usocket.AF_INET6, "::1")) == "::1"
        )
        assert usocket.inet_pton(usocket.AF_INET, "1.2.3.4") == b"\x01\x02\x03\x04"
    s = usocket.socket()
    assert s.getsocketsta() == 0 and not hasattr(usocket, "MSG_PEEK")
    s.close()


def test_legacy_namespace_adds_ip_add_membership():
    """legacy: the device set plus IP_ADD_MEMBERSHIP = 1024."""
    with profile("legacy"):
        assert usocket.IP_ADD_MEMBERSHIP == 1024 and usocket.TCP_KEEPALIVE == 2
    assert not hasattr(usocket, "IP_ADD_MEMBERSHIP")


def test_accept_shape_per_profile():
    """3-tuple on the device profiles, (conn, (ip, port)) in micropython."""
    shapes = {}
    for name in ("quecpython", "legacy", "micropython"):
        with profile(name):
            srv = usocket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            c = cpy.create_connection(local_addr(srv))
            result = srv.accept()
            shapes[name] = [type(x).__name__ for x in result]
            result[0].close()
            c.close()
            srv.close()
    assert shapes["quecpython"] == shapes["legacy"] == ["socket", "str", "int"]
    assert shapes["micropython"] == ["socket", "tuple"]


def test_fin_and_refused_per_profile():
    """FIN: 107 then b'' (device) vs b'' at once (micropython); refused 104 vs 111."""
    results = {}
    for name in ("quecpython", "micropython"):
        with profile(name):
            peer = Peer(send_then_close(b""))
            s = usocket.socket()
            s.connect(peer.address)
            peer.join()
            try:
                results[name] = s.recv(10)
            except OSError as e:
                results[name] = e.args
            s.close()
            s = usocket.socket()
            with pytest.raises(OSError) as ei:
                s.connect(("127.0.0.1", refused_port()))
            results[name + "-refused"] = ei.value.args[0]
            s.close()
    assert results == {
        "quecpython": (107,),
        "quecpython-refused": 104,
        "micropython": b"",
        "micropython-refused": 111,
    }


def test_legacy_quirks():
    """legacy: non-blocking stream reads raise 11, getaddrinfo failure is [], send(b'')
    raises 110, DNS failure in connect raises 202."""
    with profile("legacy"), usocket_pair() as (cli, _):
        cli.setblocking(False)
        for call in (
            lambda: cli.read(3),
            lambda: cli.readline(),
            lambda: cli.readinto(bytearray(2)),
        ):
            with pytest.raises(OSError) as ei:
                call()
            assert ei.value.args == (11,)
        assert usocket.getaddrinfo("no-such-host.invalid", 80) == []
        cli.setblocking(True)
        with pytest.raises(OSError) as ei:
            cli.send(b"")
        assert ei.value.args == (110,)
        s = usocket.socket()
        with pytest.raises(OSError) as ei:
            s.connect(("no-such-host.invalid", 80))
        assert ei.value.args == (202,)
        s.close()


def test_micropython_flags_listen_and_setsockopt_level():
    """micropython: recv/send take flags (MSG_PEEK, MSG_DONTWAIT); setsockopt honours level."""
    with profile("micropython"), usocket_pair() as (cli, conn):
        conn.sendall(b"peek")
        time.sleep(0.05)
        assert cli.recv(4, usocket.MSG_PEEK) == b"peek"
        assert cli.recv(4) == b"peek"
        with pytest.raises(OSError) as ei:
            cli.recv(4, usocket.MSG_DONTWAIT)
        assert ei.value.args == (11,)
        assert cli.send(b"ab", 0) == 2
        cli.setsockopt(usocket.SOL_SOCKET, usocket.SO_KEEPALIVE, 1)
        import struct

        cli.setsockopt(usocket.SOL_SOCKET, usocket.SO_LINGER, struct.pack("ii", 1, 0))
        with pytest.raises(OSError):
            cli.setsockopt(12345, 1, 1)
        u = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        assert u.sendto(b"x", 0, local_addr(u)) == 1
        assert u.recvfrom(5, 0)[0] == b"x"
        u.close()


def test_micropython_getaddrinfo_returns_all_results():
    """micropython: getaddrinfo honours hints and may return several entries."""
    with profile("micropython"):
        res = usocket.getaddrinfo("localhost", 80, 0, usocket.SOCK_STREAM)
        assert len(res) >= 1 and all(r[1] == usocket.SOCK_STREAM for r in res)
        assert usocket.getaddrinfo("127.0.0.1", 80, usocket.AF_INET)[0][-1] == ("127.0.0.1", 80)


def test_micropython_nonblocking_stream_reads_return_none():
    """micropython: non-blocking read/readline return None."""
    with profile("micropython"), usocket_pair() as (cli, _):
        cli.setblocking(False)
        assert cli.read(3) is None and cli.readline() is None
