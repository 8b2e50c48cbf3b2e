"""MicroPython's ``micropython`` module for device scripts run by ``usocket-run``.

``const(x)`` returns ``x``; ``opt_level([n])`` reads or sets a number (no effect on the PC);
``mem_info([verbose])`` prints the simulated heap that ``gc.mem_free()`` reports;
``stack_use()``, ``qstr_info()``, ``alloc_emergency_exception_buf(n)``,
``heap_lock()``/``heap_unlock()`` (a nesting counter), ``kbd_intr(c)`` and
``schedule(fn, arg)`` (runs ``fn(arg)`` soon in the "micropython-schedule" thread). The
``native``, ``viper`` and ``asm_thumb`` decorators return the function unchanged.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TypeVar

import _devmem
import _devstate

_F = TypeVar("_F", bound=Callable[..., Any])
_opt_level = 0
_heap_locks = 0
_scheduled = _devstate.CallbackThread("micropython-schedule")


def const(value: Any) -> Any:
    """The value itself (the compiler's constant marker)."""
    return value


def opt_level(level: int | None = None) -> int | None:
    """The optimisation level (no argument) or set it (returns None)."""
    global _opt_level
    if level is None:
        return _opt_level
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"can't convert {type(level).__name__} to int")
    _opt_level = level
    return None


def mem_info(verbose: Any = None) -> None:
    """Print stack and heap use (the simulated heap)."""
    total = _devmem.heap_size()
    used = _devmem.mem_alloc()
    print(f"stack: {stack_use()} out of 16384")
    print(f"GC: total: {total}, used: {used}, free: {total - used}")
    blocks = used // 16
    print(
        f" No. of 1-blocks: {blocks // 2}, 2-blocks: {blocks // 8}, "
        f"max blk sz: {min(used, 4096) // 16}, max free sz: {(total - used) // 16}"
    )


def stack_use() -> int:
    """Bytes of stack in use (an estimate from the Python call depth)."""
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return min(16384, 64 * depth)


def qstr_info(verbose: Any = None) -> None:
    """Print interned-string statistics (nothing meaningful on the PC)."""
    print("qstr pool: n_pool=1, n_qstr=0, n_str_data_bytes=0, n_total_bytes=0")


def alloc_emergency_exception_buf(size: int) -> None:
    """Accepted and ignored."""


def heap_lock() -> int:
    """Count one heap lock (allocation still works on the PC); the new depth."""
    global _heap_locks
    _heap_locks += 1
    return _heap_locks


def heap_unlock() -> int:
    """Undo one ``heap_lock``; the new depth."""
    global _heap_locks
    _heap_locks = max(0, _heap_locks - 1)
    return _heap_locks


def kbd_intr(char: int) -> None:
    """Accepted and ignored (Ctrl-C handling is the PC's)."""


def schedule(fn: Callable[[Any], Any], arg: Any) -> None:
    """Run ``fn(arg)`` soon, in the schedule thread."""
    if not callable(fn):
        raise TypeError("function must be callable")
    _scheduled.submit(fn, arg)


def native(fn: _F) -> _F:
    """No-op decorator (the device compiles to machine code)."""
    return fn


viper = asm_thumb = native
