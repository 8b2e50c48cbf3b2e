"""MicroPython's ``uzlib`` for device scripts run by ``usocket-run`` (decompression only).

``decompress(data, wbits=0, bufsize=0)``: ``wbits`` 0 or 8..15 for a zlib stream, negative
for raw DEFLATE, 24..31 (16 + window) for gzip. ``DecompIO(stream, wbits=0)``: a stream that
reads and decompresses ``stream`` as it goes (``read``, ``readinto``, ``readline``). Bad
data raises ``OSError``, as on the device (not ``zlib.error``).
"""

from __future__ import annotations

import zlib as _zlib
from typing import Any

__all__ = ["DecompIO", "decompress"]

_CHUNK = 512


def _wbits(wbits: int) -> int:
    if isinstance(wbits, bool) or not isinstance(wbits, int):
        raise TypeError(f"can't convert {type(wbits).__name__} to int")
    return _zlib.MAX_WBITS if wbits == 0 else wbits


def decompress(data: Any, wbits: int = 0, bufsize: int = 0) -> bytes:
    """Decompress ``data`` in one go."""
    try:
        return _zlib.decompress(bytes(data), _wbits(wbits))
    except _zlib.error as exc:
        raise OSError(f"uzlib: {exc}") from None


class DecompIO:
    """A readable stream decompressing another one."""

    def __init__(self, stream: Any, wbits: int = 0) -> None:
        self._stream = stream
        self._zlib = _zlib.decompressobj(_wbits(wbits))
        self._buffer = b""
        self._eof = False

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and not self._eof:
            raw = self._stream.read(_CHUNK)
            try:
                if not raw:
                    self._buffer += self._zlib.flush()
                    self._eof = True
                else:
                    self._buffer += self._zlib.decompress(raw)
            except _zlib.error as exc:
                raise OSError(f"uzlib: {exc}") from None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` decompressed bytes (all that is left when ``n`` < 0)."""
        if n is None or n < 0:
            self._fill(1 << 62)
            n = len(self._buffer)
        else:
            self._fill(n)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def readinto(self, buf: Any) -> int:
        """Fill ``buf``; the number of bytes written."""
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readline(self) -> bytes:
        """One line, with its ``\\n``."""
        while b"\n" not in self._buffer and not self._eof:
            self._fill(len(self._buffer) + _CHUNK)
        end = self._buffer.find(b"\n")
        n = len(self._buffer) if end < 0 else end + 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out
