"""usys, uselect over usocket objects, and the thin u* aliases."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import usocket
from runner_support import free_port
from usocket.runner import device_environment


@pytest.fixture
def device() -> Iterator[Callable[[str], ModuleType]]:
    with device_environment():
        yield importlib.import_module


@pytest.fixture
def pair() -> Iterator[tuple]:
    """A connected pair of usocket TCP sockets on loopback: (listener, client, server)."""
    listener = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    port = free_port()  # usocket has no getsockname(): pick the port beforehand
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    try:
        client.connect(("127.0.0.1", port))
        server, _ip, _port = listener.accept()
        try:
            yield listener, client, server
        finally:
            server.close()
    finally:
        client.close()
        listener.close()


def test_usys_print_exception_goes_to_stdout(
    device: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    """print_exception prints the traceback and the error, to stdout by default."""
    usys = device("usys")
    try:
        raise OSError(110)
    except OSError as exc:
        usys.print_exception(exc)
        buffer = io.StringIO()
        usys.print_exception(exc, buffer)
    out = capsys.readouterr().out
    assert out.startswith("Traceback (most recent call last):\n")
    assert out.rstrip().endswith("OSError: 110")
    assert buffer.getvalue() == out


def test_usys_follows_sys(device: Callable[[str], ModuleType]) -> None:
    """usys.argv/stdout/stderr/exit are sys's, looked up at access time."""
    usys = device("usys")
    assert usys.argv is sys.argv
    assert usys.stdout is sys.stdout
    assert usys.stderr is sys.stderr
    with pytest.raises(SystemExit):
        usys.exit(0)
    with pytest.raises(AttributeError, match="usys"):
        _ = usys.no_such_name


def test_uselect_poll_on_usocket(device: Callable[[str], ModuleType], pair: tuple) -> None:
    """poll() returns (registered object, events): nothing, then POLLIN after a send."""
    uselect = device("uselect")
    _listener, client, server = pair
    poller = uselect.poll()
    poller.register(server, uselect.POLLIN)
    assert poller.poll(0) == []
    client.send(b"x")
    assert poller.poll(2000) == [(server, uselect.POLLIN)]
    assert list(poller.ipoll(0)) == [(server, uselect.POLLIN)]
    assert server.recv(1) == b"x"
    poller.modify(server, uselect.POLLOUT)
    assert poller.poll(1000) == [(server, uselect.POLLOUT)]
    poller.unregister(server)
    assert poller.poll(0) == []
    with pytest.raises(OSError):
        poller.modify(server, uselect.POLLIN)


def test_uselect_reports_peer_close_and_closed_socket(
    device: Callable[[str], ModuleType], pair: tuple
) -> None:
    """A peer's FIN makes the socket readable; a closed usocket reports POLLNVAL."""
    uselect = device("uselect")
    _listener, client, server = pair
    poller = uselect.poll()
    poller.register(server, uselect.POLLIN)
    client.close()
    events = poller.poll(2000)
    assert events and events[0][0] is server and events[0][1] & uselect.POLLIN
    server.close()
    assert poller.poll(0) == [(server, uselect.POLLNVAL)]


def test_uselect_select(device: Callable[[str], ModuleType], pair: tuple) -> None:
    """select() takes usocket objects and returns the ready ones."""
    uselect = device("uselect")
    _listener, client, server = pair
    assert uselect.select([server], [], [], 0) == ([], [], [])
    client.send(b"y")
    readable, writable, _ = uselect.select([server], [client], [], 2)
    assert (readable, writable) == ([server], [client])


def test_uerrno_has_the_device_table(device: Callable[[str], ModuleType]) -> None:
    """uerrno names carry the Linux numbers usocket raises; errorcode maps them back."""
    uerrno = device("uerrno")
    assert (uerrno.EAGAIN, uerrno.ETIMEDOUT, uerrno.ENOTCONN, uerrno.ECONNRESET) == (
        11,
        110,
        107,
        104,
    )
    assert (uerrno.EALREADY, uerrno.EINPROGRESS, uerrno.EBADF) == (114, 115, 9)
    assert uerrno.errorcode[110] == "ETIMEDOUT"
    assert len(uerrno.errorcode) == 22


def test_thin_aliases(device: Callable[[str], ModuleType], tmp_path: Path) -> None:
    """ujson, ubinascii, ustruct, uio, uos and urandom behave as their CPython modules."""
    ujson, ubinascii, ustruct = device("ujson"), device("ubinascii"), device("ustruct")
    uio, uos, urandom = device("uio"), device("uos"), device("urandom")
    assert ujson.loads(ujson.dumps({"a": [1, 2]})) == {"a": [1, 2]}
    with pytest.raises(ValueError):
        ujson.loads("{bad")
    assert ubinascii.hexlify(b"\x01\xab") == b"01ab"
    assert ubinascii.unhexlify("01ab") == b"\x01\xab"
    assert ubinascii.b2a_base64(b"hi") == b"aGk=\n"
    assert ustruct.unpack(">HB", ustruct.pack(">HB", 513, 7)) == (513, 7)
    assert ustruct.calcsize("<I") == 4
    buffer = uio.BytesIO()
    buffer.write(b"ab")
    assert buffer.getvalue() == b"ab"
    (tmp_path / "f.txt").write_text("12345")
    (tmp_path / "d").mkdir()
    assert sorted(uos.listdir(str(tmp_path))) == ["d", "f.txt"]
    entries = {name: (kind, size) for name, kind, _ino, size in uos.ilistdir(str(tmp_path))}
    assert entries == {"d": (0x4000, 0), "f.txt": (0x8000, 5)}
    assert uos.stat(str(tmp_path / "f.txt"))[6] == 5
    with uio.open(str(tmp_path / "f.txt")) as f:
        assert f.read() == "12345"
    assert all(1 <= urandom.randint(1, 3) <= 3 for _ in range(50))
    assert 0 <= urandom.getrandbits(8) < 256
