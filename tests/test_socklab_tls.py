"""socklab TLS listeners (--tls-tcp) with real clients on loopback: this project's device
``ussl`` trusting the certificate socklab prints, CPython's ``ssl``, the certificate kept
across restarts, failed handshakes reported as events, and bad --cert/--key flags."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SOCKLAB_BIN
from tls_support import connect_usocket, env, make_certs
from usocket.runner import device_environment

TIMEOUT_S = 20


@pytest.fixture
def ussl() -> Iterator[ModuleType]:
    with env(USOCKET_SSL_STRICT=None, USOCKET_SSL_TLS13=None), device_environment():
        yield importlib.import_module("ussl")


def tls_port(lab: Any) -> int:
    return int(lab.ready["tls"][0].rsplit(":", 1)[1])


def cert_pem(lab: Any) -> str:
    return Path(lab.ready["tls_cert"]["path"]).read_text()


def der_sha256(pem: str) -> str:
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@contextlib.contextmanager
def tls_listener_dashboard(lab: Any) -> Iterator[tuple[Any, Any]]:
    """Headless Chromium on `lab`'s dashboard with its event stream live; yields the page and
    the TLS listener's row. Skips when Chromium is missing (outside CI)."""
    import shutil

    from playwright import sync_api
    from playwright.sync_api import expect
    from test_dashboard import CHROMIUM, CHROMIUM_ARGS

    if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(lab.http_url + "/")
            row = page.locator('[data-testid="listener-row"]', has_text="tls")
            expect(row).to_have_count(1, timeout=20_000)
            expect(page.locator('[data-testid="stream-state"]')).to_have_attribute(
                "data-state", "live", timeout=20_000
            )
            yield page, row
        finally:
            browser.close()


def cpython_client(lab: Any, host: str = "localhost", **ctx_attrs: Any) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=lab.ready["tls_cert"]["path"])
    for key, value in ctx_attrs.items():
        setattr(ctx, key, value)
    raw = socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_exactly(sock: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


class Events:
    """The server's live event stream (/api/events), read line by line."""

    def __init__(self, lab: Any) -> None:
        self.stream = urllib.request.urlopen(lab.http_url + "/api/events", timeout=TIMEOUT_S)

    def next_of(self, kind: str) -> dict[str, Any]:
        while True:
            line = self.stream.readline().decode()
            if not line:
                raise AssertionError("event stream ended")
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event["type"] == kind:
                    return event

    def close(self) -> None:
        self.stream.close()


def test_device_ussl_trusts_the_printed_certificate(socklab_factory, ussl: ModuleType) -> None:
    """A device's ussl.wrap_socket(ca=PEM) verifies the chain and the name; the session is
    like any other: TLS version and SNI on it, upload and send down recorded, close."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0")
    cert = lab.ready["tls_cert"]
    pem = cert_pem(lab)
    # What the console printed: the PEM's path and its SHA-256.
    log = lab.log()
    assert f"TLS certificate {cert['path']} (self-signed, generated now" in log
    assert f"TLS certificate SHA-256 {der_sha256(pem)}" in log
    assert cert["sha256"] == der_sha256(pem)
    assert Path(cert["path"]).is_absolute()
    assert cert["names"][:3] == ["localhost", "127.0.0.1", "::1"]

    dev = ussl.wrap_socket(connect_usocket(tls_port(lab)), ca=pem, server_hostname="localhost")
    assert dev.write(b"HELLO from the device\r\n") == 23
    session = lab.wait_session(lambda s: s["msgs_up"] == 1, "the upload")
    assert session["tls"] == {"version": "TLSv1.2", "sni": "localhost"}
    assert session["proto"] == "tcp" and session["online"]
    sid = session["id"]
    status, _ = lab.post(f"/api/sessions/{sid}/send", {"text": "SET interval=3\r\n"})
    assert status == 200
    assert read_exactly(dev, 16) == b"SET interval=3\r\n"
    status, _ = lab.post(f"/api/sessions/{sid}/close")
    assert status == 200
    # An orderly end (close_notify, FIN) as the device reports it: ENOTCONN once, then b"".
    with pytest.raises(OSError) as closed:
        dev.read(1)
    assert closed.value.args == (107,)
    assert dev.read(1) == b""
    dev.close()
    msgs = lab.messages(sid)
    assert [(m["direction"], m["text"]) for m in msgs] == [
        ("up", "HELLO from the device\r\n"),
        ("down", "SET interval=3\r\n"),
    ]
    ended = lab.wait_session(lambda s: s["id"] == sid and not s["online"], "the end")
    assert ended["end_reason"] == "closed_by_operator"
    # History keeps the TLS details.
    status, body = lab.get(f"/api/sessions/{sid}")
    assert status == 200 and body["tls"] == {"version": "TLSv1.2", "sni": "localhost"}


def test_device_that_does_not_trust_the_name_is_reported(socklab_factory, ussl: ModuleType) -> None:
    """A device verifying another host name refuses the certificate: the device gets the
    device's error, and socklab reports the failed handshake with the device's alert."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0")
    events = Events(lab)
    try:
        with pytest.raises(OSError):
            ussl.wrap_socket(
                connect_usocket(tls_port(lab)), ca=cert_pem(lab), server_hostname="other.example"
            )
        failed = events.next_of("tls_failed")
    finally:
        events.close()
    assert "does not trust socklab's certificate" in failed["reason"], failed
    assert lab.sessions() == []


def test_cpython_ssl_echo_tls13_and_tls12(socklab_factory) -> None:
    """CPython's ssl verifies the certificate for localhost and 127.0.0.1; echo answers over
    TLS; a TLS 1.2-only client gets TLS 1.2; a device that closes is closed_by_device."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0", echo=True)
    with cpython_client(lab, "127.0.0.1") as s:
        s.sendall(b"ping")
        assert read_exactly(s, 4) == b"ping"
        assert s.version() == "TLSv1.3"
    first = lab.wait_session(lambda s: not s["online"], "the first session's end")
    assert first["tls"] == {"version": "TLSv1.3", "sni": None}  # no SNI for an IP address
    assert first["end_reason"] == "closed_by_device"
    with cpython_client(lab, "localhost", maximum_version=ssl.TLSVersion.TLSv1_2) as s:
        s.sendall(b"x" * 100_000)
        assert read_exactly(s, 100_000) == b"x" * 100_000
        s.unwrap()
    second = lab.wait_session(lambda s: s["id"] != first["id"] and not s["online"], "the 2nd")
    assert second["tls"] == {"version": "TLSv1.2", "sni": "localhost"}
    assert (second["bytes_up"], second["bytes_down"]) == (100_000, 100_000)
    assert second["end_reason"] == "closed_by_device"


def test_certificate_is_kept_across_restarts(socklab_factory) -> None:
    """The generated certificate stays the same on the same database (key readable by the
    owner only); a new --tls-name renews it with every old name kept."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0")
    first = lab.ready["tls_cert"]
    key = Path(first["path"].replace(".tls-cert.pem", ".tls-key.pem"))
    assert first["path"] == str(lab.db) + ".tls-cert.pem"
    assert os.stat(key).st_mode & 0o777 == 0o600
    lab.restart()
    again = lab.ready["tls_cert"]
    assert (again["sha256"], again["origin"]) == (first["sha256"], "kept")
    assert "kept from an earlier start" in lab.log()
    with cpython_client(lab) as s:  # the old PEM still verifies
        s.sendall(b"x")
    lab.stop()
    renewed = socklab_factory(tls_tcp="127.0.0.1:0", tls_name="modem.example", db=lab.db)
    cert = renewed.ready["tls_cert"]
    assert cert["origin"] == "renewed" and cert["added"] == ["modem.example"]
    assert cert["sha256"] != first["sha256"]
    assert cert["names"] == ["localhost", "127.0.0.1", "::1", "modem.example"]
    assert "devices that trusted the old one must be given the new PEM" in renewed.log()


def test_plain_tcp_and_silent_clients_are_failed_handshakes(socklab_factory) -> None:
    """A plain-TCP client on the TLS port and a client that says nothing both end up as
    tls_failed events with their reason, counted on the listener; no session opens."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0", tls_handshake_timeout="0.5")
    events = Events(lab)
    try:
        with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
            s.sendall(b"HELLO\r\n")
            alert = s.recv(100)
            plain = events.next_of("tls_failed")
        with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
            silent = events.next_of("tls_failed")
            assert s.recv(100) == b""  # socklab hung up
    finally:
        events.close()
    assert alert[:1] == b"\x15"  # a TLS alert record
    assert plain["reason"].startswith("not a TLS handshake"), plain
    assert silent["reason"].startswith("no TLS handshake within 0.5 s"), silent
    port = tls_port(lab)
    assert plain["local"] == silent["local"] == f"127.0.0.1:{port}"
    listener = next(li for li in lab.get("/api/listeners")[1]["listeners"] if li["tls"])
    assert listener["tls"]["handshake_failures"] == 2
    assert listener["tls"]["last_failure"]["reason"] == silent["reason"]
    assert listener["tls"]["cert_sha256"] == lab.ready["tls_cert"]["sha256"]
    assert lab.sessions() == []
    assert "tls handshake from" not in lab.log()  # --quiet: the console prints no events


def test_given_certificate_and_bad_flags(tmp_path: Path, socklab_factory) -> None:
    """--cert/--key from a CA are served as they are (a client trusting that CA verifies);
    unreadable, empty and mismatched files stop the start with a message naming them."""
    certs = make_certs(tmp_path / "certs")
    lab = socklab_factory(
        tls_tcp="127.0.0.1:0", cert=certs.server_cert_file, key=certs.server_key_file
    )
    assert lab.ready["tls_cert"]["origin"] == "given"
    assert not Path(str(lab.db) + ".tls-cert.pem").exists()
    ctx = ssl.create_default_context(cafile=str(certs.ca_file))
    raw = socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hi")
    lab.wait_session(lambda s: s["tls"] is not None and s["bytes_up"] == 2, "the upload")
    other = make_certs(tmp_path / "other")
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    db = tmp_path / "bad.db"
    cases = [
        ([tmp_path / "missing.pem", certs.server_key_file], "cannot read "),
        ([empty, certs.server_key_file], "holds no PEM certificate"),
        ([certs.server_cert_file, empty], "holds no PEM private key"),
        ([certs.server_cert_file, other.server_key_file], "does not belong to the certificate"),
    ]
    for (cert, key), message in cases:
        done = subprocess.run(
            [
                SOCKLAB_BIN,
                "--tls-tcp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--db",
                str(db),
                "--cert",
                str(cert),
                "--key",
                str(key),
            ],
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert done.returncode != 0, (cert, key, done.stdout)
        assert message in done.stderr, done.stderr
        assert not db.exists()  # nothing was created
    done = subprocess.run(
        [SOCKLAB_BIN, "--cert", str(certs.server_cert_file), "--key", str(certs.server_key_file)],
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 2 and "--tls-tcp" in done.stderr, done.stderr


def test_dashboard_shows_tls_sessions_and_failed_handshakes(socklab_factory) -> None:
    """The dashboard's session detail names the TLS version and SNI, and the TLS listener's
    row counts failed handshakes with the last reason (live, from the event stream)."""
    from playwright.sync_api import expect

    lab = socklab_factory(tls_tcp="127.0.0.1:0")
    with tls_listener_dashboard(lab) as (page, row):
        with cpython_client(lab) as dev:
            dev.sendall(b"hello over tls")
            session = page.locator('[data-testid="session-row"]')
            expect(session).to_have_count(1, timeout=20_000)
            expect(session.locator(".proto")).to_have_text("tls")
            session.click()
            expect(page.locator('[data-testid="detail-peer"]')).to_contain_text(
                "tls TLSv1.3 sni=localhost", timeout=20_000
            )
            expect(page.locator('[data-testid="log"]')).to_contain_text(
                "hello over tls", timeout=20_000
            )
        with socket.create_connection(("127.0.0.1", tls_port(lab)), timeout=TIMEOUT_S) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.recv(100)
        meta = row.locator(".listener-meta")
        expect(meta).to_contain_text("1 failed TLS handshake", timeout=20_000)
        expect(meta).to_have_attribute(
            "title", re.compile("Last failed TLS handshake: 127.0.0.1:.*not a TLS handshake")
        )


def test_client_that_closes_without_reading_is_closed_by_device(socklab_factory) -> None:
    """A TLS 1.3 client that sends, never reads and closes (no close_notify) ends with
    closed_by_device: socklab sends nothing it did not ask for, so its close is a FIN."""
    lab = socklab_factory(tls_tcp="127.0.0.1:0")
    with cpython_client(lab) as s:
        s.sendall(b"hello over TLS\r\n")
        lab.wait_session(lambda x: x["bytes_up"] == 16, "the upload")
    ended = lab.wait_session(lambda x: not x["online"], "the end")
    assert ended["end_reason"] == "closed_by_device"
    assert ended["tls"]["version"] == "TLSv1.3"
