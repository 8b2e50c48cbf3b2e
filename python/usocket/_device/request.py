"""QuecPython's ``request`` for device scripts run by ``usocket-run``: small HTTP/1.0 (or
1.1) requests over ``usocket``, HTTPS through ``ussl``, written to the device's documented API.

``get/post/put/patch/delete/head(url, data=None, json=None, headers=None, decode=True,
sizeof=255, timeout=20, ssl_params=None, version=0, username=None, password=None,
files=None)`` return a ``Response`` with ``status_code`` (int), ``reason`` (bytes),
``headers`` (dict), ``content`` (a generator of ``sizeof``-byte blocks, ``str`` when
``decode``), ``text`` (a generator of ``str`` blocks), ``json()`` and ``close()``.

Device behaviour kept:

* ``http://`` and ``https://`` (ports 80/443); no scheme means ``http://``; a bare IP
  address without a scheme is ``ValueError('MissingSchema: ...')``; another scheme is
  ``ValueError('Unsupported protocol: ...')``. Redirects are not followed.
* HTTPS is ``ussl.wrap_socket(sock, **ssl_params, server_hostname=host)``: no certificate
  check unless ``ssl_params`` has ``ca``; a TLS failure is
  ``RuntimeError("HTTPS USSL '...' FAIL='url'")``.
* A failed name lookup is ``IndexError('Domain name resolution error, ...')``, a failed
  connect ``RuntimeError("HTTP Connection '...' FAIL='url'")``, a bad status line
  ``ValueError('InvalidSchema: ...')``; other socket errors (``OSError(110)`` after
  ``timeout`` seconds) are raised as they are.
* Header values are split as the device does: at the first ``:`` after the name, keeping
  the leading space and stopping at the next ``:`` (``' Mon, 01 Jan 2024 10'``).
* A chunked body is read whole at request time; otherwise ``content`` reads up to
  ``Content-Length`` bytes or to the end of the stream, and a timeout while iterating is
  ``ValueError('[Errno 110] ETIMEDOUT')``. ``content`` can be iterated once.

Where the PC differs: ``decode`` is honoured and decodes incrementally (a UTF-8 character
split across blocks is kept whole), ``Content-Length`` counts UTF-8 bytes, and no stray
CRLF follows the body.
"""

from __future__ import annotations

import binascii
import codecs
import json as _json
import os
from collections.abc import Iterator
from typing import Any

import usocket

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def _is_ip(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def _split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) as the device parses a URL."""
    if not isinstance(url, str):
        raise TypeError("url must be str")
    if "://" not in url:
        head = url.split("/", 1)[0]
        if _is_ip(head):
            raise ValueError(f"MissingSchema: Invalid URL '{url}', no schema supplied")
        url = "http://" + url
    scheme, rest = url.split("://", 1)
    if scheme not in ("http", "https"):
        raise ValueError(f"Unsupported protocol: {scheme}")
    hostport, _, path = rest.partition("/")
    port = 443 if scheme == "https" else 80
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        if after.startswith(":"):
            port = int(after[1:])
    elif ":" in hostport:
        host, port_text = hostport.rsplit(":", 1)
        port = int(port_text)
    else:
        host = hostport
    if not host:
        raise ValueError(f"Invalid URL '{url}': no host")
    return scheme, host, port, path


class Response:
    """An HTTP response; the body is read lazily through ``content``."""

    def __init__(self, sock: Any, sizeof: int, decode: bool) -> None:
        self.raw = sock
        self.status_code = 0
        self.reason = b""
        self.headers: dict[str, str] = {}
        self.encoding = "utf-8"
        self._sizeof = sizeof
        self._decode = decode
        self._length: int | None = None
        self._body: bytes | None = None  # a chunked body, read whole
        self._consumed = False

    def close(self) -> None:
        """Closes the connection if it is still open."""
        if self.raw is not None:
            self.raw.close()
            self.raw = None

    def _read_block(self, n: int) -> bytes:
        try:
            block = self.raw.read(n)
        except OSError as exc:
            if exc.args and exc.args[0] == 110:
                raise ValueError("[Errno 110] ETIMEDOUT") from exc
            return b""  # the end of the stream (the FIN rule) or a broken connection
        return block or b""

    def _blocks(self) -> Iterator[Any]:
        if self._consumed:
            return
        self._consumed = True
        decoder = codecs.getincrementaldecoder("utf-8")() if self._decode else None
        try:
            if self._body is not None:
                raw_blocks: Iterator[bytes] = (
                    self._body[i : i + self._sizeof]
                    for i in range(0, len(self._body), self._sizeof)
                )
            else:
                raw_blocks = self._stream_blocks()
            for block in raw_blocks:
                if decoder is None:
                    yield block
                else:
                    text = decoder.decode(block)
                    if text:
                        yield text
            if decoder is not None:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
        finally:
            self.close()

    def _stream_blocks(self) -> Iterator[bytes]:
        left = self._length
        while self.raw is not None and (left is None or left > 0):
            n = self._sizeof if left is None else min(self._sizeof, left)
            block = self._read_block(n)
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block

    @property
    def content(self) -> Iterator[Any]:
        """The body as a generator of blocks (``str`` when ``decode``); one pass only."""
        return self._blocks()

    @property
    def text(self) -> Iterator[str]:
        """The body as a generator of ``str(block)``."""
        return (str(block) for block in self._blocks())

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty)."""
        blocks = list(self._blocks())
        body: Any = "".join(blocks) if self._decode else b"".join(blocks)
        if not body:
            return None
        try:
            return _json.loads(body)
        except ValueError as exc:
            raise ValueError(
                "The response is not JSON; read it through Response.content instead"
            ) from exc


def _open(scheme: str, host: str, port: int, url: str, timeout: Any, ssl_params: Any) -> Any:
    try:
        infos = usocket.getaddrinfo(host, port)
    except OSError:
        infos = []
    if not infos:
        raise IndexError(f"Domain name resolution error, please check the url '{url}'")
    family, _kind, _proto, _name, addr = infos[0]
    sock = usocket.socket(family, usocket.SOCK_STREAM, usocket.IPPROTO_TCP)
    try:
        sock.settimeout(timeout)
        sock.connect(addr)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"HTTP Connection '{exc}' FAIL='{url}'") from exc
    if scheme == "https":
        import ussl

        params = dict(ssl_params or {})
        params.setdefault("server_hostname", host)
        try:
            sock = ussl.wrap_socket(sock, **params)
        except (OSError, ValueError) as exc:
            sock.close()
            raise RuntimeError(f"HTTPS USSL '{exc}' FAIL='{url}'") from exc
    return sock


def _multipart(files: dict[str, str]) -> tuple[bytes, str]:
    path = files.get("filepath")
    if not path:
        raise ValueError("files needs 'filepath'")
    name = files.get("name", "file")
    filename = files.get("filename") or os.path.basename(path)
    with open(path, "rb") as f:
        payload = f.read()
    boundary = "----QuecPythonBoundary" + binascii.hexlify(os.urandom(8)).decode()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body = head + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _read_chunked(sock: Any) -> bytes:
    body = bytearray()
    while True:
        line = sock.readline()
        if not line:
            raise ValueError("chunked body ended early")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while sock.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        while size:
            part = sock.read(size)
            if not part:
                raise ValueError("chunked body ended early")
            body += part
            size -= len(part)
        sock.readline()


def request(
    method: str,
    url: str,
    data: Any = None,
    json: Any = None,
    files: Any = None,
    stream: Any = None,
    decode: bool = True,
    sizeof: int = 255,
    timeout: Any = 20,
    headers: dict[str, str] | None = None,
    ssl_params: dict[str, Any] | None = None,
    version: int = 0,
    files_data: Any = None,
    files_data_len: Any = None,
    files_name: Any = None,
    ipvtype: int = 0,
    username: str | None = None,
    password: str | None = None,
) -> Response:
    """Sends one request and reads the status line and headers; see the module doc."""
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ValueError(f"unsupported method {method!r}")
    if headers is not None and not isinstance(headers, dict):
        raise TypeError("headers must be a dict")
    if ssl_params is not None and not isinstance(ssl_params, dict):
        raise TypeError("ssl_params must be a dict")
    if not isinstance(sizeof, int) or sizeof <= 0:
        raise ValueError("sizeof must be a positive int")
    scheme, host, port, path = _split_url(url)
    content_type = None
    if json is not None:
        data = _json.dumps(json)
        if headers is None:
            content_type = "application/json"
    if files is not None:
        data, content_type = _multipart(files)
    if data is not None and not isinstance(data, (str, bytes, bytearray)):
        raise TypeError("data must be str or bytes")
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data or b"")
    lines = [f"{method.upper()} /{path} HTTP/1.{1 if version == 1 else 0}", f"Host: {host}"]
    if version == 1:
        lines.append("Connection: close")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if username is not None and password is not None:
        token = binascii.b2a_base64(f"{username}:{password}".encode(), newline=False)
        lines.append("Authorization: Basic " + token.decode())
    if content_type is not None:
        lines.append("Content-Type: " + content_type)
    if data is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    sock = _open(scheme, host, port, url, timeout, ssl_params)
    response = Response(sock, sizeof, decode)
    try:
        sock.write(head + body)
        status = sock.readline() or b""
        parts = status.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ValueError(f"InvalidSchema: bad status line {status[:80]!r} from '{url}'")
        response.status_code = int(parts[1])
        response.reason = parts[2].rstrip(b"\r\n") if len(parts) > 2 else b""
        chunked = False
        while True:
            line = sock.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
            text = line.decode("latin-1")
            if text.startswith("Content-Length:"):
                response._length = int(text.split(":", 1)[1].strip())
            if text.lower().startswith("transfer-encoding:") and "chunked" in text.lower():
                chunked = True
            fields = text.split(":")
            value = fields[1] if len(fields) > 1 else ""
            response.headers[fields[0]] = value.replace("\r", "").replace("\n", "")
        if method.upper() == "HEAD" or response.status_code in (204, 304):
            response._length = 0
        elif chunked:
            response._body = _read_chunked(sock)
    except BaseException:
        response.close()
        raise
    return response


def get(url: str, **kw: Any) -> Response:
    """``request('GET', url, **kw)``."""
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> Response:
    """``request('POST', url, **kw)``."""
    return request("POST", url, **kw)


def put(url: str, **kw: Any) -> Response:
    """``request('PUT', url, **kw)``."""
    return request("PUT", url, **kw)


def patch(url: str, **kw: Any) -> Response:
    """``request('PATCH', url, **kw)``."""
    return request("PATCH", url, **kw)


def delete(url: str, **kw: Any) -> Response:
    """``request('DELETE', url, **kw)``."""
    return request("DELETE", url, **kw)


def head(url: str, **kw: Any) -> Response:
    """``request('HEAD', url, **kw)``."""
    return request("HEAD", url, **kw)
