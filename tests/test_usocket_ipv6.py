"""Dual-stack IPv6 as lwIP does it: an AF_INET6 socket bound to '::' also serves IPv4 peers
(reported IPv4-mapped) and reaches IPv4 listeners through '::ffff:a.b.c.d'; a numeric
address of the other family is refused with OSError(22). Both families against listeners
of both families, in all three profiles."""

from __future__ import annotations

import pytest
import usocket
from usocket_peers import PEER_TIMEOUT_S, local_addr, profile

PROFILES = ["quecpython", "legacy", "micropython"]
V4, V6 = usocket.AF_INET, usocket.AF_INET6


def listener(family: int, host: str) -> usocket.socket:
    s = usocket.socket(family, usocket.SOCK_STREAM)
    s.settimeout(PEER_TIMEOUT_S)
    s.bind((host, 0))
    s.listen(4)
    return s


def accept(lst: usocket.socket) -> tuple[usocket.socket, str]:
    """accept() in either profile shape; returns (conn, peer ip)."""
    got = lst.accept()
    if len(got) == 3:
        return got[0], got[1]
    return got[0], got[1][0]


# (listener family, listener host, client family, client destination host, peer ip seen)
WORKING = [
    (V6, "::", V4, "127.0.0.1", "::ffff:127.0.0.1"),
    (V6, "::", V6, "::1", "::1"),
    (V6, "::", V6, "::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    (V6, "", V4, "127.0.0.1", "::ffff:127.0.0.1"),
    (V6, "::1", V6, "::1", "::1"),
    (V4, "127.0.0.1", V4, "127.0.0.1", "127.0.0.1"),
    (V4, "127.0.0.1", V6, "::ffff:127.0.0.1", "127.0.0.1"),
    (V4, "0.0.0.0", V6, "::ffff:127.0.0.1", "127.0.0.1"),
]


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("lfam,lhost,cfam,chost,peer", WORKING)
def test_both_families_against_both_listeners(name, lfam, lhost, cfam, chost, peer):
    """Each working combination connects, carries data both ways and reports the peer as
    the device's dual stack would."""
    with profile(name):
        lst = listener(lfam, lhost)
        cli = usocket.socket(cfam, usocket.SOCK_STREAM)
        try:
            cli.settimeout(PEER_TIMEOUT_S)
            cli.connect((chost, local_addr(lst)[1]))
            conn, ip = accept(lst)
            try:
                assert ip == peer
                cli.send(b"ping")
                assert conn.recv(10) == b"ping"
                conn.send(b"pong")
                assert cli.recv(10) == b"pong"
            finally:
                conn.close()
        finally:
            cli.close()
            lst.close()


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize(
    "family,host",
    [(V6, "127.0.0.1"), (V4, "::1"), (V4, "::ffff:127.0.0.1")],
    ids=["v4-on-v6", "v6-on-v4", "mapped-on-v4"],
)
def test_the_other_family_is_refused_with_22(name, family, host):
    """A numeric address of the other family: OSError(22) in connect, bind and sendto."""
    with profile(name):
        lst = listener(V6, "::")
        port = local_addr(lst)[1]
        try:
            for kind, call in [
                (usocket.SOCK_STREAM, lambda s: s.connect((host, port))),
                (usocket.SOCK_STREAM, lambda s: s.bind((host, 0))),
                (usocket.SOCK_DGRAM, lambda s: s.sendto(b"x", (host, port))),
            ]:
                s = usocket.socket(family, kind)
                try:
                    with pytest.raises(OSError) as e:
                        call(s)
                    assert type(e.value) is OSError and e.value.args == (22,)
                finally:
                    s.close()
        finally:
            lst.close()


@pytest.mark.parametrize("name", PROFILES)
def test_ipv6_only_listener_does_not_take_ipv4(name):
    """A listener on '::1' is IPv6 only (as in lwIP): an IPv4 connect to its port is
    refused (104 on the device, 111 upstream)."""
    with profile(name):
        lst = listener(V6, "::1")
        cli = usocket.socket(V4, usocket.SOCK_STREAM)
        try:
            with pytest.raises(OSError) as e:
                cli.connect(("127.0.0.1", local_addr(lst)[1]))
            assert e.value.args == ((111,) if name == "micropython" else (104,))
        finally:
            cli.close()
            lst.close()


@pytest.mark.parametrize("name", PROFILES)
def test_dual_stack_datagrams(name):
    """A UDP AF_INET6 socket on '::' receives an IPv4 datagram from an IPv4-mapped sender
    address and answers it there; an AF_INET socket gets the answer from 127.0.0.1."""
    with profile(name):
        server = usocket.socket(V6, usocket.SOCK_DGRAM)
        client = usocket.socket(V4, usocket.SOCK_DGRAM)
        try:
            server.settimeout(PEER_TIMEOUT_S)
            client.settimeout(PEER_TIMEOUT_S)
            server.bind(("::", 0))
            client.sendto(b"hi", ("127.0.0.1", local_addr(server)[1]))
            data, sender = server.recvfrom(100)
            assert data == b"hi" and sender[0] == "::ffff:127.0.0.1" and len(sender) == 2
            server.sendto(b"back", sender)
            data, sender = client.recvfrom(100)
            assert data == b"back" and sender == ("127.0.0.1", local_addr(server)[1])
        finally:
            server.close()
            client.close()
