"""usocket-run --map (TCP, UDP, host-only) and --profile, observed from a device script."""

from __future__ import annotations

import socket
import textwrap
import threading
from pathlib import Path

from runner_support import TcpPeer, free_port, run_device, write_script

#: TEST-NET-3 (RFC 5737): never routed, so only a working --map can reach the peer.
UNREACHABLE = "203.0.113.7"


def script(tmp_path: Path, source: str) -> str:
    return str(write_script(tmp_path, "main.py", textwrap.dedent(source)))


def echo_twice(conn: socket.socket, index: int, peer: TcpPeer) -> None:
    line = peer.read_line(conn)
    conn.sendall(f"echo {index}: {line}\n".encode())


def test_map_redirects_tcp_connect_and_is_announced_once(tmp_path: Path) -> None:
    """HOST:PORT=HOST:PORT rewrites connect(); the mapping is printed once on stderr."""
    peer = TcpPeer(echo_twice, connections=2)
    path = script(
        tmp_path,
        f"""\
        import usocket
        for n in range(2):
            s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
            s.connect(('{UNREACHABLE}', 4242))
            s.send('hello %d\\n' % n)
            print(s.recv(64).decode().strip())
            s.close()
        """,
    )
    rule = f"{UNREACHABLE}:4242=127.0.0.1:{peer.port}"
    result = run_device("--timeout", "20", "--map", rule, path)
    peer.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo 0: hello 0\necho 1: hello 1\n"
    announcement = f"usocket: mapped {UNREACHABLE}:4242 -> 127.0.0.1:{peer.port}"
    assert result.stderr.count(announcement) == 1


def test_host_only_map_keeps_the_scripts_port(tmp_path: Path) -> None:
    """HOST=HOST rewrites a name in getaddrinfo() and keeps the port the script uses."""
    peer = TcpPeer(echo_twice)
    path = script(
        tmp_path,
        """\
        import usocket, usys
        addr = usocket.getaddrinfo('device-server.invalid', int(usys.argv[1]))[0][-1]
        s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        s.connect(addr)
        s.send(b'named\\n')
        print(addr, s.recv(64).decode().strip())
        s.close()
        """,
    )
    result = run_device(
        "--timeout", "20", "--map", "device-server.invalid=127.0.0.1", path, str(peer.port)
    )
    peer.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"('127.0.0.1', {peer.port}) echo 0: named\n"
    assert f"usocket: mapped device-server.invalid:{peer.port} -> 127.0.0.1:{peer.port}" in (
        result.stderr
    )


def test_map_redirects_udp_sendto(tmp_path: Path) -> None:
    """A datagram sendto() a mapped address reaches the local peer, and its reply returns."""
    received: list = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(15)
        port = peer.getsockname()[1]

        def answer() -> None:
            data, addr = peer.recvfrom(256)
            received.append(data)
            peer.sendto(b"pong", addr)

        responder = threading.Thread(target=answer, daemon=True)
        responder.start()
        path = script(
            tmp_path,
            f"""\
            import usocket
            s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
            s.settimeout(10)
            s.sendto('ping', ('{UNREACHABLE}', 5005))
            data, addr = s.recvfrom(64)
            print(data, addr[0])
            s.close()
            """,
        )
        result = run_device(
            "--timeout", "20", "--map", f"{UNREACHABLE}:5005=127.0.0.1:{port}", path
        )
        responder.join(15)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "b'pong' 127.0.0.1\n"
    assert received == [b"ping"]


def test_unmatched_port_is_not_mapped(tmp_path: Path) -> None:
    """A rule for one port leaves other ports of the same host alone."""
    port = free_port()
    path = script(
        tmp_path,
        f"""\
        import usocket
        s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        try:
            s.connect(('127.0.0.1', {port}))
        except OSError as e:
            print('refused', e.args[0])
        s.close()
        """,
    )
    result = run_device("--timeout", "20", "--map", f"127.0.0.1:1=127.0.0.1:{port + 1}", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "refused 104\n"
    assert "usocket: mapped" not in result.stderr


PROFILE_PROBE = """\
import usocket, usys
port = int(usys.argv[1])
listener = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
listener.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
listener.bind(('127.0.0.1', port))
listener.listen(1)
client = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
client.connect(('127.0.0.1', port))
accepted = listener.accept()
conn = accepted[0]
results = [len(accepted), hasattr(client, 'getsocketsta')]
try:
    results.append(client.send(b''))
except OSError as e:
    results.append(e.args[0])
client.close()
for _ in range(2):
    try:
        results.append(conn.recv(16))
    except OSError as e:
        results.append(e.args[0])
print(results)
conn.close()
listener.close()
"""


def test_profile_switches_accept_shape_and_fin_behaviour(tmp_path: Path) -> None:
    """quecpython: 3-tuple accept, send(b'') 0, OSError(107) then b'' after FIN; legacy:
    send(b'') raises OSError(110); micropython: 2-tuple accept, no getsocketsta, b''."""
    path = script(tmp_path, PROFILE_PROBE)
    outputs = {}
    for profile in ("quecpython", "legacy", "micropython"):
        result = run_device("--timeout", "20", "--profile", profile, path, str(free_port()))
        assert result.returncode == 0, result.stderr
        outputs[profile] = result.stdout
    assert outputs["quecpython"] == "[3, True, 0, 107, b'']\n"
    assert outputs["legacy"].startswith("[3, True, 110, 107, ")
    assert outputs["micropython"] == "[2, False, 0, b'', b'']\n"
    assert run_device("--timeout", "20", path, str(free_port())).stdout == outputs["quecpython"]
