"""MicroPython's ``uasyncio`` for device scripts run by ``usocket-run``: CPython's ``asyncio``.

Everything of ``asyncio`` (``run``, ``sleep``, ``create_task``, ``gather``, ``wait_for``,
``Event``, ``Lock``, ``get_event_loop``, ``open_connection``, ``start_server``, ...) plus
MicroPython's ``sleep_ms(ms)`` and ``wait_for_ms(aw, ms)``. ``open_connection`` first passes
the address through ``usocket.getaddrinfo``, so the runner's ``--map`` rules apply to it.
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


async def open_connection(host: str, port: int, **kwargs: Any) -> Any:
    """Connect (after the runner's address map) and return ``(reader, writer)``."""
    import usocket

    ip, mapped_port = usocket.getaddrinfo(host, port)[0][-1]
    _guard(ip, mapped_port)
    return await _asyncio.open_connection(ip, mapped_port, **kwargs)
