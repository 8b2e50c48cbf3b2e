"""MicroPython's ``uasyncio`` for device scripts run by ``usocket-run``: CPython's ``asyncio``.

Everything of ``asyncio`` (``run``, ``sleep``, ``create_task``, ``gather``, ``wait_for``,
``Event``, ``Lock``, ``get_event_loop``, ...) plus MicroPython's ``sleep_ms(ms)`` and
``wait_for_ms(aw, ms)``. ``open_connection(host, port)`` and ``start_server(cb, host,
port)`` give MicroPython's ``Stream`` shape: one object for reading and writing, with
``read``, ``readline``, ``readexactly``, ``write``, ``drain``, ``awrite``, ``close``,
``aclose``, ``wait_closed`` and ``get_extra_info``. ``open_connection`` passes the address
through ``usocket.getaddrinfo`` first, so the runner's ``--map`` rules and its warning (or
``--strict-map`` refusal) for unmapped non-loopback addresses apply to it.
"""

from __future__ import annotations

import asyncio as _asyncio
from asyncio import *
from typing import Any


async def sleep_ms(ms: int) -> None:
    """Sleep ``ms`` milliseconds."""
    await _asyncio.sleep(ms / 1000)


async def wait_for_ms(aw: Any, ms: int) -> Any:
    """``wait_for`` with a timeout in milliseconds."""
    return await _asyncio.wait_for(aw, ms / 1000)


_warned: set[tuple[str, int]] = set()


def _guard(ip: str, port: int) -> None:
    """The runner's rule for unmapped non-loopback destinations (warn, or refuse)."""
    import ipaddress
    import os
    import sys

    mode = os.environ.get("USOCKET_ADDRESS_GUARD", "off")
    address = ipaddress.ip_address(ip.split("%")[0])
    if mode == "off" or address.is_loopback or address.is_unspecified:
        return
    shown = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    if mode == "strict":
        if (ip, port) not in _warned:
            _warned.add((ip, port))
            print(
                f"usocket: refused {shown}: not covered by --map (--strict-map); OSError(113)",
                file=sys.stderr,
            )
        raise OSError(113)
    if (ip, port) not in _warned:
        _warned.add((ip, port))
        print(
            f"usocket: warning: {shown} is not covered by --map; "
            "the script is talking to the real network",
            file=sys.stderr,
        )


class Stream:
    """MicroPython's stream: reading and writing on one object."""

    def __init__(self, reader: _asyncio.StreamReader, writer: _asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``b''`` at the end of the stream)."""
        return await self._reader.read(n)

    async def readline(self) -> bytes:
        """One line, with its ``\\n``."""
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes (``EOFError`` if the stream ends first)."""
        try:
            return await self._reader.readexactly(n)
        except _asyncio.IncompleteReadError:
            raise EOFError from None

    def write(self, data: bytes) -> None:
        """Buffer ``data``; ``drain()`` sends it."""
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the buffered data is sent."""
        await self._writer.drain()

    async def awrite(self, data: bytes, off: int = 0, sz: int = -1) -> None:
        """Write ``data[off:off + sz]`` and drain."""
        end = len(data) if sz < 0 else off + sz
        self._writer.write(bytes(data[off:end]))
        await self._writer.drain()

    def close(self) -> None:
        """Start closing the connection."""
        self._writer.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._writer.wait_closed()

    async def aclose(self) -> None:
        """Close and wait until closed."""
        self._writer.close()
        await self._writer.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra information (``'peername'``, ...)."""
        return self._writer.get_extra_info(name, default)


async def open_connection(host: str, port: int) -> tuple[Stream, Stream]:
    """Connect (after the runner's address map) and return ``(stream, stream)``."""
    import usocket

    ip, mapped_port = usocket.getaddrinfo(host, port)[0][-1]
    _guard(ip, mapped_port)
    reader, writer = await _asyncio.open_connection(ip, mapped_port)
    stream = Stream(reader, writer)
    return stream, stream


async def start_server(callback: Any, host: str, port: int, backlog: int = 5) -> Any:
    """Serve on ``host:port``; ``callback(stream, stream)`` per client (may be a coroutine
    function). Returns the server (``close()``, ``wait_closed()``)."""

    async def serve(reader: _asyncio.StreamReader, writer: _asyncio.StreamWriter) -> None:
        stream = Stream(reader, writer)
        result = callback(stream, stream)
        if _asyncio.iscoroutine(result):
            await result

    return await _asyncio.start_server(serve, host, port, backlog=backlog)
