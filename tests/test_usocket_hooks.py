"""The private hooks other parts of usocket-rs use: the address map and the warn-once
instance getaddrinfo."""

from __future__ import annotations

import pytest
import usocket
from usocket_peers import Peer, echo_handler, local_addr

set_map = usocket._usocket._set_address_map


@pytest.fixture
def address_map():
    """Clear the address map after the test."""
    yield set_map
    set_map([])


def test_connect_follows_a_map_rule_and_announces_once(address_map, capsys):
    """A rule rewrites the device's server address; the first use is printed once."""
    peer = Peer(echo_handler, count=2)
    address_map([("Device.Example.COM", 34187, "127.0.0.1", peer.port)])
    for _ in range(2):
        s = usocket.socket()
        s.connect(("device.example.com", 34187))
        s.sendall(b"hi")
        assert s.read(2) == b"hi"
        s.close()
    peer.join()
    err = capsys.readouterr().err
    assert err == f"usocket: mapped device.example.com:34187 -> 127.0.0.1:{peer.port}\n"


def test_map_applies_to_getaddrinfo_and_sendto(address_map, capsys):
    """getaddrinfo and sendto see the mapped address; None ports match any / keep."""
    u = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = local_addr(u)[1]
    address_map([("udp.server", None, "127.0.0.1", port), ("keep.port", None, "127.0.0.1", None)])
    assert usocket.getaddrinfo("keep.port", 5555)[0][-1] == ("127.0.0.1", 5555)
    assert usocket.getaddrinfo("udp.server", 1)[0][-1] == ("127.0.0.1", port)
    s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    assert s.sendto(b"mapped", ("udp.server", 9)) == 6
    assert u.recvfrom(10)[0] == b"mapped"
    s.close()
    u.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "usocket: mapped keep.port:5555 -> 127.0.0.1:5555",
        f"usocket: mapped udp.server:1 -> 127.0.0.1:{port}",
    ]


def test_empty_map_clears_and_bad_rules_are_rejected(address_map):
    """[] clears the rules; malformed rules raise TypeError/ValueError."""
    address_map([("nowhere.invalid", None, "127.0.0.1", None)])
    address_map([])
    with pytest.raises(OSError):
        usocket.getaddrinfo("nowhere.invalid", 80)
    with pytest.raises(TypeError):
        address_map(["host"])
    with pytest.raises(ValueError):
        address_map([("a", 1, "b")])
    with pytest.raises(OverflowError):
        address_map([("a", 70000, "b", None)])


def test_instance_getaddrinfo_works_and_warns_once():
    """sock.getaddrinfo() delegates to usocket.getaddrinfo and warns once per process."""
    usocket._usocket._reset_warnings()
    s = usocket.socket()
    try:
        with pytest.warns(usocket.DeviceCompatibilityWarning, match="no getaddrinfo"):
            assert s.getaddrinfo("127.0.0.1", 80) == usocket.getaddrinfo("127.0.0.1", 80)
        assert s.getaddrinfo("127.0.0.1", 81)[0][-1] == ("127.0.0.1", 81)  # no second warning
    finally:
        s.close()
