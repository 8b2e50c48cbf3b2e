"""request against real loopback HTTP and HTTPS servers (CPython's http.server, not under
test): every method, JSON and form bodies, Content-Length, chunked and close-delimited
bodies (one ending mid-block), HTTPS with and without ``ca``, and clear errors."""

from __future__ import annotations

import importlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runner_support import run_device
from tls_support import Certs, HttpServer, env, free_port, make_certs, reply
from usocket.runner import device_environment
from usocket_peers import profile

TEXT = "ünïcödé " * 40  # 2-byte characters: block edges fall inside them
BLOB = bytes(range(256)) * 3 + b"tail"  # 772 bytes: the last 255-byte block is short


def r_text(h: Any, _body: bytes) -> None:
    reply(h, 200, TEXT.encode(), {"Content-Type": "text/plain", "X-Time": "10:20:30"})


def r_chunked(h: Any, _body: bytes) -> None:
    data = TEXT.encode()
    reply(h, 200, b"", chunks=[data[:101], data[101:303], data[303:]])


def r_until_close(h: Any, _body: bytes) -> None:
    reply(h, 200, BLOB, length=False)


def r_echo(h: Any, body: bytes) -> None:
    doc = {"method": h.command, "body": body.decode("utf-8"), "headers": dict(h.headers)}
    reply(h, 201, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def r_upload(h: Any, body: bytes) -> None:
    reply(h, 200, str(len(body)).encode())


def r_empty(h: Any, _body: bytes) -> None:
    reply(h, 200, b"")


ROUTES = {
    "/text": r_text,
    "/chunked": r_chunked,
    "/close": r_until_close,
    "/echo": r_echo,
    "/empty": r_empty,
    "/upload": r_upload,
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("http-certs"))


@pytest.fixture(scope="module")
def http() -> Iterator[HttpServer]:
    server = HttpServer(ROUTES)
    yield server
    server.close()


@pytest.fixture(scope="module")
def https(certs: Certs) -> Iterator[HttpServer]:
    server = HttpServer(ROUTES, certs.server_context())
    yield server
    server.close()


@pytest.fixture
def request_mod() -> Iterator[ModuleType]:
    with env(USOCKET_SSL_STRICT=None), device_environment():
        yield importlib.import_module("request")


def test_get_content_length_text_and_headers(request_mod: ModuleType, http: HttpServer) -> None:
    """Status, reason bytes, the device's header split, decoded blocks of sizeof bytes."""
    r = request_mod.get(f"http://127.0.0.1:{http.port}/text")
    assert (r.status_code, r.reason) == (200, b"OK")
    assert r.headers["Content-Type"] == " text/plain"
    assert r.headers["X-Time"] == " 10"  # cut at the next colon, as on the device
    blocks = list(r.content)
    assert "".join(blocks) == TEXT
    assert all(len(b.encode()) <= 255 for b in blocks) and len(blocks) == 2
    assert list(r.content) == []  # one pass only
    r2 = request_mod.get(f"127.0.0.1:{http.port}/text", decode=False, sizeof=100)
    raw = list(r2.content)
    assert b"".join(raw) == TEXT.encode() and max(map(len, raw)) == 100
    r3 = request_mod.get(f"http://127.0.0.1:{http.port}/text", decode=False)
    assert "".join(r3.text).startswith("b'")  # str(bytes), as on the device


def test_chunked_body_is_read_whole(request_mod: ModuleType, http: HttpServer) -> None:
    r = request_mod.get(f"http://127.0.0.1:{http.port}/chunked", sizeof=64)
    assert "".join(r.content) == TEXT


@pytest.mark.parametrize("name", ["quecpython", "legacy", "micropython"])
def test_body_ending_mid_block_is_delivered(
    request_mod: ModuleType, http: HttpServer, name: str
) -> None:
    """Without Content-Length the body runs to the FIN; the short last block arrives."""
    with profile(name):
        r = request_mod.get(f"http://127.0.0.1:{http.port}/close", decode=False)
        blocks = list(r.content)
    assert b"".join(blocks) == BLOB
    assert [len(b) for b in blocks] == [255, 255, 255, 7]


def test_methods_bodies_headers_and_json(request_mod: ModuleType, http: HttpServer) -> None:
    """json= sets Content-Type only without headers; Content-Length is the UTF-8 size."""
    url = f"http://127.0.0.1:{http.port}/echo"
    r = request_mod.post(url, json={"t": "héllo"})
    doc = r.json()
    assert r.status_code == 201 and doc["method"] == "POST"
    assert json.loads(doc["body"]) == {"t": "héllo"}
    assert doc["headers"]["Content-Type"] == "application/json"
    assert doc["headers"]["Content-Length"] == str(len(doc["body"].encode()))
    assert doc["headers"]["Host"] == "127.0.0.1"
    r = request_mod.put(url, data="ä", headers={"X-Dev": "1"}, username="u", password="p")
    doc = r.json()
    assert doc["method"] == "PUT" and doc["body"] == "ä"
    assert doc["headers"]["Content-Length"] == "2"
    assert doc["headers"]["X-Dev"] == "1"
    assert doc["headers"]["Authorization"] == "Basic dTpw"
    assert "Content-Type" not in doc["headers"]
    assert request_mod.patch(url, data=b"\x01\x02").json()["method"] == "PATCH"
    assert request_mod.delete(url).json()["method"] == "DELETE"
    h = request_mod.head(f"http://127.0.0.1:{http.port}/text")
    assert h.status_code == 200 and list(h.content) == []
    assert request_mod.get(f"http://127.0.0.1:{http.port}/empty").json() is None
    with pytest.raises(ValueError, match="content"):
        request_mod.get(f"http://127.0.0.1:{http.port}/text").json()
    assert request_mod.get(f"http://127.0.0.1:{http.port}/nope").status_code == 404


def test_file_upload_as_multipart(
    request_mod: ModuleType, http: HttpServer, tmp_path: Path
) -> None:
    """files={'filepath', 'filename', 'name'} posts the file as multipart/form-data."""
    upload = tmp_path / "log.bin"
    upload.write_bytes(b"\x00binary\xffdata")
    r = request_mod.post(
        f"http://127.0.0.1:{http.port}/upload",
        files={"filepath": str(upload), "filename": "log.bin", "name": "f"},
    )
    method, _path, headers, body = http.requests[-1]
    assert "".join(r.content) == str(len(body))
    assert method == "POST" and headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="f"; filename="log.bin"' in body and b"\x00binary\xffdata" in body
    assert headers["Content-Length"] == str(len(body))
    with pytest.raises(ValueError):
        request_mod.post(f"http://127.0.0.1:{http.port}/echo", files={"filename": "x"})


def test_request_bytes_on_the_wire(request_mod: ModuleType) -> None:
    """HTTP/1.0 by default, no stray CRLF after the body; version=1 adds Connection."""
    seen: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.settimeout(0.3)
            got = b""
            try:
                while True:
                    part = conn.recv(4096)
                    if not part:
                        break
                    got += part
            except TimeoutError:
                pass
            seen.append(got)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert "".join(request_mod.post(f"http://127.0.0.1:{port}/p?q=1", data="hi").content) == "ok"
    request_mod.get(f"http://localhost:{port}/", version=1).close()
    t.join(10)
    listener.close()
    assert seen[0] == (b"POST /p?q=1 HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi")
    assert seen[1] == b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_https_with_and_without_ca(
    request_mod: ModuleType, https: HttpServer, certs: Certs
) -> None:
    """No ca: not verified (as on the device); with ca: verified, and a wrong CA fails."""
    url = f"https://localhost:{https.port}/text"
    assert "".join(request_mod.get(url).content) == TEXT
    verified = request_mod.get(url, ssl_params={"ca": certs.ca_pem})
    assert "".join(verified.content) == TEXT
    chunked = request_mod.get(f"https://127.0.0.1:{https.port}/chunked")
    assert "".join(chunked.content) == TEXT
    other = make_certs(certs.ca_file.parent / "http-other")
    with pytest.raises(RuntimeError, match=r"^HTTPS USSL '-9984' FAIL="):
        request_mod.get(url, ssl_params={"ca": other.ca_pem})
    with pytest.raises(RuntimeError, match="invalid cert"):
        request_mod.get(url, ssl_params={"ca": "junk"})


def test_errors_are_clear(request_mod: ModuleType, http: HttpServer) -> None:
    """Bad URLs, refused connects, timeouts and non-HTTP answers raise at once."""
    with pytest.raises(ValueError, match="^Unsupported protocol"):
        request_mod.get(f"ftp://127.0.0.1:{http.port}/")
    with pytest.raises(ValueError, match="^MissingSchema"):
        request_mod.get("127.0.0.1")
    with pytest.raises(RuntimeError, match="^HTTP Connection"):
        request_mod.get(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(TypeError):
        request_mod.post(f"http://127.0.0.1:{http.port}/echo", data=123)
    with pytest.raises(TypeError):
        request_mod.get(f"http://127.0.0.1:{http.port}/", headers=[("a", "b")])
    with pytest.raises(TypeError):
        request_mod.get(None)
    with pytest.raises(ValueError):
        request_mod.request("BREW", f"http://127.0.0.1:{http.port}/")

    # A server that accepts and stays silent, then one that talks nonsense.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        with pytest.raises(OSError) as e:
            request_mod.get(f"http://127.0.0.1:{port}/", timeout=0.3)
        assert e.value.args == (110,)
        conn, _ = silent.accept()
        conn.close()

        def nonsense() -> None:
            c, _ = silent.accept()
            c.recv(1024)
            c.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
            c.close()

        t = threading.Thread(target=nonsense, daemon=True)
        t.start()
        with pytest.raises(ValueError, match="^InvalidSchema"):
            request_mod.get(f"http://127.0.0.1:{port}/")
        t.join(10)

        def stall() -> None:
            c, _ = silent.accept()
            c.recv(1024)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            threading.Event().wait(1.0)
            c.close()

        t = threading.Thread(target=stall, daemon=True)
        t.start()
        r = request_mod.get(f"http://127.0.0.1:{port}/", timeout=0.3, decode=False, sizeof=10)
        blocks = r.content
        assert next(blocks) == b"partial"[:7]
        with pytest.raises(ValueError, match=r"^\[Errno 110\] ETIMEDOUT$"):
            next(blocks)
        t.join(10)
    finally:
        silent.close()


def test_device_script_through_the_runner(https: HttpServer, certs: Certs, tmp_path: Path) -> None:
    """An unmodified device script using request over HTTPS, its server mapped to the
    loopback test server (no real name lookup, no real network). Without ca nothing is
    checked; with ca the name is, and the test certificate is for localhost."""
    script = tmp_path / "main.py"
    script.write_text(
        "import request\n"
        "r = request.get('https://api.example.com/text')\n"
        "print(r.status_code, len(''.join(r.content)))\n"
        "try:\n"
        "    request.get('https://api.example.com/text',\n"
        "                ssl_params={'ca': open('/usr/ca.pem').read()})\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    (tmp_path / "ca.pem").write_text(certs.ca_pem)
    result = run_device("--map", f"api.example.com:443=127.0.0.1:{https.port}", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"200 {len(TEXT)}",
        "HTTPS USSL '-9984' FAIL='https://api.example.com/text'",
    ]
