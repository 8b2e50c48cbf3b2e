"""MicroPython's ``ucollections`` for device scripts run by ``usocket-run``.

``namedtuple(name, fields)``, ``OrderedDict`` and ``deque(iterable, maxlen[, flags])``.
As in MicroPython, ``deque`` takes ``maxlen`` positionally; with ``flags`` 1 an append to a
full deque raises ``IndexError`` instead of dropping the oldest item.
"""

from __future__ import annotations

import collections as _collections
from collections import OrderedDict, namedtuple
from typing import Any

__all__ = ["OrderedDict", "deque", "namedtuple"]


class deque(_collections.deque):
    """A bounded double-ended queue."""

    def __init__(self, iterable: Any = (), maxlen: int | None = None, flags: int = 0) -> None:
        super().__init__(iterable, maxlen)
        self._overflow_raises = bool(flags & 1)

    def _check_room(self) -> None:
        if self._overflow_raises and self.maxlen is not None and len(self) >= self.maxlen:
            raise IndexError("full")

    def append(self, item: Any) -> None:
        """Add ``item`` on the right."""
        self._check_room()
        super().append(item)

    def appendleft(self, item: Any) -> None:
        """Add ``item`` on the left."""
        self._check_room()
        super().appendleft(item)
