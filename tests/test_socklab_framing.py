"""Auto-reply framing from the command line, the API and the console, against a real
socklab: with line framing a rule answers a line however TCP split it."""

from __future__ import annotations

import subprocess

import pytest
from conftest import SOCKLAB_BIN, recv_exactly

usocket = pytest.importorskip("usocket")


def send_alone(lab, dev, sid: int, data: bytes) -> None:
    """Sends `data` and waits until socklab has stored it, so the next send is a read of
    its own."""
    before = lab.get(f"/api/sessions/{sid}")[1]["bytes_up"]
    dev.send(data)
    lab.wait_for(
        "the bytes to be stored",
        lambda: lab.get(f"/api/sessions/{sid}")[1]["bytes_up"] >= before + len(data),
    )


def test_line_framing_from_the_flag_then_a_delimiter_from_the_api(socklab_factory, tcp_device):
    lab = socklab_factory(auto_reply=["exact:PING=>text:PONG\\n"], reply_framing="line")
    listeners = lab.get("/api/listeners")[1]["listeners"]
    assert [entry["framing"] for entry in listeners] == [{"kind": "line"}] * 2
    dev = tcp_device(lab.tcp_port)
    sid = lab.wait_session(lambda s: s["online"])["id"]
    send_alone(lab, dev, sid, b"PI")
    send_alone(lab, dev, sid, b"NG\r\n")
    assert recv_exactly(dev, 5) == b"PONG\n"

    rules = listeners[0]["auto_replies"]
    body = {"rules": rules, "framing": {"kind": "delimiter", "delimiter_hex": "1a"}}
    status, info = lab.put("/api/listeners/0/auto-replies", body)
    assert status == 200, info
    assert info["framing"] == {"kind": "delimiter", "delimiter_hex": "1a"}
    send_alone(lab, dev, sid, b"PING\n")  # a line end no longer ends a frame
    send_alone(lab, dev, sid, b"\x1aPING\x1a")
    # The first frame was "PING\n" (exact ignores one trailing line end), the second "PING".
    assert recv_exactly(dev, 10) == b"PONG\nPONG\n"

    for bad, message in (
        ({"kind": "delimiter"}, "needs delimiter_hex"),
        ({"kind": "line", "delimiter_hex": "0a"}, "only with kind delimiter"),
        ({"kind": "words"}, "unknown framing kind"),
        ({"kind": "delimiter", "delimiter_hex": ""}, "1 to 16 bytes"),
    ):
        status, err = lab.put("/api/listeners/0/auto-replies", {"rules": rules, "framing": bad})
        assert status == 400 and message in err["error"], (bad, err)
    assert lab.get("/api/listeners")[1]["listeners"][0]["framing"]["kind"] == "delimiter"


def test_bad_framing_flag_is_a_clear_error(tmp_path):
    run = subprocess.run(
        [SOCKLAB_BIN, "--db", str(tmp_path / "x.db"), "--reply-framing", "words"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert "unknown framing" in run.stderr and "read, line or delim:TEXT" in run.stderr
    assert not (tmp_path / "x.db").exists()
