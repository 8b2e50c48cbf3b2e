"""QuecPython's ``machine`` for device scripts run by ``usocket-run``: ``RTC``, ``WDT``, ``Timer``.

* ``RTC().datetime()`` -> ``(year, month, day, weekday, hour, minute, second, 0)`` in
  local time (the ``utime`` zone), weekday 0 = Sunday. ``RTC().datetime(t)`` takes 8 items
  (weekday and the last one ignored), sets the device clock that ``utime.time()`` and
  ``utime.localtime()`` read (never the PC's clock) and returns 0. ``set_alarm(t)``,
  ``enable_alarm(0|1)`` and ``register_callback(f)`` call ``f(None)`` at the alarm time.
* ``WDT(period)``: a watchdog of ``period`` seconds. ``feed()`` restarts the countdown,
  ``stop()`` stops it; when it starves, one line goes to stderr and the run ends with exit
  status 3, as after ``misc.Power.powerRestart()``. Creating a new one replaces the old.
* ``Timer(Timer.Timer0 .. Timer.Timer3)``: ``start(period=ms, mode=Timer.PERIODIC,
  callback=f, tick_hz=1000, freq=None)`` with keyword arguments only; ``callback(timer)``.
  A second ``start`` while running keeps the running period and mode and takes the new
  callback. ``stop()`` -> 0, -1 if never started.

Callbacks run one after another in one background thread per kind ("machine-timer",
"machine-rtc"); an exception in a callback is printed and later callbacks still run.
"""

from __future__ import annotations

import calendar
import threading
import time as _time
from typing import Any, Callable

import _devstate
import utime

_timer_callbacks = _devstate.CallbackThread("machine-timer")
_rtc_callbacks = _devstate.CallbackThread("machine-rtc")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: can't convert {type(value).__name__} to int")
    return value


class RTC:
    """The real-time clock (the device clock shared with ``utime``)."""

    _alarm_at: float | None = None
    _alarm_enabled = False
    _alarm_callback: Callable[[Any], Any] | None = None
    _alarm_timer: threading.Timer | None = None

    def __init__(self) -> None:
        pass

    def datetime(self, t: Any = None) -> tuple[int, ...] | int:
        """Read (no argument) or set (an 8-item tuple/list) the local date and time."""
        if t is None:
            y, mo, d, h, mi, s, wday, _ = utime.localtime()
            return (y, mo, d, (wday + 1) % 7, h, mi, s, 0)
        if not isinstance(t, (tuple, list)):
            raise TypeError(f"object '{type(t).__name__}' isn't a tuple or list")
        if len(t) != 8:
            raise ValueError(f"requested length 8 but object has length {len(t)}")
        y, mo, d, _week, h, mi, s, _us = (_int(v, "datetime") for v in t)
        if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 23 and 0 <= mi <= 59):
            return -1
        if not 0 <= s <= 59 or not 1970 <= y <= 2099:
            return -1
        local = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        utime._set_device_time(local - utime.getTimeZone() * 3600)
        RTC._rearm()
        return 0

    def set_alarm(self, t: Any) -> int:
        """Set the alarm to a local ``(y, mo, d, week, h, mi, s, 0)``; 0, -1 if in the past."""
        if not isinstance(t, (tuple, list)) or len(t) != 8:
            raise ValueError("alarm time must be a tuple of 8 items")
        y, mo, d, _week, h, mi, s, _us = (_int(v, "set_alarm") for v in t)
        at = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - utime.getTimeZone() * 3600
        if at <= utime._device_time():
            return -1
        RTC._alarm_at = at
        RTC._rearm()
        return 0

    def enable_alarm(self, on: int) -> int:
        """Enable (1) or disable (0) the alarm; 0."""
        RTC._alarm_enabled = bool(_int(on, "enable_alarm"))
        RTC._rearm()
        return 0

    def register_callback(self, fn: Callable[[Any], Any]) -> int:
        """``fn(arg)`` is called at the alarm; 0."""
        if not callable(fn):
            raise TypeError("callback must be callable")
        RTC._alarm_callback = fn
        return 0

    @staticmethod
    def _rearm() -> None:
        if RTC._alarm_timer is not None:
            RTC._alarm_timer.cancel()
            RTC._alarm_timer = None
        if not RTC._alarm_enabled or RTC._alarm_at is None:
            return
        delay = max(0.0, RTC._alarm_at - utime._device_time())

        def ring() -> None:
            RTC._alarm_at = None
            fn = RTC._alarm_callback
            if fn is not None:
                _rtc_callbacks.submit(fn, None)

        RTC._alarm_timer = threading.Timer(delay, ring)
        RTC._alarm_timer.daemon = True
        RTC._alarm_timer.start()


class WDT:
    """A watchdog: feed it within ``period`` seconds or the run ends (exit status 3)."""

    _current: WDT | None = None

    def __init__(self, period: int) -> None:
        if isinstance(period, bool) or not isinstance(period, (int, float)):
            raise TypeError(f"can't convert {type(period).__name__} to int")
        if period <= 0:
            raise ValueError("period must be > 0 seconds")
        self._period = float(period)
        self._lock = threading.Lock()
        self._deadline = _time.monotonic() + self._period
        self._stopped = threading.Event()
        if WDT._current is not None:
            WDT._current.stop()
        WDT._current = self
        threading.Thread(target=self._watch, name="machine-wdt", daemon=True).start()

    def _watch(self) -> None:
        while True:
            with self._lock:
                left = self._deadline - _time.monotonic()
            if left <= 0:
                break
            if self._stopped.wait(left):
                return
        if self._stopped.is_set():
            return
        _devstate.end_run(
            _devstate.EXIT_RESTART,
            f"usocket-run: machine.WDT not fed for {self._period:g} s: the device restarts",
        )

    def feed(self) -> int:
        """Restart the countdown; 0."""
        with self._lock:
            self._deadline = _time.monotonic() + self._period
        return 0

    def stop(self) -> int:
        """Stop the watchdog; 0."""
        self._stopped.set()
        return 0


class Timer:
    """One of the four hardware timers."""

    Timer0 = 0
    Timer1 = 1
    Timer2 = 2
    Timer3 = 3
    PERIODIC = 1
    ONE_SHOT = 2

    def __init__(self, n: int) -> None:
        n = _int(n, "Timer")
        if not 0 <= n <= 3:
            raise ValueError("invalid timer, Timer should be in [0, 3]")
        self._n = n
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        self._callback: Callable[[Any], Any] | None = None
        self._started = False

    def __repr__(self) -> str:
        return f"Timer({self._n})"

    def start(
        self,
        *,
        period: int = 0,
        mode: int = 1,
        callback: Callable[[Any], Any] | None = None,
        tick_hz: int = 1000,
        freq: float | None = None,
    ) -> int:
        """Start the timer (keyword arguments only); 0."""
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        if mode not in (Timer.PERIODIC, Timer.ONE_SHOT):
            raise ValueError("mode must be Timer.PERIODIC or Timer.ONE_SHOT")
        if freq is not None:
            if not isinstance(freq, (int, float)) or freq <= 0:
                raise ValueError("freq must be > 0")
            interval = 1.0 / freq
        else:
            period = _int(period, "period")
            tick_hz = _int(tick_hz, "tick_hz")
            if period <= 0 or tick_hz <= 0:
                raise ValueError("period and tick_hz must be > 0")
            interval = period / tick_hz
        with self._lock:
            self._callback = callback
            self._started = True
            if self._running is not None and not self._running.is_set():
                return 0
            stop = threading.Event()
            self._running = stop
        threading.Thread(
            target=self._tick, args=(stop, interval, mode), name="machine-timer-clock", daemon=True
        ).start()
        return 0

    def _tick(self, stop: threading.Event, interval: float, mode: int) -> None:
        next_at = _time.monotonic() + interval
        while not stop.wait(max(0.0, next_at - _time.monotonic())):
            fn = self._callback
            if fn is not None:
                _timer_callbacks.submit(fn, self)
            if mode == Timer.ONE_SHOT:
                stop.set()
                return
            next_at += interval

    def stop(self) -> int:
        """Stop the timer; 0, -1 if it was never started."""
        with self._lock:
            if not self._started:
                return -1
            if self._running is not None:
                self._running.set()
        return 0
