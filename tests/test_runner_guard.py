"""usocket-run's "no silent escapes" rule and the device's import order.

A connection to a non-loopback address that no --map rule covers is reported once per
destination, or refused with OSError(113) under --strict-map. The firmware's C built-in
modules come before the script's folder, its frozen Python modules after it.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from runner_support import TcpPeer, run_device, write_script

#: TEST-NET-3 (RFC 5737): under --strict-map nothing is ever sent there.
FAR = "203.0.113.7"


def script(tmp_path: Path, source: str, name: str = "main.py") -> str:
    return str(write_script(tmp_path, name, textwrap.dedent(source)))


def local_non_loopback_ipv4() -> str | None:
    """An IPv4 address of this host outside 127/8 (traffic to it stays on the host)."""
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for previous, line in zip(lines, lines[1:]):
        if "/32 host LOCAL" in line:
            address = previous.split("--")[-1].strip()
            if not address.startswith("127."):
                return address
    return None


def test_strict_map_refuses_unmapped_destinations_with_113(tmp_path: Path) -> None:
    """connect() and sendto() to an unmapped far address: OSError(113) each time, one
    stderr line per destination; a mapped one still works."""
    peer = TcpPeer(lambda conn, i, p: conn.sendall(b"hi\n"))
    path = script(
        tmp_path,
        f"""\
        import usocket
        for _ in range(2):
            s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
            try:
                s.connect(('{FAR}', 4242))
            except OSError as e:
                print('connect', e.args[0])
            s.close()
        u = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
        try:
            u.sendto(b'x', ('{FAR}', 5353))
        except OSError as e:
            print('sendto', e.args[0])
        u.close()
        s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        s.connect(('{FAR}', 80))
        print(s.recv(16))
        s.close()
        """,
    )
    result = run_device("--map", f"{FAR}:80=127.0.0.1:{peer.port}", path)
    peer.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "connect 113\nconnect 113\nsendto 113\nb'hi\\n'\n"
    refused = [line for line in result.stderr.splitlines() if "refused" in line]
    assert refused == [
        f"usocket: refused {FAR}:4242: not covered by --map (--strict-map); OSError(113)",
        f"usocket: refused {FAR}:5353: not covered by --map (--strict-map); OSError(113)",
    ]


def test_unmapped_non_loopback_connection_is_warned_once_per_destination(
    tmp_path: Path,
) -> None:
    """Without --strict-map the connection goes ahead (here to this host's own LAN
    address, so nothing leaves the machine) and the destination is named once."""
    address = local_non_loopback_ipv4()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    path = script(
        tmp_path,
        f"""\
        import usocket
        for _ in range(3):
            s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
            s.connect(('{address}', {port}))
            s.close()
        s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        s.connect(('127.0.0.1', {port}))
        s.close()
        print('connected 4 times')
        """,
    )
    try:
        result = run_device(path, strict=False)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "connected 4 times\n"
    warning = (
        f"usocket: warning: {address}:{port} is not covered by --map; "
        "the script is talking to the real network"
    )
    assert result.stderr.splitlines() == [warning]


def test_frozen_modules_are_shadowed_by_the_script_folder_builtins_are_not(
    tmp_path: Path,
) -> None:
    """umqtt.py, ntptime.py and queue.py beside main.py replace the runner's (frozen on the
    device); net.py, machine.py, utime.py and usocket.py there do not (C built-ins)."""
    for name in ("umqtt", "ntptime", "queue", "net", "machine", "utime", "usocket"):
        write_script(tmp_path, f"{name}.py", f"MINE = '{name}'\n")
    path = script(
        tmp_path,
        """\
        import umqtt, ntptime, queue, net, machine, utime, usocket
        for m in (umqtt, ntptime, queue, net, machine, utime, usocket):
            print(getattr(m, 'MINE', 'device'))
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "umqtt",
        "ntptime",
        "queue",
        "device",
        "device",
        "device",
        "device",
    ]


def test_device_queue_for_scripts_cpython_queue_for_the_library(tmp_path: Path) -> None:
    """The script's queue is the device's (put returns a bool, no Empty); a library
    module imported during the run still gets CPython's queue."""
    path = script(
        tmp_path,
        """\
        from queue import Queue
        import queue
        from concurrent.futures import ThreadPoolExecutor
        q = Queue(1)
        print(q.put('a'), q.put('b'), q.put('c'), q.size(), q.get(), q.empty())
        with ThreadPoolExecutor(1) as pool:  # uses CPython's queue.SimpleQueue inside
            print(hasattr(queue, 'Empty'), pool.submit(lambda: 6 * 7).result())
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True True False 2 a False\nFalse 42\n"
