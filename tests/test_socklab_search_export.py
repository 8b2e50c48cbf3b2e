"""Searching history over the API and exporting it with `socklab export`, against a real
socklab with real devices: every filter of GET /api/messages, a result set pinned while
data streams in, and exports in jsonl, csv, raw and pcapng (read back by tshark)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SOCKLAB_BIN, recv_exactly

RUN_TIMEOUT_S = 60
UP_TCP = [b"hello\r\n", b"\x00\xffbin", b"IMEI 861234040000013\n"]


@pytest.fixture
def traffic(socklab, tcp_device):
    """One TCP device (three uploads, one send down) and one UDP device (two datagrams)."""
    dev = tcp_device(socklab.tcp_port)
    for chunk in UP_TCP:
        dev.send(chunk)
        socklab.wait_for(
            "the upload", lambda c=chunk: any(m["hex"] == c.hex() for m in all_messages(socklab))
        )
    tcp_sid = socklab.wait_session(lambda s: s["proto"] == "tcp", "the TCP device")["id"]
    assert socklab.post(f"/api/sessions/{tcp_sid}/send", {"hex": "61636b0d0a"})[0] == 200
    assert recv_exactly(dev, 5) == b"ack\r\n"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for d in (b"udp one", b"udp\x00two"):
            udp.sendto(d, ("127.0.0.1", socklab.udp_port))
            socklab.wait_for(
                "the datagram", lambda d=d: any(m["hex"] == d.hex() for m in all_messages(socklab))
            )
    finally:
        udp.close()
    udp_sid = socklab.wait_session(lambda s: s["proto"] == "udp", "the UDP device")["id"]
    return tcp_sid, udp_sid


def all_messages(lab) -> list[dict]:
    status, body = lab.get("/api/messages?limit=1000")
    assert status == 200, body
    return body["messages"]


def search(lab, query: str) -> dict:
    status, body = lab.get("/api/messages?" + query)
    assert status == 200, (query, body)
    return body


def test_search_filters(socklab, traffic):
    tcp_sid, udp_sid = traffic
    everything = search(socklab, "limit=1000")
    assert everything["total"] == 6
    ids = [m["id"] for m in everything["messages"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert [m["hex"] for m in search(socklab, "q=hello")["messages"]] == [b"hello\r\n".hex()]
    assert search(socklab, "hex=00ff")["messages"][0]["hex"] == b"\x00\xffbin".hex()
    assert search(socklab, "hex=00")["total"] == 2  # the binary upload and the UDP datagram
    found = search(socklab, "regex=" + quote(r"IMEI \d{15}"))
    assert found["total"] == 1 and found["messages"][0]["session_id"] == tcp_sid
    down = search(socklab, "direction=down")
    assert down["total"] == 1 and down["messages"][0]["hex"] == b"ack\r\n".hex()
    assert search(socklab, f"session={udp_sid}")["total"] == 2
    assert search(socklab, "listener=1")["total"] == 2  # the UDP listener comes after the TCP one
    assert search(socklab, f"session={tcp_sid}&direction=up&q=bin")["total"] == 1
    newest = everything["messages"][0]["ts_ms"]
    assert search(socklab, f"since_ms={newest + 1}")["total"] == 0
    assert search(socklab, f"until_ms={newest + 1}")["total"] == 6
    page = search(socklab, "limit=2&offset=1")
    assert [m["id"] for m in page["messages"]] == ids[1:3] and page["total"] == 6
    # Content filters combine: a message must match each one given.
    assert search(socklab, "q=IMEI&hex=00")["total"] == 0
    assert search(socklab, "q=bin&hex=00ff&regex=" + quote(r"b.n"))["total"] == 1
    for bad in ("regex=%28", "hex=zz", "direction=sideways", "limit=0", "session=x"):
        status, body = socklab.get("/api/messages?" + bad)
        assert status == 400 and body["error"], bad


def test_search_results_stay_put_while_data_streams_in(socklab, traffic, tcp_device):
    first = search(socklab, "limit=1")
    pinned = first["max_id"]
    dev = tcp_device(socklab.tcp_port)
    dev.send(b"later")
    socklab.wait_for("the new upload", lambda: search(socklab, "q=later")["total"] == 1)
    again = search(socklab, f"limit=1&offset=1&max_id={pinned}")
    assert again["total"] == first["total"] == 6
    assert again["messages"][0]["id"] < first["messages"][0]["id"]
    assert search(socklab, "limit=1")["total"] == 7


def export(lab, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SOCKLAB_BIN, "export", "--db", str(lab.db), *args],
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_export_jsonl_csv_and_raw(socklab, traffic):
    tcp_sid, udp_sid = traffic
    both = export(socklab, str(tcp_sid), str(udp_sid))
    assert both.returncode == 0, both.stderr
    lines = [json.loads(line) for line in both.stdout.decode().splitlines()]
    assert [m["session_id"] for m in lines] == [tcp_sid] * 4 + [udp_sid] * 2
    assert export(socklab, "--all").stdout == both.stdout
    newest = lines[-1]["ts_ms"]
    assert export(socklab, "--since", str(newest + 1)).stdout == b""
    # A time range: --until alone keeps what came before it, and with --since the window
    # between (from --since on, before --until).
    first, second = lines[0]["ts_ms"], lines[1]["ts_ms"]
    before = export(socklab, "--until", str(second))
    assert before.returncode == 0, before.stderr
    assert [json.loads(line)["id"] for line in before.stdout.decode().splitlines()] == [
        m["id"] for m in lines if m["ts_ms"] < second
    ]
    window = export(socklab, "--since", str(first), "--until", str(newest))
    assert [json.loads(line)["id"] for line in window.stdout.decode().splitlines()] == [
        m["id"] for m in lines if first <= m["ts_ms"] < newest
    ]
    assert export(socklab, "--until", str(first)).stdout == b""
    table = export(socklab, "--all", "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout.decode())))
    assert [bytes.fromhex(r["hex"]) for r in rows[:3]] == UP_TCP
    assert (
        rows[0]["text"] == "hello\\r\\n"
        and rows[0]["direction"] == "up"
        and rows[0]["ts"].endswith("Z")
    )
    raw_up = export(socklab, str(tcp_sid), "--format", "raw")
    assert raw_up.stdout == b"".join(UP_TCP)
    raw_down = export(socklab, str(tcp_sid), "--format", "raw", "--direction", "down")
    assert raw_down.stdout == b"ack\r\n"
    missing = export(socklab, "424242", "--format", "csv")
    assert missing.returncode == 1 and b"no session 424242" in missing.stderr
    nothing = export(socklab)
    assert nothing.returncode == 1 and b"--all" in nothing.stderr


def test_export_into_a_closed_pipe_ends_quietly(socklab, traffic):
    proc = subprocess.Popen(
        [SOCKLAB_BIN, "export", "--db", str(socklab.db), "--all", "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=RUN_TIMEOUT_S) == 0
    assert b"Broken pipe" not in err


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_export_pcapng_reads_back_in_tshark(socklab, traffic, tmp_path: Path):
    tcp_sid, _ = traffic
    cap = tmp_path / "history.pcapng"
    result = export(socklab, "--all", "--format", "pcapng")
    assert result.returncode == 0, result.stderr
    cap.write_bytes(result.stdout)
    fields = subprocess.run(
        [
            "tshark",
            "-r",
            str(cap),
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.src",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
            "-e",
            "tcp.payload",
            "-e",
            "udp.payload",
            "-e",
            "frame.time_epoch",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert fields.returncode == 0, fields.stderr
    packets = [line.split("|") for line in fields.stdout.splitlines()]
    tcp_port = socklab.tcp_port
    up = b"".join(bytes.fromhex(p[3]) for p in packets if p[3] and p[1] and int(p[1]) != tcp_port)
    down = b"".join(bytes.fromhex(p[3]) for p in packets if p[3] and p[1] and int(p[1]) == tcp_port)
    assert up == b"".join(UP_TCP)
    assert down == b"ack\r\n"
    udp = [bytes.fromhex(p[4]) for p in packets if p[4]]
    assert udp == [b"udp one", b"udp\x00two"]
    assert all(p[0] == "127.0.0.1" for p in packets)
    # The capture carries the stored times (to the millisecond).
    first = json.loads(export(socklab, str(tcp_sid)).stdout.decode().splitlines()[0])
    data_packets = [p for p in packets if p[3]]
    assert round(float(data_packets[0][5]) * 1000) == first["ts_ms"]
