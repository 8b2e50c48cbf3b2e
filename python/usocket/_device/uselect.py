"""MicroPython's ``uselect`` for device scripts run by ``usocket-run``.

Works on usocket objects (through their real ``fileno()``), on anything else with a
``fileno()`` method and on plain file descriptors.

* ``poll()`` -> a poller with ``register(obj, eventmask=POLLIN | POLLOUT)``,
  ``modify(obj, eventmask)``, ``unregister(obj)``, ``poll(timeout_ms=-1)`` -> list of
  ``(obj, events)`` with the registered object itself, and ``ipoll(timeout_ms=-1, flags=0)``
  (an iterator over the same tuples). ``POLLERR`` and ``POLLHUP`` are always reported.
  A closed usocket (``fileno() == -1``) is reported at once with ``POLLNVAL``.
* ``select(rlist, wlist, xlist[, timeout_s])`` -> three lists, as CPython's.

Waits run in short slices so that ``_thread.stop_thread`` ends a polling thread promptly.
"""

from __future__ import annotations

import select as _select
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

POLLIN = 0x0001
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
POLLNVAL = 0x0020

_SLICE_MS = 50


def _stop_point() -> None:
    """Let ``_thread.stop_thread`` end the calling thread here, between two wait slices."""
    check = getattr(sys.modules.get("_thread"), "_check_stop", None)
    if check is not None:
        check()


def _fd(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        raise TypeError(f"object of type {type(obj).__name__} can't be polled")
    return int(fileno())


class _Poll:
    """A set of registered objects, polled together."""

    def __init__(self) -> None:
        self._masks: dict[int, tuple[Any, int]] = {}

    def register(self, obj: Any, eventmask: int = POLLIN | POLLOUT) -> None:
        """Watch ``obj`` for ``eventmask`` (registering again replaces the mask)."""
        self._masks[id(obj)] = (obj, eventmask)

    def modify(self, obj: Any, eventmask: int) -> None:
        """Change the mask of a registered ``obj``; ``OSError(2)`` if it is not registered."""
        if id(obj) not in self._masks:
            raise OSError(2)
        self._masks[id(obj)] = (obj, eventmask)

    def unregister(self, obj: Any) -> None:
        """Stop watching ``obj`` (no error if it was not registered)."""
        self._masks.pop(id(obj), None)

    def _poll_once(self, timeout_ms: int) -> list[tuple[Any, int]]:
        poller = _select.poll()
        by_fd: dict[int, list[Any]] = {}
        ready: list[tuple[Any, int]] = []
        for obj, mask in self._masks.values():
            fd = _fd(obj)
            if fd < 0:
                ready.append((obj, POLLNVAL))
                continue
            by_fd.setdefault(fd, []).append(obj)
            poller.register(fd, mask & (POLLIN | POLLOUT))
        if ready:
            timeout_ms = 0
        for fd, events in poller.poll(timeout_ms):
            for obj in by_fd.get(fd, []):
                mask = self._masks[id(obj)][1]
                got = events & (mask | POLLERR | POLLHUP | POLLNVAL)
                if got:
                    ready.append((obj, got))
        return ready

    def poll(self, timeout_ms: int = -1) -> list[tuple[Any, int]]:
        """Wait up to ``timeout_ms`` (forever if negative) for events; [] on timeout."""
        if not isinstance(timeout_ms, int):
            raise TypeError(f"can't convert {type(timeout_ms).__name__} to int")
        deadline: float | None = None
        if timeout_ms >= 0:
            deadline = time.monotonic() + timeout_ms / 1000
        while True:
            _stop_point()
            step = _SLICE_MS
            if deadline is not None:
                step = min(step, max(0, int((deadline - time.monotonic()) * 1000 + 0.999)))
            ready = self._poll_once(step)
            if ready or (deadline is not None and time.monotonic() >= deadline):
                return ready

    def ipoll(self, timeout_ms: int = -1, flags: int = 0) -> Iterator[tuple[Any, int]]:
        """Like :meth:`poll`, as an iterator (``flags`` is accepted and ignored)."""
        return iter(self.poll(timeout_ms))


def poll() -> _Poll:
    """A new, empty poller."""
    return _Poll()


def select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: Any = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """Wait until some objects are readable/writable/exceptional, or ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
    while True:
        _stop_point()
        step = _SLICE_MS / 1000
        if deadline is not None:
            step = min(step, max(0.0, deadline - time.monotonic()))
        r, w, x = _select.select(rlist, wlist, xlist, step)
        if r or w or x or (deadline is not None and time.monotonic() >= deadline):
            return r, w, x
