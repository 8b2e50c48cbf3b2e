"""QuecPython's ``_thread`` for device scripts run by ``usocket-run``.

The runner installs this module as ``sys.modules['_thread']`` for the run only. It is a
superset of CPython's ``_thread``: every name of CPython's module is re-exported (CPython's
``threading``, imported before the run, keeps using the originals), and the device's
functions replace or add to them:

* ``start_new_thread(function, args[, name | kwargs | auto_resume[, auto_resume]])`` ->
  thread id. ``args`` must be a tuple or list (``()`` when there are none). An uncaught
  exception prints ``Unhandled exception in thread started by <function>`` and a traceback
  on stderr and ends only that thread; ``SystemExit`` ends it silently.
* ``get_ident()``, ``exit()``, ``get_heap_size()``, ``threadIsRunning(tid)``.
* ``stack_size([words])``: the device counts 32-bit words; with an argument it returns 0, or
  -1 below 2048 words (8192 bytes). Recorded only: PC threads keep CPython's stack size.
* ``stop_thread(tid)`` (0 = the calling thread) ends a thread promptly and returns 0 once
  it has ended. The thread is marked first: a usocket call it is blocked in returns within
  about 100 ms raising ``SystemExit`` (the extension's stop mark), and so do the waits of
  the companion modules (``utime.sleep*``, ``uselect`` polls, ``checkNet``, the locks and
  semaphores here), which run in short slices. A thread still alive after 0.15 s (pure
  Python code) gets ``SystemExit`` raised asynchronously. A thread blocked in some other C
  call ends when that call returns. Stopping the main thread or an unknown id raises
  ``ValueError``, as on the device.
* ``allocate_lock()`` / ``delete_lock(lock)``: ``acquire([waitflag])`` -> bool, ``release()``
  (``RuntimeError`` when not locked), ``locked()``, context manager; a deleted lock's
  ``acquire`` returns False.
* ``allocate_semphore(n)`` / ``delete_semphore(s)`` (the device's spelling; ``semaphore``
  aliases exist too): ``acquire([timeout_ms])`` -> bool, ``release()`` (``RuntimeError``
  above the initial count), ``getCnt()`` -> ``(maxCnt, curCnt)``.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import sys
import threading
import time
import traceback
from typing import Any

# CPython's own _thread: the one installed now, or the one a previous device copy kept.
_cpython: Any = sys.modules["_thread"]
_cpython = getattr(_cpython, "_cpython", _cpython)

for _name in dir(_cpython):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_cpython, _name)
del _name

#: Marks this module as the device ``_thread`` (see ``_cpython`` above).
_USOCKET_DEVICE = True

#: Longest single wait here: a thread marked by ``stop_thread`` notices within one slice.
_SLICE_S = 0.05
#: The device's default and minimum thread stack, in 32-bit words.
_DEFAULT_STACK_WORDS = 2048
_MIN_STACK_WORDS = 2048

_MAIN_IDENT: int = threading.main_thread().ident or 0
_stack_words = _DEFAULT_STACK_WORDS

get_ident = _cpython.get_ident


class _Record:
    """Book-keeping for one thread started through this module."""

    __slots__ = ("args", "auto_resume", "done", "func", "ident", "kwargs", "started")

    def __init__(self, func: Any, args: tuple, kwargs: dict[str, Any], auto_resume: bool):
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.auto_resume = auto_resume
        self.ident: int | None = None
        self.started = False
        self.done = False

    def alive(self) -> bool:
        # A thread that never reached its finally (a second stop landed there) is gone
        # when it has no frame any more.
        if self.done:
            return False
        return not self.started or self.ident in sys._current_frames()


#: Threads asked to stop; see :func:`_check_stop`.
_stop_marks: set[int] = set()

_records_lock = _cpython.allocate_lock()
_records: list[_Record] = []


def _live_records() -> list[_Record]:
    with _records_lock:
        _records[:] = [r for r in _records if r.alive()]
        return list(_records)


def _usocket_ext() -> Any:
    """The usocket extension if a script imported it (its blocking calls can be stopped)."""
    return sys.modules.get("usocket._usocket")


def _report(func: Any, exc: BaseException) -> None:
    """Print an uncaught thread exception the way the device does."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    # If stderr is gone (interpreter shutdown) there is nobody left to tell.
    with contextlib.suppress(Exception):
        sys.stderr.write(f"Unhandled exception in thread started by {func!r}\n")
        traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
        sys.stderr.flush()


def _finish(record: _Record) -> None:
    record.done = True
    if record.ident is not None:
        _stop_marks.discard(record.ident)
        ext = _usocket_ext()
        if ext is not None:
            ext._clear_thread_stop(record.ident)


def _bootstrap(record: _Record) -> None:
    record.ident = get_ident()
    record.started = True
    try:
        try:
            while True:
                try:
                    record.func(*record.args, **record.kwargs)
                    break
                except SystemExit:
                    break
                except BaseException as exc:  # noqa: BLE001 - the device prints and goes on
                    _report(record.func, exc)
                    if not record.auto_resume:
                        break
                    print("\nThe thread will automatically resumed after 500 milliseconds.")
                    time.sleep(0.5)
        except SystemExit:
            pass  # a stop that landed while an exception was being reported
    finally:
        for _ in range(3):
            try:
                _finish(record)
                break
            except SystemExit:
                continue


def start_new_thread(function: Any, args: Any, *extra: Any) -> int:
    """Start ``function(*args)`` in a new thread and return its id (device semantics)."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"object '{type(args).__name__}' isn't a tuple or list")
    if len(extra) > 2:
        raise TypeError(f"function takes from 2 to 4 positional arguments, {2 + len(extra)} given")
    kwargs: dict[str, Any] = {}
    auto_resume = False
    if extra and not isinstance(extra[0], str):
        if isinstance(extra[0], dict):
            kwargs = dict(extra[0])
        elif isinstance(extra[0], bool):
            auto_resume = extra[0]
        else:
            raise TypeError("expecting a dict for keyword args or a bool for thread auto resume")
    if len(extra) == 2:
        if not isinstance(extra[1], bool):
            raise TypeError("expecting a bool for thread auto resume flag")
        auto_resume = extra[1]
    record = _Record(function, tuple(args), kwargs, auto_resume)
    with _records_lock:
        _records.append(record)
    try:
        ident = _cpython.start_new_thread(_bootstrap, (record,))
    except BaseException:
        with _records_lock:
            _records.remove(record)
        raise
    record.ident = ident
    return ident


def exit() -> None:
    """End the calling thread (raises ``SystemExit``)."""
    raise SystemExit


def stack_size(*words: int) -> int:
    """Without argument: the stack size for new threads in words; with one: set it (0/-1)."""
    global _stack_words
    if len(words) > 1:
        raise TypeError(f"function takes 0 or 1 arguments, {len(words)} given")
    if not words:
        return _stack_words
    value = words[0]
    if not isinstance(value, int):
        raise TypeError(f"can't convert {type(value).__name__} to int")
    if value < _MIN_STACK_WORDS:
        return -1
    _stack_words = value
    return 0


def get_heap_size() -> int:
    """Free memory in bytes (the PC's available memory stands in for the device heap)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 20


def threadIsRunning(thread_id: int) -> bool:
    """True while the thread with this id (or the main thread) runs."""
    if thread_id == _MAIN_IDENT:
        return threading.main_thread().is_alive()
    return any(r.ident == thread_id for r in _live_records())


def _check_stop() -> None:
    """Raise ``SystemExit`` in a thread that ``stop_thread`` marked.

    Every wait of the companion modules (sleeps, locks, semaphores, polls) calls this
    between its short slices, so a marked thread ends there without an asynchronous
    exception.
    """
    if _stop_marks and get_ident() in _stop_marks:
        raise SystemExit


def _force(ident: int) -> None:
    """Raise ``SystemExit`` asynchronously in ``ident`` (lands at its next bytecode)."""
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    modified = set_async(ctypes.c_ulong(ident), ctypes.py_object(SystemExit))
    if modified > 1:  # cannot happen for a valid id; undo rather than hit other threads
        set_async(ctypes.c_ulong(ident), None)
        raise SystemError("PyThreadState_SetAsyncExc affected several threads")


def _stop(idents: list[int], cooperative_s: float = 0.15, grace_s: float = 0.5) -> None:
    """Stop threads: marks first, the asynchronous exception only for the ones left.

    A thread blocked in usocket (the extension's stop mark) or in a companion wait (our
    mark) ends with one ``SystemExit`` within a slice. Only a thread still alive after
    ``cooperative_s`` (running pure Python, or in another C call) gets the asynchronous
    ``SystemExit``; doing both at once would raise a second ``SystemExit`` inside the
    first one's ``except``/``finally`` handlers.
    """
    ext = _usocket_ext()
    for ident in idents:
        _stop_marks.add(ident)
        if ext is not None:
            ext._request_thread_stop(ident)

    def running() -> list[_Record]:
        return [r for r in _live_records() if r.ident in idents]

    deadline = time.monotonic() + cooperative_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.005)
    for record in running():
        if record.ident is not None:
            _force(record.ident)
    deadline = time.monotonic() + grace_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.005)


def stop_thread(thread_id: int) -> int:
    """End a thread started with ``start_new_thread`` (0: the calling thread); returns 0.

    Returns once the thread has ended, or after about 0.65 s if it is stuck in a foreign
    C call (it then ends when that call returns).
    """
    if not isinstance(thread_id, int):
        raise TypeError(f"can't convert {type(thread_id).__name__} to int")
    current = get_ident()
    ident = current if thread_id == 0 else thread_id
    if ident == _MAIN_IDENT:
        raise ValueError("Deleting the main thread is not allowed!")
    if not any(r.ident == ident for r in _live_records()):
        raise ValueError(f"No thread with thread id {ident} was found!")
    if ident == current:
        raise SystemExit
    _stop([ident])
    return 0


# --------------------------------------------------------------------------- locks


class _DeviceLock:
    """The device's ``lock`` object (a CPython lock waited on in stoppable slices)."""

    __slots__ = ("_deleted", "_lock")

    def __init__(self) -> None:
        self._lock = _cpython.allocate_lock()
        self._deleted = False

    def acquire(self, waitflag: int = 1, timeout: float = -1) -> bool:
        """Take the lock; blocks unless ``waitflag`` is 0. False if not taken or deleted."""
        if self._deleted:
            return False
        if not waitflag:
            return self._lock.acquire(False)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while True:
            _check_stop()
            step = _SLICE_S
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            if self._lock.acquire(True, step):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def release(self) -> None:
        """Release the lock; ``RuntimeError`` if it is not locked."""
        if not self._lock.locked():
            raise RuntimeError
        self._lock.release()

    def locked(self) -> bool:
        """True while some thread holds the lock."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<lock object at 0x{id(self):x}>"


def allocate_lock() -> _DeviceLock:
    """Create a new lock (unlocked)."""
    return _DeviceLock()


def delete_lock(lock: Any) -> None:
    """Delete a lock made by ``allocate_lock``; ``TypeError`` for anything else."""
    if not isinstance(lock, _DeviceLock):
        raise TypeError("The argument isn't a lock.")
    lock._deleted = True


_SemCount = collections.namedtuple("_SemCount", ["maxCnt", "curCnt"])


class _Semphore:
    """The device's counting semaphore; starts full at its maximum count."""

    def __init__(self, maxcount: int) -> None:
        self._cond = threading.Condition(_cpython.allocate_lock())
        self._max = maxcount
        self._count = maxcount
        self._deleted = False

    def acquire(self, timeout_ms: int = -1) -> bool:
        """Take one count, waiting up to ``timeout_ms`` (forever when negative or absent)."""
        if not isinstance(timeout_ms, int):
            raise TypeError(f"can't convert {type(timeout_ms).__name__} to int")
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        with self._cond:
            while not self._deleted and self._count == 0:
                _check_stop()
                step = _SLICE_S
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    step = min(step, left)
                self._cond.wait(step)
            if self._deleted:
                return False
            self._count -= 1
            return True

    def release(self) -> None:
        """Give one count back; ``RuntimeError`` if already full or deleted."""
        with self._cond:
            if self._deleted or self._count >= self._max:
                raise RuntimeError
            self._count += 1
            self._cond.notify()

    def getCnt(self) -> _SemCount:
        """``(maxCnt, curCnt)``: the maximum and the current count."""
        with self._cond:
            return _SemCount(self._max, self._count)

    def __repr__(self) -> str:
        return f"<semphore object at 0x{id(self):x}>"


def allocate_semphore(initcount: int) -> _Semphore:
    """Create a semaphore whose initial and maximum count is ``initcount``."""
    if not isinstance(initcount, int):
        raise TypeError(f"can't convert {type(initcount).__name__} to int")
    if initcount < 0:
        raise ValueError("initcount must be >= 0")
    return _Semphore(initcount)


def delete_semphore(semphore: Any) -> None:
    """Delete a semaphore; its ``acquire`` then returns False."""
    if not isinstance(semphore, _Semphore):
        raise TypeError("The argument isn't a semphore.")
    with semphore._cond:
        semphore._deleted = True
        semphore._count = 0
        semphore._max = 0
        semphore._cond.notify_all()


allocate_semaphore = allocate_semphore
delete_semaphore = delete_semphore


# --------------------------------------------------------------------------- runner hooks


def _wait_for_threads() -> None:
    """Block until every thread started here has ended (the runner's end of a run)."""
    while _live_records():
        time.sleep(_SLICE_S)


def _stop_all_threads() -> None:
    """Stop every live thread started here (the runner's end of an aborted run)."""
    me = get_ident()
    idents = [r.ident for r in _live_records() if r.ident is not None and r.ident != me]
    if idents:
        _stop(idents)
