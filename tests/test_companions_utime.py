"""utime: the device's wrap-around tick arithmetic, sleeps, and calendar functions."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from usocket.runner import DEVICE_DIR, device_environment

PERIOD = 1 << 30
HALF = PERIOD // 2


@pytest.fixture
def utime() -> Iterator[ModuleType]:
    with device_environment():
        module = importlib.import_module("utime")
        saved_zone = module.getTimeZone()
        yield module
        module.setTimeZone(saved_zone)


def test_ticks_are_inside_the_device_period(utime: ModuleType) -> None:
    """ticks_ms/us/cpu are ints in [0, 2**30)."""
    for ticks in (utime.ticks_ms(), utime.ticks_us(), utime.ticks_cpu()):
        assert isinstance(ticks, int)
        assert 0 <= ticks < PERIOD


@pytest.mark.parametrize(
    ("new", "old", "diff"),
    [
        (5, PERIOD - 5, 10),  # counter wrapped between the readings
        (PERIOD - 5, 5, -10),
        (HALF - 1, 0, HALF - 1),  # largest positive interval
        (HALF, 0, -HALF),  # one more wraps to the most negative
        (0, 0, 0),
        (PERIOD - 1, 0, -1),
    ],
)
def test_ticks_diff_is_signed_and_wrap_aware(
    utime: ModuleType, new: int, old: int, diff: int
) -> None:
    """ticks_diff(new, old) is (new - old) folded into [-2**29, 2**29)."""
    assert utime.ticks_diff(new, old) == diff


@pytest.mark.parametrize(
    ("ticks", "delta", "result"),
    [(PERIOD - 1, 1, 0), (0, -1, PERIOD - 1), (100, 50, 150), (10, -PERIOD, 10)],
)
def test_ticks_add_wraps(utime: ModuleType, ticks: int, delta: int, result: int) -> None:
    """ticks_add wraps at 2**30 in both directions."""
    assert utime.ticks_add(ticks, delta) == result


def _load_utime_alone() -> ModuleType:
    """utime.py loaded under a private name (it needs nothing but the stdlib)."""
    spec = importlib.util.spec_from_file_location(
        "_utime_under_test", os.path.join(DEVICE_DIR, "utime.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_UTIME = _load_utime_alone()


@settings(deadline=None)
@given(st.integers(0, PERIOD - 1), st.integers(-HALF, HALF - 1))
def test_ticks_add_and_diff_are_inverse(ticks: int, delta: int) -> None:
    """For any reading and any interval in range, diff(add(t, d), t) == d."""
    later = _UTIME.ticks_add(ticks, delta)
    assert 0 <= later < PERIOD
    assert _UTIME.ticks_diff(later, ticks) == delta


def test_sleep_ms_waits_at_least_that_long(utime: ModuleType) -> None:
    """A sleep never returns early, measured with the device's own tick arithmetic."""
    start = utime.ticks_ms()
    utime.sleep_ms(30)
    utime.sleep(0.02)
    utime.sleep_us(10_000)
    assert utime.ticks_diff(utime.ticks_ms(), start) >= 60


@pytest.mark.parametrize("call", ["sleep_ms", "sleep_us"])
def test_int_sleeps_reject_floats(utime: ModuleType, call: str) -> None:
    """sleep_ms/sleep_us take ints only, as mp_obj_get_int does."""
    with pytest.raises(TypeError):
        getattr(utime, call)(1.5)


def test_sleep_accepts_int_and_float_and_ignores_negative(utime: ModuleType) -> None:
    """sleep takes int or float seconds; zero and negative return at once."""
    utime.sleep(0)
    utime.sleep(-1)
    utime.sleep(0.001)
    with pytest.raises(TypeError):
        utime.sleep("1")


def test_ticks_diff_rejects_floats(utime: ModuleType) -> None:
    """Tick values are ints; a float is a TypeError."""
    with pytest.raises(TypeError):
        utime.ticks_diff(1.0, 0)


def test_localtime_is_an_8_tuple_in_the_current_zone(utime: ModuleType) -> None:
    """localtime(secs) -> (y, mo, d, h, mi, s, wday Monday=0, yday) shifted by the zone."""
    assert utime.setTimeZone(0) == 0
    assert utime.localtime(0) == (1970, 1, 1, 0, 0, 0, 3, 1)
    utime.setTimeZone(8)
    assert utime.getTimeZone() == 8
    assert utime.localtime(0) == (1970, 1, 1, 8, 0, 0, 3, 1)
    assert utime.localtime(951782400 - 8 * 3600) == (2000, 2, 29, 0, 0, 0, 1, 60)


def test_mktime_inverts_localtime(utime: ModuleType) -> None:
    """mktime(localtime(t)) == t in any zone; 8 or 9 items accepted."""
    for zone in (-5, 0, 8):
        utime.setTimeZone(zone)
        for t in (0, 1_700_000_000, 951782399):
            assert utime.mktime(utime.localtime(t)) == t
            assert utime.mktime((*utime.localtime(t), -1)) == t


def test_mktime_and_settimezone_reject_bad_input(utime: ModuleType) -> None:
    """Wrong tuple length is a TypeError; a zone outside -12..12 a ValueError."""
    with pytest.raises(TypeError, match="length 8 or 9"):
        utime.mktime((2024, 1, 1))
    with pytest.raises(ValueError):
        utime.setTimeZone(13)
    with pytest.raises(TypeError):
        utime.setTimeZone(1.5)


def test_time_is_whole_seconds_and_matches_localtime(utime: ModuleType) -> None:
    """time() is an int; localtime() without argument describes that same time."""
    utime.setTimeZone(0)
    now = utime.time()
    assert isinstance(now, int)
    assert utime.mktime(utime.localtime()) >= now
