"""uasyncio through usocket-run: MicroPython's Stream shape over a real loopback peer, the
--map rules and the --strict-map refusal, sleep_ms and wait_for_ms."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

from runner_support import TcpPeer, run_device, write_script


def test_streams_map_and_strict_refusal(tmp_path: Path) -> None:
    """open_connection to a mapped name reaches the peer; awrite/readline/readexactly work;
    an unmapped far address is refused with OSError(113)."""

    def echo_upper(conn: socket.socket, _index: int, peer: TcpPeer) -> None:
        line = peer.read_line(conn)
        conn.sendall(line.upper().encode() + b"\nabc")

    peer = TcpPeer(echo_upper)
    path = write_script(
        tmp_path,
        "main.py",
        textwrap.dedent(
            """\
            import uasyncio as asyncio

            async def main():
                stream, same = await asyncio.open_connection('iot.example.com', 5000)
                await stream.awrite(b'xhello device\\n', 1)
                print(stream is same, await stream.readline(), await stream.readexactly(3))
                await stream.aclose()
                try:
                    await asyncio.open_connection('203.0.113.9', 5000)
                except OSError as e:
                    print('refused', e.args[0])
                await asyncio.sleep_ms(10)
                try:
                    await asyncio.wait_for_ms(asyncio.sleep(5), 20)
                except asyncio.TimeoutError:
                    print('timed out')

            asyncio.run(main())
            """
        ),
    )
    result = run_device("--map", f"iot.example.com:5000=127.0.0.1:{peer.port}", str(path))
    peer.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True b'HELLO DEVICE\\n' b'abc'",
        "refused 113",
        "timed out",
    ]
    assert peer.lines == ["hello device"]
    assert "usocket: refused 203.0.113.9:5000" in result.stderr
