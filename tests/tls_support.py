"""Helpers for the ``ussl``/``umqtt``/``request`` tests: certificates made in the test run,
loopback TLS and HTTP(S) servers (CPython's ``ssl`` and ``http.server``, not under test), and
a real mosquitto broker with a TCP and a TLS listener.

Every wait is bounded: servers use socket timeouts, threads are daemons joined with a
timeout, and the broker is killed if it does not stop.
"""

from __future__ import annotations

import contextlib
import getpass
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme

if TYPE_CHECKING:
    from typing_extensions import Self

PEER_TIMEOUT_S = 10.0
BROKER_START_S = 10.0


@dataclass
class Certs:
    """A CA, a server certificate for ``localhost``/127.0.0.1 and a client certificate,
    as PEM text, plus files for servers that need paths."""

    ca: trustme.CA
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str
    server_cert_der: bytes
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    server: trustme.LeafCert

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        """A CPython TLS server context with the server certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(ctx)
        if require_client_cert:
            self.ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def make_certs(folder: Path) -> Certs:
    """A fresh CA and certificates, written under ``folder`` too."""
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("device.example")
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "ca.pem"
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    server.private_key_pem.write_to_path(str(key_file))
    der = ssl.PEM_cert_to_DER_cert(server.cert_chain_pems[0].bytes().decode())
    return Certs(
        ca=ca,
        ca_pem=ca.cert_pem.bytes().decode(),
        server_cert_pem=server.cert_chain_pems[0].bytes().decode(),
        server_key_pem=server.private_key_pem.bytes().decode(),
        client_cert_pem=client.cert_chain_pems[0].bytes().decode(),
        client_key_pem=client.private_key_pem.bytes().decode(),
        server_cert_der=der,
        ca_file=ca_file,
        server_cert_file=cert_file,
        server_key_file=key_file,
        server=server,
    )


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsServer:
    """A loopback TLS server (CPython ``ssl``) running ``handler(tls_sock)`` per connection
    in a thread. ``errors`` collects what the handshakes or handlers raised."""

    def __init__(
        self,
        ctx: ssl.SSLContext,
        handler: Callable[[ssl.SSLSocket], None],
        connections: int = 1,
    ) -> None:
        self.ctx = ctx
        self.handler = handler
        self.errors: list[BaseException] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(PEER_TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, args=(connections,), daemon=True)
        self.thread.start()

    def _serve(self, connections: int) -> None:
        for _ in range(connections):
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            raw.settimeout(PEER_TIMEOUT_S)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as tls:
                    self.handler(tls)
            except (OSError, ValueError) as exc:  # reported to the test through .errors
                self.errors.append(exc)
            finally:
                raw.close()

    def close(self) -> None:
        """Stops accepting and waits (bounded) for the handler."""
        self.listener.close()
        self.thread.join(PEER_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_usocket(port: int, host: str = "127.0.0.1") -> Any:
    """A connected ``usocket.socket`` to ``host:port``."""
    import usocket

    s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    s.connect((host, port))
    return s


# ---------------------------------------------------------------- HTTP(S)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the routes the request tests use; records each request on the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _route(self) -> None:
        body = self._body()
        server: Any = self.server
        server.requests.append((self.command, self.path, dict(self.headers), body))
        route = server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"not found")
            return
        route(self, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route


class HttpServer:
    """A loopback HTTP or HTTPS server in a thread, with ``routes`` mapping a path to
    ``fn(handler, request_body)``."""

    def __init__(
        self, routes: dict[str, Callable[[Any, bytes], None]], ctx: ssl.SSLContext | None = None
    ) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        httpd: Any = self.httpd
        httpd.routes = routes
        httpd.requests = []
        if ctx is not None:
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = httpd.requests
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Stops serving (bounded)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(PEER_TIMEOUT_S)


def reply(
    h: Any,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
    length: bool = True,
) -> None:
    """Sends a response: with Content-Length, chunked (``chunks``), or until close."""
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    if chunks is not None:
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        for c in chunks:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
        h.wfile.write(b"0\r\n\r\n")
    else:
        if length:
            h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    h.close_connection = True


# ---------------------------------------------------------------- mosquitto

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mosquitto_available() -> bool:
    """Whether the Debian ``mosquitto`` binary is installed."""
    return os.path.exists(MOSQUITTO)


class Broker:
    """A real mosquitto on loopback with a plain TCP listener (``port``) and a TLS one
    (``tls_port``) using the test CA's server certificate."""

    def __init__(self, folder: Path, certs: Certs) -> None:
        self.folder = folder
        self.certs = certs
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.tls_port = 0
        self.log = folder / "mosquitto.log"
        self.start()

    def start(self) -> None:
        """Starts the broker on fresh ports and waits until both listeners accept."""
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            "persistence false\n"
            # As root mosquitto would switch to its own user, which cannot read the test's
            # private temporary folder: stay who we are.
            f"user {getpass.getuser()}\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"cafile {self.certs.ca_file}\n"
            f"certfile {self.certs.server_cert_file}\n"
            f"keyfile {self.certs.server_key_file}\n"
        )
        log = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + BROKER_START_S
        for port in (self.port, self.tls_port):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mosquitto did not start") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        """Stops the broker (kills it after a bounded wait)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Stops the broker (every client is disconnected) and starts it again on the
        same ports."""
        self.stop()
        self.start()


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Sets (or, with None, removes) environment variables inside the block."""
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
