"""socklab's command line as a user meets it: addresses, a mistyped --db, a busy port, a
--link for a listener that does not exist, and the dashboard URL it prints."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from conftest import SOCKLAB_BIN

RUN_TIMEOUT_S = 20


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs socklab expecting it to refuse to start (it exits by itself)."""
    return subprocess.run(
        [SOCKLAB_BIN, "--quiet", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_db_in_a_missing_directory_is_refused_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    result = run(
        "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", str(missing / "x.db"), cwd=tmp_path
    )
    assert result.returncode != 0
    assert f"directory {missing} does not exist" in result.stderr
    assert not missing.exists()


def test_a_busy_port_fails_the_start_and_creates_no_database(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        db = tmp_path / "x.db"
        result = run(
            "--tcp", f"127.0.0.1:{port}", "--http", "127.0.0.1:0", "--db", str(db), cwd=tmp_path
        )
    assert result.returncode != 0
    assert f"cannot listen on tcp 127.0.0.1:{port}" in result.stderr
    assert not db.exists()
    assert not Path(str(db) + "-wal").exists()


def test_link_for_a_missing_listener_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    result = run(
        "--tcp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--db",
        str(db),
        "--link",
        "3:gprs",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--link 3:gprs: there is no listener 3" in result.stderr
    assert "0 = tcp 127.0.0.1:0" in result.stderr
    assert not db.exists()


def test_localhost_is_accepted_as_a_listener_host(socklab_factory) -> None:
    lab = socklab_factory("--tcp", "localhost:0")
    assert len(lab.tcp_ports) == 2
    assert lab.ready["tcp"][1].startswith("127.0.0.1:")
    with socket.create_connection(("127.0.0.1", lab.tcp_ports[1]), timeout=RUN_TIMEOUT_S) as dev:
        dev.sendall(b"hi")
    lab.wait_for(
        "the session on the localhost listener",
        lambda: any(s["listener_id"] == 1 for s in lab.sessions()),
    )


def test_wildcard_dashboard_url_is_printed_browsable(socklab_factory) -> None:
    token = "a" * 32
    lab = socklab_factory(http="0.0.0.0:0", token=token)
    port = int(lab.ready["http"].rsplit(":", 1)[1])
    lab.wait_for("the banner", lambda: "dashboard http://" in lab.log())
    assert f"dashboard http://127.0.0.1:{port}/?token={token}" in lab.log()
    assert "listens on every interface" in lab.log()
    status, _ = lab.get("/api/sessions")
    assert status == 200


def test_dashboard_page_without_rights_explains_how_to_open_it(socklab_factory) -> None:
    """A browser without the token, or on a non-loopback Host without one, gets a page that
    says what to do (status 401/403), not raw JSON; the API keeps its JSON errors."""
    lab = socklab_factory(token="b" * 32)
    html = {"Accept": "text/html,application/xhtml+xml"}
    status, body = lab.request("GET", "/", token=None, headers=html)
    assert status == 401
    assert "This socklab needs a token" in body and "?token=" in body
    status, body = lab.request("GET", "/", token=None)
    assert status == 401 and "token" in body["error"]
    status, body = lab.request("GET", "/api/sessions", token=None)
    assert status == 401 and "error" in body
    open_lab = socklab_factory()
    status, body = open_lab.request("GET", "/", headers={"Host": "evil.example:80", **html})
    assert status == 403
    assert "Open this socklab through loopback" in body


def test_the_default_database_follows_xdg_data_home(tmp_path: Path) -> None:
    """Without --db, socklab's database is in the user's data directory: under the test
    session's XDG_DATA_HOME, so tests never touch ~/.local/share/socklab."""
    data_home = Path(os.environ["XDG_DATA_HOME"])
    assert data_home != Path.home() / ".local" / "share"
    result = subprocess.run(
        [SOCKLAB_BIN, "export", "--all"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 1
    assert str(data_home / "socklab" / "socklab.db") in result.stderr
