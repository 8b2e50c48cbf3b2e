"""Client mode: socklab connects to a device that is the server (the tutorial's
device_tcp_server.py under ``python -m usocket run``, CPython TCP and UDP servers), through the
API, the console and ``socklab connect``; the session is one like any other."""

from __future__ import annotations

import json
import socket
import subprocess

from conftest import SOCKLAB_BIN, recv_exactly
from runner_support import EXAMPLES, Running, free_port


def test_device_tcp_server_example_is_tested_through_socklab(socklab) -> None:
    """The tutorial's device-side server, driven from socklab: connect, send, the upper-cased
    answer is in the history, and socklab's close ends the device's client thread."""
    port = free_port()
    with Running("--timeout", "20", str(EXAMPLES / "device_tcp_server.py"), str(port), "1") as run:
        run.wait_for("listening on")
        status, session = socklab.post(
            "/api/connect", {"addr": f"127.0.0.1:{port}", "text": "hello device\n"}
        )
        assert status == 200, session
        assert session["direction"] == "outgoing"
        assert session["online"] is True
        assert session["peer"] == f"127.0.0.1:{port}"
        sid = session["id"]
        socklab.wait_for(
            "the device's answer",
            lambda: any(m["text"] == "HELLO DEVICE\n" for m in socklab.messages(sid)),
        )
        status, body = socklab.post(f"/api/sessions/{sid}/send", {"text": "again\n"})
        assert status == 200, body
        socklab.wait_for(
            "the second answer", lambda: socklab.messages(sid)[-1]["text"] == "AGAIN\n"
        )
        status, body = socklab.post(f"/api/sessions/{sid}/close")
        assert status == 200, body
        code, out, err = run.finish()
    assert code == 0, err
    assert "accepted 1 clients, listener closed" in out
    assert "INFO:tcp_server:client 127.0.0.1:" in err and " gone" in err
    ended = socklab.wait_session(lambda s: s["id"] == sid and not s["online"], "the end")
    assert ended["end_reason"] == "closed_by_operator"
    assert [(m["direction"], m["text"]) for m in socklab.messages(sid)] == [
        ("down", "hello device\n"),
        ("up", "HELLO DEVICE\n"),
        ("down", "again\n"),
        ("up", "AGAIN\n"),
    ]
    assert (ended["bytes_up"], ended["bytes_down"]) == (19, 19)
    status, listeners = socklab.get("/api/listeners")
    assert all(entry["kind"] == "listen" for entry in listeners["listeners"])


def test_outgoing_session_with_auto_reply_and_device_close(socklab) -> None:
    """An auto-reply rule on the connection answers the device; the device closing ends the
    session with closed_by_device."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    rule = {"match": "exact", "pattern": "PING", "reply_text": "PONG\r\n"}
    status, session = socklab.post(
        "/api/connect", {"addr": f"127.0.0.1:{port}", "proto": "tcp", "auto_replies": [rule]}
    )
    assert status == 200, session
    conn, _ = server.accept()
    with conn, server:
        conn.settimeout(10)
        conn.sendall(b"PING\r\n")
        assert recv_exactly(conn, 6) == b"PONG\r\n"
    ended = socklab.wait_session(lambda s: s["id"] == session["id"] and not s["online"])
    assert ended["end_reason"] == "closed_by_device"
    assert ended["direction"] == "outgoing"


def test_udp_flow_to_a_device(socklab) -> None:
    """A UDP flow: hex sent at once reaches the device, which learns socklab's address from
    it and answers; the answer is recorded up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
        device.bind(("127.0.0.1", 0))
        device.settimeout(10)
        port = device.getsockname()[1]
        status, session = socklab.post(
            "/api/connect", {"addr": f"127.0.0.1:{port}", "proto": "udp", "hex": "00ff10"}
        )
        assert status == 200, session
        assert (session["proto"], session["direction"]) == ("udp", "outgoing")
        data, source = device.recvfrom(100)
        assert data == b"\x00\xff\x10"
        assert f"{source[0]}:{source[1]}" == session["local"]
        device.sendto(b"ack", source)
        socklab.wait_for(
            "the answer",
            lambda: [m["hex"] for m in socklab.messages(session["id"])] == ["00ff10", "61636b"],
        )


def test_connect_errors_are_clear(socklab) -> None:
    """Refused: 502 with the reason; a public address: 403 naming --allow-net (nothing is
    sent); a bad address or body: 400."""
    port = free_port()
    status, body = socklab.post("/api/connect", {"addr": f"127.0.0.1:{port}"})
    assert status == 502
    assert "connection refused" in body["error"]
    status, body = socklab.post("/api/connect", {"addr": "198.51.100.7:80"})
    assert status == 403
    assert "--allow-net" in body["error"]
    for bad in ({"addr": "nohostport"}, {"addr": "127.0.0.1:1", "proto": "icmp"}, {}):
        status, body = socklab.post("/api/connect", bad)
        assert status == 400, (bad, body)
        assert body["error"]
    assert socklab.sessions() == []


def test_console_connect_command(console_socklab) -> None:
    """The console's connect command opens a session and prints it; errors print as the API
    says them."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    refused = free_port()
    lab = console_socklab("--quiet")
    with server:
        lab.say(f"connect 127.0.0.1:{port}")
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            lab.read_until(f"#1 tcp connected to 127.0.0.1:{port} from 127.0.0.1:")
            lab.say(f"connect 127.0.0.1:{refused}")
            lab.read_until(f"error: cannot connect to 127.0.0.1:{refused}: connection refused")
            lab.say("send 1 hi\\r\\n")
            assert recv_exactly(conn, 4) == b"hi\r\n"


def test_socklab_connect_subcommand(socklab) -> None:
    """``socklab connect`` finds the running server by its ready file and prints the new
    session; a refused connection exits 1 with the reason."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    with server:
        result = subprocess.run(
            [
                SOCKLAB_BIN,
                "connect",
                f"127.0.0.1:{port}",
                "--ready-file",
                str(socklab.ready_file),
                "--text",
                "AT\\r\\n",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        session = json.loads(result.stdout)
        assert session["direction"] == "outgoing"
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            assert recv_exactly(conn, 4) == b"AT\r\n"
    refused = subprocess.run(
        [SOCKLAB_BIN, "connect", f"127.0.0.1:{free_port()}", "--api", socklab.http_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "socklab connect: cannot connect to" in refused.stderr
    assert "connection refused" in refused.stderr
    nobody = subprocess.run(
        [SOCKLAB_BIN, "connect", "127.0.0.1:9", "--api", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nobody.returncode == 1
    assert "cannot reach socklab" in nobody.stderr
