"""QuecPython's ``osTimer`` for device scripts run by ``usocket-run``.

``import osTimer; t = osTimer()`` (the module is the class, as on the device).
``t.start(ms, cyclic, callback)``: after ``ms`` milliseconds, once (``cyclic`` 0) or
repeatedly (1), ``callback(None)`` runs in the "osTimer" callback thread; returns 0, and a
new ``start`` re-arms the timer with the new arguments. ``stop()`` -> 0; ``delete_timer()``
-> 0 (idempotent); after it ``start``/``stop`` return -1.
"""

from __future__ import annotations

import sys
import threading
import time as _time
from typing import Any, Callable

import _devstate

_callbacks = _devstate.CallbackThread("osTimer")


class osTimer:
    """A software timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._deleted = False

    def start(self, ms: int, cyclic: int, callback: Callable[[Any], Any]) -> int:
        """Arm the timer; 0, or -1 after ``delete_timer()``."""
        for name, value in (("ms", ms), ("cyclic", cyclic)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: can't convert {type(value).__name__} to int")
        if not callable(callback):
            raise TypeError("callback must be callable")
        if ms < 0:
            raise ValueError("ms must be >= 0")
        with self._lock:
            if self._deleted:
                return -1
            if self._stop is not None:
                self._stop.set()
            stop = threading.Event()
            self._stop = stop
        threading.Thread(
            target=self._run,
            args=(stop, ms / 1000, bool(cyclic), callback),
            name="osTimer-clock",
            daemon=True,
        ).start()
        return 0

    @staticmethod
    def _run(stop: threading.Event, interval: float, cyclic: bool, fn: Callable) -> None:
        next_at = _time.monotonic() + interval
        while not stop.wait(max(0.0, next_at - _time.monotonic())):
            _callbacks.submit(fn, None)
            if not cyclic:
                return
            next_at += max(interval, 0.001)

    def stop(self) -> int:
        """Disarm the timer; 0, or -1 after ``delete_timer()``."""
        with self._lock:
            if self._deleted:
                return -1
            if self._stop is not None:
                self._stop.set()
        return 0

    def delete_timer(self) -> int:
        """Disarm and delete the timer; 0."""
        with self._lock:
            if self._stop is not None:
                self._stop.set()
            self._deleted = True
        return 0

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


# ``import osTimer`` gives the class, as on the device.
osTimer.__module__ = __name__
osTimer.__file__ = __file__  # type: ignore[attr-defined]
sys.modules[__name__] = osTimer  # type: ignore[assignment]
