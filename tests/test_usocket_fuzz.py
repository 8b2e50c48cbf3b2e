"""Property-based argument fuzzing: any argument of any method gives a result or a clear
exception (TypeError/ValueError/OverflowError/MemoryError/OSError), never a crash or a
PanicException (which derives from BaseException, so it would escape the checks below)."""

from __future__ import annotations

import contextlib

import pytest
import usocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usocket_peers import usocket_pair

# The leniency warnings (send(b'') here) are expected; the fuzz is about exceptions.
pytestmark = pytest.mark.filterwarnings("ignore::usocket.DeviceCompatibilityWarning")

ALLOWED = (TypeError, ValueError, OverflowError, MemoryError, OSError)

# Hosts are limited to loopback or malformed values: fuzzing must never reach the network.
HOSTS = st.sampled_from(["127.0.0.1", "::1", "", "localhost", "1.2.3.4.5", "\x00", "é", "::g"])
PORTS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.none(), st.floats(), st.text(max_size=3)
)
ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=16),
    st.builds(bytearray, st.binary(max_size=16)),
    st.lists(st.integers(), max_size=3),
    st.tuples(HOSTS, PORTS),
    st.lists(st.one_of(HOSTS, PORTS), max_size=4),
)
SIZES = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), ANY)


def check(fn, *args):
    with contextlib.suppress(*ALLOWED):
        fn(*args)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(size=SIZES, extra=st.one_of(st.none(), ANY))
def test_fuzz_reads(size, extra):
    """recv/recvfrom/read/readline/readinto with arbitrary sizes and buffers."""
    with usocket_pair() as (cli, conn):
        conn.sendall(b"some data\nmore")
        cli.settimeout(0.01)
        check(cli.recv, size)
        check(cli.recvfrom, size)
        check(cli.read, size)
        check(cli.readline, size)
        check(cli.readinto, size)
        check(cli.readinto, bytearray(8), size)
        if extra is not None:
            check(cli.recv, size, extra)
            check(cli.readinto, extra)


@FUZZ
@given(data=ANY, a=SIZES, b=SIZES, address=ANY)
def test_fuzz_writes(data, a, b, address):
    """send/sendall/write/sendto with arbitrary data, offsets and addresses."""
    with usocket_pair() as (cli, _conn):
        cli.settimeout(0.01)
        check(cli.send, data)
        check(cli.sendall, data)
        check(cli.write, data, a)
        check(cli.write, data, a, b)
        u = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        u.settimeout(0.01)
        check(u.sendto, data, address)
        check(u.sendto, b"x", address)
        u.close()


@FUZZ
@given(address=ANY, value=ANY, level=SIZES, opt=SIZES, backlog=SIZES)
def test_fuzz_setup_calls(address, value, level, opt, backlog):
    """bind/listen/settimeout/setblocking/setsockopt/makefile with arbitrary arguments."""
    s = usocket.socket()
    try:
        check(s.bind, address)
        check(s.listen, backlog)
        check(s.settimeout, value)
        check(s.setblocking, value)
        check(s.setsockopt, level, opt, value)
        check(s.makefile, value)
        s.settimeout(0)
        check(s.accept)
    finally:
        s.close()


@FUZZ
@given(af=SIZES, kind=SIZES, proto=SIZES)
def test_fuzz_constructor(af, kind, proto):
    """socket(af, type, proto) with arbitrary values."""
    with contextlib.suppress(*ALLOWED):
        usocket.socket(af, kind, proto).close()


@FUZZ
@given(host=st.one_of(HOSTS, ANY), port=PORTS, rest=st.lists(ANY, max_size=5))
def test_fuzz_getaddrinfo(host, port, rest):
    """getaddrinfo with arbitrary (loopback-only) hosts, ports and extra arguments."""
    check(usocket.getaddrinfo, host, port, *rest)
