"""_thread: the device's thread, lock and semaphore API, and stop_thread that works."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
import usocket
from usocket.runner import device_environment

#: Generous bound for a thread to start or end; never reached when things work.
BOUND_S = 5.0


@pytest.fixture
def _thread() -> Iterator[ModuleType]:
    with device_environment() as module:
        yield module
        module._stop_all_threads()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until true; fail after BOUND_S (a liveness bound, not a timing)."""
    deadline = time.monotonic() + BOUND_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


def test_start_new_thread_returns_the_threads_ident(_thread: ModuleType) -> None:
    """The returned id is what get_ident() says inside the thread; args and kwargs arrive."""
    seen: list = []
    done = _thread.allocate_lock()
    done.acquire()

    def work(a, b, c=None):
        seen.append((_thread.get_ident(), a, b, c))
        done.release()

    tid = _thread.start_new_thread(work, (1, [2]), {"c": 3})
    assert done.acquire(1, BOUND_S)
    assert seen == [(tid, 1, [2], 3)]
    assert tid != _thread.get_ident()


@pytest.mark.parametrize("args", [None, 5, "ab", {"a": 1}])
def test_start_new_thread_needs_a_tuple_or_list(_thread: ModuleType, args: object) -> None:
    """The args must be a tuple or list, as on the device (a list is accepted there too)."""
    with pytest.raises(TypeError, match="isn't a tuple or list"):
        _thread.start_new_thread(print, args)


def test_lock_semantics(_thread: ModuleType) -> None:
    """acquire/locked/release, non-blocking acquire, release when unlocked, with-block."""
    lock = _thread.allocate_lock()
    assert lock.locked() is False
    assert lock.acquire() is True
    assert lock.locked() is True
    assert lock.acquire(0) is False
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_lock_hands_over_between_threads(_thread: ModuleType) -> None:
    """A thread blocked in acquire() gets the lock when another thread releases it."""
    lock = _thread.allocate_lock()
    got: list = []
    lock.acquire()
    _thread.start_new_thread(lambda: got.append(lock.acquire()), ())
    lock.release()
    wait_until(lambda: got == [True], "second thread to take the lock")


def test_deleted_lock_cannot_be_acquired(_thread: ModuleType) -> None:
    """delete_lock makes acquire return False; a non-lock is a TypeError."""
    lock = _thread.allocate_lock()
    _thread.delete_lock(lock)
    assert lock.acquire() is False
    with pytest.raises(TypeError, match="isn't a lock"):
        _thread.delete_lock(threading.Lock())


def test_semphore_counts(_thread: ModuleType) -> None:
    """allocate_semphore(n) starts full; acquire/release move curCnt within [0, n]."""
    sem = _thread.allocate_semphore(2)
    assert sem.getCnt() == (2, 2)
    assert sem.acquire() is True
    assert sem.acquire() is True
    assert sem.getCnt() == (2, 0)
    assert sem.getCnt().maxCnt == 2
    assert sem.acquire(0) is False  # timeout in milliseconds
    assert sem.acquire(20) is False
    sem.release()
    assert sem.getCnt() == (2, 1)
    sem.release()
    with pytest.raises(RuntimeError):
        sem.release()  # above the initial count
    assert _thread.allocate_semaphore is _thread.allocate_semphore


def test_semphore_wakes_a_waiting_thread(_thread: ModuleType) -> None:
    """A thread waiting in acquire() gets the count another thread releases."""
    sem = _thread.allocate_semphore(1)
    sem.acquire()
    got: list = []
    tid = _thread.start_new_thread(lambda: got.append(sem.acquire()), ())
    wait_until(lambda: _thread.threadIsRunning(tid), "waiter to start")
    sem.release()
    wait_until(lambda: got == [True], "waiter to get the count")
    assert sem.getCnt() == (1, 0)


def test_deleted_semphore(_thread: ModuleType) -> None:
    """delete_semphore wakes waiters with False; a non-semaphore is a TypeError."""
    sem = _thread.allocate_semphore(1)
    sem.acquire()
    got: list = []
    _thread.start_new_thread(lambda: got.append(sem.acquire()), ())
    _thread.delete_semphore(sem)
    wait_until(lambda: got == [False], "waiter to see the deletion")
    with pytest.raises(TypeError, match="isn't a semphore"):
        _thread.delete_semphore(object())


def test_stack_size_in_words(_thread: ModuleType) -> None:
    """stack_size() reads words; setting returns 0, or -1 below 2048 words (8192 bytes)."""
    assert _thread.stack_size() == 2048
    assert _thread.stack_size(4096) == 0
    assert _thread.stack_size() == 4096
    assert _thread.stack_size(100) == -1
    assert _thread.stack_size() == 4096
    assert _thread.get_heap_size() > 0


def test_uncaught_exception_ends_only_that_thread(
    _thread: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """The device prints 'Unhandled exception in thread started by' and a traceback."""

    def boom():
        raise KeyError("bad")

    tid = _thread.start_new_thread(boom, ())
    wait_until(lambda: not _thread.threadIsRunning(tid), "failing thread to end")
    err = capsys.readouterr().err
    assert err.startswith("Unhandled exception in thread started by <function ")
    assert "Traceback (most recent call last):" in err
    assert err.rstrip().endswith("KeyError: 'bad'")
    assert "_device/_thread.py" not in err


def test_thread_exit_and_systemexit_are_silent(
    _thread: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """_thread.exit() ends the calling thread without any output."""
    tid = _thread.start_new_thread(_thread.exit, ())
    wait_until(lambda: not _thread.threadIsRunning(tid), "thread to exit")
    assert capsys.readouterr().err == ""


def _stop_and_wait(_thread: ModuleType, tid: int) -> None:
    assert _thread.threadIsRunning(tid)
    assert _thread.stop_thread(tid) == 0
    wait_until(lambda: not _thread.threadIsRunning(tid), "stopped thread to end")


def test_stop_thread_ends_a_thread_running_python(_thread: ModuleType) -> None:
    """A busy Python loop is ended by the asynchronous SystemExit."""
    counter = [0]

    def spin():
        while True:
            counter[0] += 1

    tid = _thread.start_new_thread(spin, ())
    wait_until(lambda: counter[0] > 0, "spinner to start")
    _stop_and_wait(_thread, tid)


def _wait_in_line(tid: int, code_name: str) -> None:
    """Wait until thread ``tid`` is inside function ``code_name`` (its innermost frame)."""

    def inside() -> bool:
        frame = sys._current_frames().get(tid)
        while frame is not None:
            if frame.f_code.co_name == code_name:
                return True
            frame = frame.f_back
        return False

    wait_until(inside, f"thread to reach {code_name}")


@pytest.mark.parametrize("blocker", ["sleep", "lock", "semphore"])
def test_stop_thread_ends_a_thread_blocked_in_the_companions(
    _thread: ModuleType, blocker: str
) -> None:
    """utime.sleep, lock.acquire and semphore.acquire are stoppable waits."""
    import utime

    lock = _thread.allocate_lock()
    lock.acquire()
    sem = _thread.allocate_semphore(1)
    sem.acquire()

    def blocked():
        if blocker == "sleep":
            utime.sleep(60)
        elif blocker == "lock":
            lock.acquire()
        else:
            sem.acquire()

    tid = _thread.start_new_thread(blocked, ())
    _wait_in_line(tid, "blocked")
    _stop_and_wait(_thread, tid)


def test_stop_thread_ends_a_thread_blocked_in_usocket_recv(_thread: ModuleType) -> None:
    """A reader blocked in usocket recv() with no data ends promptly, by SystemExit."""
    outcome: list = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        sock.connect(listener.getsockname())
        peer, _ = listener.accept()

        def reader():
            outcome.append("in recv")
            try:
                outcome.append(sock.recv(10))
            except BaseException as exc:
                outcome.append(type(exc).__name__)
                raise

        try:
            tid = _thread.start_new_thread(reader, ())
            wait_until(lambda: outcome == ["in recv"], "reader to call recv")
            _wait_in_line(tid, "reader")
            _stop_and_wait(_thread, tid)
        finally:
            sock.close()
            peer.close()
    assert outcome == ["in recv", "SystemExit"]


def test_stop_thread_refuses_the_main_and_unknown_threads(_thread: ModuleType) -> None:
    """The main thread cannot be stopped; an unknown id is a ValueError too."""
    with pytest.raises(ValueError, match="main thread"):
        _thread.stop_thread(threading.main_thread().ident)
    with pytest.raises(ValueError, match="main thread"):
        _thread.stop_thread(0)  # 0 = the calling thread, here the main thread
    with pytest.raises(ValueError, match="No thread with thread id 12345"):
        _thread.stop_thread(12345)


def test_stop_thread_zero_ends_the_calling_thread(_thread: ModuleType) -> None:
    """stop_thread(0) from inside a thread ends that thread; code after it never runs."""
    after: list = []

    def suicide():
        _thread.stop_thread(0)
        after.append("still here")

    tid = _thread.start_new_thread(suicide, ())
    wait_until(lambda: not _thread.threadIsRunning(tid), "thread to stop itself")
    assert after == []


def test_thread_is_running_tracks_the_thread(_thread: ModuleType) -> None:
    """threadIsRunning is True while the thread runs and False after; main counts."""
    release = _thread.allocate_lock()
    release.acquire()
    tid = _thread.start_new_thread(lambda: release.acquire(), ())
    assert _thread.threadIsRunning(tid)
    assert _thread.threadIsRunning(threading.main_thread().ident)
    release.release()
    wait_until(lambda: not _thread.threadIsRunning(tid), "thread to end")
