"""ussl: TLS from the Rust core against a real CPython TLS peer on loopback, in every
profile: verification rules, errors, blocking/timeout/non-blocking, the FIN rule,
close from another thread, server side, and bad input."""

from __future__ import annotations

import hashlib
import importlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import usocket
from runner_support import run_device
from tls_support import Certs, TlsServer, connect_usocket, env, make_certs
from usocket.runner import device_environment
from usocket_peers import profile

PROFILES = ["quecpython", "legacy", "micropython"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def ussl() -> Iterator[ModuleType]:
    with env(USOCKET_SSL_STRICT=None, USOCKET_SSL_TLS13=None), device_environment():
        yield importlib.import_module("ussl")


def echo_once(tls: ssl.SSLSocket) -> None:
    data = tls.recv(65536)
    tls.sendall(b"echo:" + data)


def send_then_close(payload: bytes):
    def handler(tls: ssl.SSLSocket) -> None:
        tls.recv(16)
        tls.sendall(payload)
        tls.unwrap()  # close_notify, then the TCP FIN

    return handler


def hold_until(stop: threading.Event):
    def handler(tls: ssl.SSLSocket) -> None:
        stop.wait(10)

    return handler


def test_handshake_without_ca_verifies_nothing_and_sends_sni(
    ussl: ModuleType, certs: Certs
) -> None:
    """No ca: a certificate from an unknown CA is accepted; SNI is sent; DER peer cert."""
    seen_sni: list[str | None] = []
    ctx = certs.server_context()
    ctx.sni_callback = lambda sock, name, _ctx: seen_sni.append(name)
    with TlsServer(ctx, echo_once) as server:
        s = ussl.wrap_socket(connect_usocket(server.port), server_hostname="localhost")
        assert s.getsocketsta() == 4  # established (the server closes after its echo)
        assert s.write(b"hi") == 2
        assert s.read(7) == b"echo:hi"
        assert s.getpeercert(True) == certs.server_cert_der
        assert s._version() == "TLSv1.2"
        with pytest.raises(NotImplementedError):
            s.getpeercert(False)
        s.close()
        s.close()
        assert s.getsocketsta() == -1
        with pytest.raises(OSError) as e:
            s.read(1)
        assert e.value.args == (9,)
    assert seen_sni == ["localhost"]
    assert not server.errors


def test_ca_verifies_chain_and_hostname(ussl: ModuleType, certs: Certs) -> None:
    """With ca the chain and (when given) the name must verify: -9984 otherwise."""
    with TlsServer(certs.server_context(), echo_once, connections=4) as server:
        ok = ussl.wrap_socket(
            connect_usocket(server.port), ca=certs.ca_pem, server_hostname="localhost"
        )
        ok.write("x")
        assert ok.read(6) == b"echo:x"
        ok.close()
        # Without server_hostname only the chain is checked.
        ok2 = ussl.wrap_socket(connect_usocket(server.port), ca=certs.ca_pem.encode())
        ok2.close()
        for kwargs in (
            {"ca": certs.ca_pem, "server_hostname": "wrong.example"},
            {"ca": make_certs(certs.ca_file.parent / "other").ca_pem},
        ):
            with pytest.raises(OSError) as e:
                ussl.wrap_socket(connect_usocket(server.port), **kwargs)
            assert type(e.value) is OSError
            assert e.value.args == (-9984,)


def test_bad_pem_and_bad_arguments(ussl: ModuleType, certs: Certs) -> None:
    """Bad PEM is ValueError before any byte is sent; wrong types are TypeError."""
    raw = usocket.socket()
    try:
        junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        cases = [
            ({"ca": "not a certificate"}, "invalid cert"),
            ({"ca": junk}, "invalid ca"),
            ({"key": "nope", "cert": certs.client_cert_pem}, "invalid key"),
            ({"key": certs.client_key_pem, "cert": "nope"}, "invalid cert"),
            ({"key": certs.server_key_pem, "cert": certs.client_cert_pem}, "invalid key"),
        ]
        for kwargs, message in cases:
            with pytest.raises(ValueError, match=f"^{message}$"):
                ussl.wrap_socket(raw, **kwargs)
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, {"ca": certs.ca_pem})  # second positional
        with pytest.raises(TypeError):
            ussl.wrap_socket(42)
        udp = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        with pytest.raises(TypeError):
            ussl.wrap_socket(udp)
        udp.close()
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, ca=42)
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, key=certs.client_key_pem)
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, server_side=True)
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, cadata=certs.ca_pem)  # upstream spelling: micropython only
        with pytest.raises(TypeError):
            ussl.wrap_socket(raw, server_hostname=b"localhost")
        with pytest.raises(AttributeError):
            ussl.CERT_REQUIRED  # noqa: B018
        # Never connected: the handshake fails with the socket's errno, at once.
        with pytest.raises(OSError) as e:
            ussl.wrap_socket(raw)
        assert type(e.value) is OSError and e.value.args[0] > 0
    finally:
        raw.close()


@pytest.mark.parametrize("name", PROFILES)
def test_fin_rule_per_profile(ussl: ModuleType, certs: Certs, name: str) -> None:
    """Data before close_notify is delivered whole; then 107 once (device) or b''."""
    with profile(name), TlsServer(certs.server_context(), send_then_close(b"ab\ncd")) as server:
        s = ussl.wrap_socket(connect_usocket(server.port))
        s.write(b"go")
        assert s.readline() == b"ab\n"
        assert s.read(10) == b"cd"  # short: the stream ended
        if name == "micropython":
            assert s.read(10) == b""
        else:
            with pytest.raises(OSError) as e:
                s.read(10)
            assert e.value.args == (107,)
        assert s.read(10) == b""
        assert s.recv(10) == b""
        s.close()


@pytest.mark.parametrize("name", PROFILES)
def test_timeout_and_nonblocking(ussl: ModuleType, certs: Certs, name: str) -> None:
    """Timeout: OSError(110); non-blocking: None (11 in legacy), recv always 11."""
    stop = threading.Event()
    with profile(name), TlsServer(certs.server_context(), hold_until(stop)) as server:
        s = ussl.wrap_socket(connect_usocket(server.port))
        try:
            s.settimeout(0.2)
            for call in (lambda: s.read(5), lambda: s.recv(5), s.readline):
                with pytest.raises(OSError) as e:
                    call()
                assert e.value.args == (110,)
            s.setblocking(False)
            with pytest.raises(OSError) as e:
                s.recv(5)
            assert e.value.args == (11,)
            if name == "legacy":
                with pytest.raises(OSError) as e:
                    s.read(5)
                assert e.value.args == (11,)
            else:
                assert s.read(5) is None
                assert s.readinto(bytearray(4)) is None
            assert s.write(b"still writable") == 14
            with pytest.raises(ValueError):
                s.settimeout(-1)
        finally:
            stop.set()
            s.close()


def test_close_from_another_thread_wakes_reader(ussl: ModuleType, certs: Certs) -> None:
    """A thread blocked in read gets OSError(9) when another thread closes the stream."""
    stop = threading.Event()
    with TlsServer(certs.server_context(), hold_until(stop)) as server:
        s = ussl.wrap_socket(connect_usocket(server.port))
        result: list[OSError | bytes | None] = []

        def reader() -> None:
            try:
                result.append(s.read(10))
            except OSError as exc:
                result.append(exc)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.2)
        assert t.is_alive()
        s.close()
        t.join(5)
        stop.set()
        assert not t.is_alive()
        assert isinstance(result[0], OSError) and result[0].args == (9,)


@pytest.mark.parametrize("do_handshake", [True, False])
def test_reader_thread_and_writer_run_together(
    ussl: ModuleType, certs: Certs, do_handshake: bool
) -> None:
    """A blocked reader does not block writes from another thread (the device pattern),
    also when the reader is the one that runs the handshake."""

    def echo_lines(tls: ssl.SSLSocket) -> None:
        f = tls.makefile("rb")
        for _ in range(3):
            tls.sendall(f.readline())

    with TlsServer(certs.server_context(), echo_lines) as server:
        s = ussl.wrap_socket(connect_usocket(server.port), do_handshake=do_handshake)
        got: list[bytes] = []
        t = threading.Thread(target=lambda: got.extend(s.readline() for _ in range(3)))
        t.start()
        time.sleep(0.1)
        for i in range(3):
            s.write(f"line {i}\n")
        t.join(5)
        assert got == [b"line 0\n", b"line 1\n", b"line 2\n"]
        s.close()


def test_bulk_transfer_readinto_and_write_length(ussl: ModuleType, certs: Certs) -> None:
    """2 MiB each way arrive intact; write(buf, n) sends the first n bytes."""
    blob = bytes(range(256)) * 8192

    def digest(tls: ssl.SSLSocket) -> None:
        h = hashlib.sha256()
        left = len(blob) + 3
        while left:
            chunk = tls.recv(min(65536, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        tls.sendall(h.digest() + blob)

    with TlsServer(certs.server_context(), digest) as server:
        s = ussl.wrap_socket(connect_usocket(server.port))
        assert s.write(blob) == len(blob)
        assert s.write(b"xyz-ignored", 3) == 3
        assert s.read(32) == hashlib.sha256(blob + b"xyz").digest()
        buf = bytearray(len(blob))
        view = memoryview(buf)
        got = 0
        while got < len(blob):
            got += s.readinto(view[got:])
        assert buf == blob
        s.close()


def test_server_side_and_client_certificates(ussl: ModuleType, certs: Certs) -> None:
    """server_side=True serves a CPython client that verifies us; a client certificate
    is presented when asked; a server that requires one and gets none sends an alert."""
    # usocket sockets have no getsockname(): find a free port with a CPython socket.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    listener = usocket.socket()
    listener.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client_ctx = ssl.create_default_context(cafile=str(certs.ca_file))
    answer: list[bytes] = []

    def client() -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            answer.append(tls.recv(10))

    t = threading.Thread(target=client, daemon=True)
    t.start()
    conn, _ip, _port = listener.accept()
    server = ussl.wrap_socket(
        conn, server_side=True, key=certs.server_key_pem, cert=certs.server_cert_pem
    )
    assert server.read(4) == b"ping"
    server.write(b"pong")
    t.join(5)
    server.close()
    listener.close()
    assert answer == [b"pong"]

    with TlsServer(certs.server_context(require_client_cert=True), echo_once) as strict:
        s = ussl.wrap_socket(
            connect_usocket(strict.port), key=certs.client_key_pem, cert=certs.client_cert_pem
        )
        s.write(b"me")
        assert s.read(7) == b"echo:me"
        s.close()
    with TlsServer(certs.server_context(require_client_cert=True), echo_once) as strict:
        with pytest.raises(OSError) as e:
            s = ussl.wrap_socket(connect_usocket(strict.port))
            s.write(b"me")
            s.read(7)
        # The server's fatal alert, or (when its close overtakes the alert) a reset.
        assert type(e.value) is OSError and e.value.args in ((-30592,), (104,))


def test_strict_mode_and_tls13_opt_in(ussl: ModuleType, certs: Certs) -> None:
    """USOCKET_SSL_STRICT=1 verifies without ca against the system roots (SSL_CERT_FILE);
    USOCKET_SSL_TLS13=1 allows TLS 1.3, which is otherwise never negotiated."""
    other = make_certs(certs.ca_file.parent / "strict-other")
    with TlsServer(certs.server_context(), echo_once, connections=3) as server:
        strict_other = env(USOCKET_SSL_STRICT="1", SSL_CERT_FILE=str(other.ca_file))
        with strict_other, pytest.raises(OSError) as e:
            ussl.wrap_socket(connect_usocket(server.port), server_hostname="localhost")
        assert e.value.args == (-9984,)
        with env(USOCKET_SSL_STRICT="1", SSL_CERT_FILE=str(certs.ca_file)):
            s = ussl.wrap_socket(connect_usocket(server.port), server_hostname="localhost")
            s.close()
        with env(USOCKET_SSL_TLS13="1"):
            s = ussl.wrap_socket(connect_usocket(server.port))
            assert s._version() == "TLSv1.3"
            s.close()


def test_micropython_profile_upstream_keywords(
    ussl: ModuleType, certs: Certs, tmp_path: Path
) -> None:
    """micropython: cert_reqs/cadata/ca_certs as upstream; CERT_* constants exist."""
    with profile("micropython"), TlsServer(certs.server_context(), echo_once, 3) as server:
        assert ussl.CERT_REQUIRED == 2
        s = ussl.wrap_socket(
            connect_usocket(server.port),
            cert_reqs=ussl.CERT_REQUIRED,
            cadata=certs.ca_pem,
            server_hostname="localhost",
        )
        s.close()
        other = make_certs(tmp_path / "other")
        with pytest.raises(OSError) as e:
            ussl.wrap_socket(
                connect_usocket(server.port),
                cert_reqs=ussl.CERT_REQUIRED,
                ca_certs=str(other.ca_file),
            )
        assert e.value.args == (-9984,)
        # CA data without CERT_REQUIRED verifies nothing (upstream's rule).
        s = ussl.wrap_socket(connect_usocket(server.port), cadata=other.ca_pem)
        s.close()
        with pytest.raises(ValueError):
            ussl.wrap_socket(connect_usocket(server.port), cert_reqs=7)
        with pytest.raises(TypeError):
            ussl.wrap_socket(connect_usocket(server.port), bogus=1)


def test_do_handshake_false_runs_it_on_first_write(ussl: ModuleType, certs: Certs) -> None:
    """do_handshake=False: nothing is sent until the first read or write."""
    with TlsServer(certs.server_context(), echo_once) as server:
        s = ussl.wrap_socket(connect_usocket(server.port), do_handshake=False)
        assert s.getpeercert(True) is None
        s.write(b"late")
        assert s.read(9) == b"echo:late"
        assert s.getpeercert(True) == certs.server_cert_der
        s.close()


def test_handshake_timeout_garbage_and_nonblocking_socket(ussl: ModuleType, certs: Certs) -> None:
    """A silent server times the handshake out (110); a server that is not TLS is an
    mbedTLS-style error; a non-blocking socket still completes its handshake."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        s = connect_usocket(port)
        s.settimeout(0.3)
        with pytest.raises(OSError) as e:
            ussl.wrap_socket(s)
        assert e.value.args == (110,)
        s.close()
        silent.accept()[0].close()

        def garbage() -> None:
            c, _ = silent.accept()
            c.recv(1024)
            c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4)
            time.sleep(0.5)
            c.close()

        t = threading.Thread(target=garbage, daemon=True)
        t.start()
        with pytest.raises(OSError) as e:
            ussl.wrap_socket(connect_usocket(port))
        assert type(e.value) is OSError and e.value.args[0] < 0
        t.join(5)
    finally:
        silent.close()
    with TlsServer(certs.server_context(), echo_once) as server:
        s = connect_usocket(server.port)
        s.setblocking(False)
        tls = ussl.wrap_socket(s)
        tls.setblocking(True)
        tls.write(b"nb")
        assert tls.read(7) == b"echo:nb"
        tls.close()


def test_method_arguments_are_checked(ussl: ModuleType, certs: Certs) -> None:
    """Wrong argument types raise TypeError/ValueError and leave the stream usable."""
    with TlsServer(certs.server_context(), echo_once) as server:
        s = ussl.wrap_socket(connect_usocket(server.port))
        with pytest.raises(TypeError):
            s.read("5")
        with pytest.raises(TypeError):
            s.readinto(b"immutable")
        with pytest.raises(TypeError):
            s.write(12)
        with pytest.raises(TypeError):
            s.send(None)
        with pytest.raises((ValueError, OverflowError)):
            s.recv(-1)
        with pytest.raises(TypeError):
            s.getpeercert()
        with pytest.raises(TypeError):
            s.settimeout("1")
        assert s.write(b"") == 0
        assert s.write(b"ok", 99) == 2
        assert s.readline(0) == b""
        assert s.read(7) == b"echo:ok"
        s.close()
        for call in (lambda: s.write(b"x"), lambda: s.recv(1), s.readline, lambda: s.send(b"")):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.args == (9,)


def test_runner_ssl_strict_flag(certs: Certs, tmp_path: Path) -> None:
    """usocket-run --ssl-strict makes ussl verify without ca; without the flag the same
    script connects to a server whose CA nobody trusts."""
    script = tmp_path / "main.py"
    script.write_text(
        "import usocket, ussl, usys\n"
        "s = usocket.socket()\n"
        "s.connect(('127.0.0.1', int(usys.argv[1])))\n"
        "try:\n"
        "    t = ussl.wrap_socket(s, server_hostname='localhost')\n"
        "    t.write(b'hi')\n"
        "    print(t.read(7))\n"
        "except OSError as e:\n"
        "    print('failed', e.args)\n"
    )
    other = make_certs(tmp_path / "nobody")
    with (
        TlsServer(certs.server_context(), echo_once, connections=2) as server,
        env(SSL_CERT_FILE=str(other.ca_file), USOCKET_SSL_STRICT=None),
    ):
        plain = run_device(str(script), str(server.port))
        strict = run_device("--ssl-strict", str(script), str(server.port))
    assert plain.stdout.strip() == "b'echo:hi'", plain.stderr
    assert strict.stdout.strip() == "failed (-9984,)", strict.stderr
