"""QuecPython's ``queue`` for device scripts run by ``usocket-run`` (not CPython's).

``Queue(maxsize=100)``: ``put(item=None)`` never blocks and returns ``True``, or ``False``
when the queue already holds more than ``maxsize`` items (so ``maxsize + 1`` fit, as on the
device); ``get()`` blocks until an item arrives (no timeout, never ``Empty``); ``size()``
and ``empty()``. CPython's ``qsize``, ``full``, ``put_nowait``, ``task_done``, ``Empty``,
``Full`` and the other queue classes do not exist here, as on the device.

Only device scripts see this module: the runner's own modules and Python's library keep
CPython's ``queue``.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

__all__ = ["Queue"]


def _stop_point() -> None:
    check = getattr(sys.modules.get("_thread"), "_check_stop", None)
    if check is not None:
        check()


class Queue:
    """A FIFO queue shared between threads."""

    def __init__(self, maxsize: int = 100) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"can't convert {type(maxsize).__name__} to int")
        self._maxsize = maxsize
        self._items: deque[Any] = deque()
        self._ready = threading.Condition()

    def put(self, item: Any = None) -> bool:
        """Append ``item``; ``False`` (nothing added) when the queue is over its size."""
        with self._ready:
            if len(self._items) > self._maxsize:
                return False
            self._items.append(item)
            self._ready.notify()
            return True

    def get(self) -> Any:
        """Remove and return the oldest item, waiting as long as it takes for one."""
        with self._ready:
            while not self._items:
                if not self._ready.wait(0.1):
                    _stop_point()
            return self._items.popleft()

    def size(self) -> int:
        """How many items are waiting."""
        with self._ready:
            return len(self._items)

    def empty(self) -> bool:
        """True when no item is waiting."""
        return self.size() == 0
