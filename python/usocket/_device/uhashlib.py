"""MicroPython's ``uhashlib`` for device scripts run by ``usocket-run``.

``sha256``, ``sha1`` and ``md5`` objects with ``update(data)`` and ``digest()``. As on the
device there is no ``hexdigest()`` (use ``ubinascii.hexlify(h.digest())``), and after
``digest()`` the object takes no more data (``ValueError``).
"""

from __future__ import annotations

import hashlib as _hashlib
from typing import Any

__all__ = ["md5", "sha1", "sha256"]


class _Hash:
    _algorithm = ""

    def __init__(self, data: Any = None) -> None:
        self._hash = _hashlib.new(self._algorithm)
        self._final = False
        if data is not None:
            self.update(data)

    def update(self, data: Any) -> None:
        """Feed ``data`` (bytes-like or str)."""
        if self._final:
            raise ValueError("hash is final: digest() was called")
        if isinstance(data, str):
            data = data.encode()
        self._hash.update(data)

    def digest(self) -> bytes:
        """The hash of everything fed so far; no more data after this."""
        self._final = True
        return self._hash.digest()


class sha256(_Hash):
    """SHA-256."""

    _algorithm = "sha256"


class sha1(_Hash):
    """SHA-1."""

    _algorithm = "sha1"


class md5(_Hash):
    """MD5."""

    _algorithm = "md5"
