"""QuecPython's ``utime`` for device scripts run by ``usocket-run``.

As on the device (QuecPython modutime.c, MicroPython utime_mphal.c):

* ``ticks_ms()``, ``ticks_us()``, ``ticks_cpu()`` count up from an arbitrary origin and wrap
  at 2**30 (mask ``0x3FFFFFFF``); only ``ticks_diff``/``ticks_add`` give them meaning.
* ``ticks_diff(new, old)`` is signed and wrap-aware: the result lies in
  ``[-2**29, 2**29)``. ``ticks_add(ticks, delta)`` wraps the same way.
* ``sleep(seconds)`` takes int or float; ``sleep_ms``/``sleep_us`` take ints. Sleeps wait in
  short slices so ``_thread.stop_thread`` ends a sleeping thread promptly.
* ``time()`` is the device clock (RTC) in whole seconds since 1970 (UTC). It starts as the
  PC's clock; ``machine.RTC().datetime(t)`` and ``ntptime.settime()`` move it by an offset
  (:func:`_set_device_time`) and never touch the PC's clock.
* ``localtime([secs])`` -> ``(year, month, mday, hour, minute, second, weekday 0-6 Monday=0,
  yearday 1-366)`` in the device's time zone; ``mktime(tuple)`` is its inverse and takes 8
  or 9 items. ``setTimeZone(hours)``/``getTimeZone()`` set and read the zone, in whole hours
  east of UTC; it starts at the device identity's zone (8 unless ``--device``/
  ``QPY_TIMEZONE`` say otherwise), not the PC's. (The device's ``localtime(secs)``/``mktime``
  use a fixed UTC+8 regardless of the zone; here both use the current zone, which is the
  same thing when the zone is 8.)
"""

from __future__ import annotations

import calendar
import sys
import time as _time
from collections.abc import Sequence
from typing import Any

#: The device's tick period: every ticks_* value is below it.
TICKS_PERIOD = 1 << 30
_TICKS_MAX = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD // 2
#: Longest single wait; keeps sleeps interruptible by ``_thread.stop_thread``.
_SLICE_S = 0.05


def _int_arg(value: Any) -> int:
    """MicroPython's ``mp_obj_get_int``: ints (and bools) only."""
    if not isinstance(value, int):
        raise TypeError(f"can't convert {type(value).__name__} to int")
    return value


def _stop_point() -> None:
    """Let ``_thread.stop_thread`` end the calling thread here, between two wait slices."""
    check = getattr(sys.modules.get("_thread"), "_check_stop", None)
    if check is not None:
        check()


def _sleep_s(seconds: float) -> None:
    deadline = _time.monotonic() + seconds
    while True:
        _stop_point()
        left = deadline - _time.monotonic()
        if left <= 0:
            return
        _time.sleep(min(left, _SLICE_S))


def sleep(seconds: float) -> None:
    """Sleep for ``seconds`` (int or float)."""
    if not isinstance(seconds, (int, float)):
        raise TypeError(f"can't convert {type(seconds).__name__} to float")
    if seconds > 0:
        _sleep_s(float(seconds))


def sleep_ms(ms: int) -> None:
    """Sleep for ``ms`` milliseconds (an int)."""
    ms = _int_arg(ms)
    if ms > 0:
        _sleep_s(ms / 1000)


def sleep_us(us: int) -> None:
    """Sleep for ``us`` microseconds (an int)."""
    us = _int_arg(us)
    if us > 0:
        _sleep_s(us / 1_000_000)


def ticks_ms() -> int:
    """Milliseconds from an arbitrary origin, wrapping at 2**30."""
    return (_time.monotonic_ns() // 1_000_000) & _TICKS_MAX


def ticks_us() -> int:
    """Microseconds from an arbitrary origin, wrapping at 2**30."""
    return (_time.monotonic_ns() // 1_000) & _TICKS_MAX


def ticks_cpu() -> int:
    """The finest counter available (microseconds here), wrapping at 2**30."""
    return ticks_us()


def ticks_diff(ticks1: int, ticks2: int) -> int:
    """Signed, wrap-aware ``ticks1 - ticks2`` (``ticks1`` is the later reading)."""
    ticks1 = _int_arg(ticks1)
    ticks2 = _int_arg(ticks2)
    return ((ticks1 - ticks2 + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def ticks_add(ticks: int, delta: int) -> int:
    """``ticks + delta`` wrapped into the tick period (``delta`` may be negative)."""
    return (_int_arg(ticks) + _int_arg(delta)) & _TICKS_MAX


#: Device clock minus the PC's clock, in seconds (set by machine.RTC and ntptime).
_offset_s = 0.0


def _device_time() -> float:
    """The device clock: Unix seconds (UTC) as a float."""
    return _time.time() + _offset_s


def _set_device_time(unix_seconds: float) -> None:
    """Set the device clock to ``unix_seconds`` (UTC) from now on; the PC's is untouched."""
    global _offset_s
    _offset_s = float(unix_seconds) - _time.time()


def time() -> int:
    """Seconds since 1970-01-01 UTC (the device's RTC seconds)."""
    return int(_device_time())


def _initial_zone() -> int:
    """The identity's time zone (8 by default)."""
    try:
        import _devstate

        return int(_devstate.identity()["timezone"])
    except (ImportError, ValueError):
        return 8


_zone_hours = _initial_zone()


def getTimeZone() -> int:
    """The time zone in whole hours east of UTC."""
    return _zone_hours


def setTimeZone(offset: int) -> int:
    """Set the time zone (hours east of UTC, -12..12); returns 0."""
    global _zone_hours
    offset = _int_arg(offset)
    if not -12 <= offset <= 12:
        raise ValueError("offset must be in [-12, 12]")
    _zone_hours = offset
    return 0


def localtime(secs: Any = None) -> tuple[int, int, int, int, int, int, int, int]:
    """``(year, month, mday, hour, minute, second, weekday, yearday)`` for ``secs`` or now."""
    seconds = time() if secs is None else _int_arg(secs)
    t = _time.gmtime(seconds + _zone_hours * 3600)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


def mktime(date: Sequence[int]) -> int:
    """Seconds since 1970 for a ``localtime`` tuple of 8 (or CPython's 9) items."""
    if not isinstance(date, (tuple, list)):
        raise TypeError(f"object '{type(date).__name__}' isn't a tuple or list")
    if not 8 <= len(date) <= 9:
        raise TypeError(f"mktime needs a tuple of length 8 or 9 ({len(date)} given)")
    y, mo, d, h, mi, s = (_int_arg(v) for v in date[:6])
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - _zone_hours * 3600
