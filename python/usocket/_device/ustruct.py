"""MicroPython's ``ustruct`` for device scripts run by ``usocket-run``: CPython's ``struct``.

``calcsize``, ``pack``, ``pack_into``, ``unpack``, ``unpack_from`` with the same format
strings (``<``, ``>``, ``!``, ``@`` and the usual codes). As in MicroPython, an ``s`` field
also takes a ``str`` (packed as its UTF-8 bytes).
"""

from __future__ import annotations

from struct import calcsize, unpack, unpack_from
from struct import pack as _pack
from struct import pack_into as _pack_into
from typing import Any

__all__ = ["calcsize", "pack", "pack_into", "unpack", "unpack_from"]


def _encode(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.encode() if isinstance(v, str) else v for v in values)


def pack(fmt: str | bytes, *values: Any) -> bytes:
    """Pack ``values`` by ``fmt``; ``str`` values for ``s`` fields are UTF-8 encoded."""
    return _pack(fmt, *_encode(values))


def pack_into(fmt: str | bytes, buffer: Any, offset: int, *values: Any) -> None:
    """Pack ``values`` into ``buffer`` at ``offset``; ``str`` as in :func:`pack`."""
    _pack_into(fmt, buffer, offset, *_encode(values))
