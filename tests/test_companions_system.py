"""The device's system and MicroPython modules, imported in this process through the
runner's device environment: net/sim/modem shapes and bad input, machine.Timer, osTimer,
queue, ql_fs, ustruct, ure, ucollections, uhashlib, uzlib, micropython and gc."""

from __future__ import annotations

import gc
import importlib
import io
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from usocket.runner import DEVICE_DIR, device_environment


@pytest.fixture
def dev() -> Iterator[ModuleType]:
    """A namespace: dev.net, dev.sim, ... imported inside the device environment."""
    with device_environment():
        names = [
            "net",
            "sim",
            "modem",
            "machine",
            "osTimer",
            "ql_fs",
            "ustruct",
            "ure",
            "ucollections",
            "uhashlib",
            "uzlib",
            "micropython",
            "_devstate",
            "ubinascii",
            "utime",
        ]
        space = ModuleType("dev")
        for name in names:
            setattr(space, name, importlib.import_module(name))
        yield space
        space._devstate.set_modem_fun(1)


def wait_until(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_builtin_companions_come_from_the_device_folder(dev: ModuleType) -> None:
    """net, sim, machine ... are the runner's files; osTimer is the class itself."""
    assert dev.net.__file__.startswith(DEVICE_DIR)
    assert isinstance(dev.osTimer, type)
    assert dev.osTimer.__name__ == "osTimer"


def test_net_shapes_and_return_codes(dev: ModuleType) -> None:
    """getState is a tuple of two lists; failures are -1; bad simId ValueError."""
    state = dev.net.getState()
    assert isinstance(state, tuple) and all(isinstance(part, list) for part in state)
    assert state[1][0] == 1
    assert dev.net.getSignal(1)[1] == [-51, -76, -5, 255, 18]
    assert dev.net.getConfig() == (5, False)
    assert dev.net.setConfig(40) == -1
    assert dev.net.getNetMode() == (0, "460", "01", 7)
    assert dev.net.getCi() == [253373185] and dev.net.getServingLac() == 20941
    assert dev.net.getMcc() == [1120] and dev.net.getServingMnc() == 1
    assert dev.net.getApn(0) == "3gnet"
    assert dev.net.setApn("cmiot", 0) == 0 and dev.net.getApn(0) == "cmiot"
    assert dev.net.setApn(2, 1, "private.apn", "u", "p", 1, 0) == 0
    assert dev.net.getApn(2, 0) == (1, "private.apn", "u", "p", 1)
    nitz = dev.net.nitzTime()
    assert isinstance(nitz[0], str) and abs(nitz[1] - dev.utime.time()) <= 1
    with pytest.raises(ValueError, match="simId"):
        dev.net.getState(2)
    with pytest.raises(ValueError, match="setApn"):
        dev.net.setApn("a", 0, 1)
    with pytest.raises(ValueError, match="getApn"):
        dev.net.getApn()
    with pytest.raises(TypeError):
        dev.net.setModemFun("1")
    assert dev.net.setModemFun(7) == -1
    assert dev.net.setModemFun(0) == 0
    assert dev.net.operatorName() == -1
    assert dev.net.getCi() == -1 and dev.net.getServingCi() == -1
    assert dev.net.getNetMode() == -1 and dev.net.nitzTime() == -1
    assert dev.net.getSignal() == ([99, 99, 255, 255], [99, 255, 255, 255])


def test_sim_and_modem(dev: ModuleType) -> None:
    """Identity strings, -1 for the phone number and PINs, ValueError for simId 2."""
    assert dev.sim.getStatus() == 1
    assert dev.sim.getPhoneNumber() == -1
    assert dev.sim.verifyPin("1234") == -1
    assert dev.modem.getDevProductId() == "Quectel"
    assert len(dev.modem.getDevImei()) == 15
    with pytest.raises(ValueError):
        dev.sim.getImsi(2)
    with pytest.raises(ValueError):
        dev.modem.getDevImei(5)


def test_machine_timer_periodic_and_one_shot(dev: ModuleType) -> None:
    """Callbacks get the Timer, in the callback thread; keyword-only start; stop."""
    timer_cls = dev.machine.Timer
    ticks: list[tuple[object, str]] = []
    periodic = timer_cls(timer_cls.Timer1)
    callback = lambda t: ticks.append((t, threading.current_thread().name))
    assert periodic.start(period=20, mode=timer_cls.PERIODIC, callback=callback) == 0
    wait_until(lambda: len(ticks) >= 3, "three periodic ticks")
    assert periodic.stop() == 0
    assert all(t is periodic and name == "machine-timer" for t, name in ticks)
    once: list[int] = []
    one_shot = timer_cls(timer_cls.Timer2)
    one_shot.start(period=10, mode=timer_cls.ONE_SHOT, callback=lambda t: once.append(1))
    wait_until(lambda: once == [1], "the one-shot tick")
    time.sleep(0.1)
    assert once == [1]
    assert timer_cls(timer_cls.Timer3).stop() == -1
    with pytest.raises(TypeError):
        periodic.start(20)
    with pytest.raises(ValueError):
        timer_cls(4)


def test_ostimer_start_stop_delete(dev: ModuleType) -> None:
    """start(ms, cyclic, cb): cb(None) repeatedly, stop ends it; after delete -1. A failing
    callback does not stop the next one."""
    calls: list[object] = []

    def callback(arg: object) -> None:
        calls.append(arg)
        if len(calls) == 1:
            raise RuntimeError("first callback fails")

    timer = dev.osTimer()
    assert timer.start(10, 1, callback) == 0
    wait_until(lambda: len(calls) >= 3, "three osTimer callbacks")
    assert timer.stop() == 0
    assert set(calls) == {None}
    assert timer.delete_timer() == 0 and timer.delete_timer() == 0
    assert timer.start(10, 0, callback) == -1 and timer.stop() == -1
    with pytest.raises(TypeError):
        dev.osTimer().start("10", 0, callback)


def test_device_queue_blocks_in_get_and_never_in_put() -> None:
    """Queue(maxsize): put returns False over the size, get waits for a producer."""
    with device_environment():
        spec = importlib.util.spec_from_file_location("device_queue", f"{DEVICE_DIR}/queue.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    q = module.Queue(1)
    assert [q.put(1), q.put(2), q.put(3)] == [True, True, False]
    assert [q.get(), q.get(), q.empty()] == [1, 2, True]
    threading.Timer(0.05, lambda: q.put("late")).start()
    assert q.get() == "late"
    assert not hasattr(module, "Empty") and not hasattr(q, "qsize")


def test_ql_fs_files(dev: ModuleType, tmp_path: Path) -> None:
    """touch/read_json/file_copy/rmdirs on PC paths; the module's own FileNotFoundError."""
    target = str(tmp_path / "a" / "b" / "c.json")
    assert dev.ql_fs.touch(target, {"k": [1, 2]}) == 0
    assert dev.ql_fs.read_json(target) == {"k": [1, 2]}
    assert dev.ql_fs.path_getsize(target) == len('{"k": [1, 2]}')
    assert dev.ql_fs.file_copy(str(tmp_path / "copy.json"), target) is True
    assert dev.ql_fs.file_copy(str(tmp_path / "x"), str(tmp_path / "missing")) is False
    assert dev.ql_fs.read_json(str(tmp_path / "missing")) is None
    assert dev.ql_fs.path_dirname("/usr/a/b.json") == "/usr/a"
    assert dev.ql_fs.path_dirname("/b.json") == "/"
    assert dev.ql_fs.path_exists("") is False
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError):
        dev.ql_fs.read_json(str(tmp_path / "bad.json"))
    with pytest.raises(dev.ql_fs.FileNotFoundError):
        dev.ql_fs.path_getsize(str(tmp_path / "missing"))
    dev.ql_fs.rmdirs(str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()


def test_ustruct_s_fields_take_str(dev: ModuleType) -> None:
    """'s' packs a str as UTF-8 (padded/truncated as bytes are); other fields unchanged."""
    assert dev.ustruct.pack("<H4s", 1, "ab") == b"\x01\x00ab\x00\x00"
    assert dev.ustruct.pack("2s", "héllo") == "héllo".encode()[:2]
    buf = bytearray(6)
    dev.ustruct.pack_into("3s", buf, 1, "xyz")
    assert bytes(buf) == b"\x00xyz\x00\x00"
    with pytest.raises(Exception, match="integer"):
        dev.ustruct.pack("i", "1")


def test_micropython_library_modules(dev: ModuleType) -> None:
    """ure, ucollections.deque flags, uhashlib without hexdigest, uzlib streams."""
    assert dev.ure.match(r"(\d+)-(\d+)", "12-34").group(2) == "34"
    d = dev.ucollections.deque((), 2, 1)
    d.append(1)
    d.append(2)
    with pytest.raises(IndexError):
        d.append(3)
    dropping = dev.ucollections.deque((), 2)
    for n in range(4):
        dropping.append(n)
    assert list(dropping) == [2, 3]
    point = dev.ucollections.namedtuple("Point", ("x", "y"))(1, 2)
    assert point.y == 2
    h = dev.uhashlib.sha256(b"ab")
    h.update("c")
    assert dev.ubinascii.hexlify(h.digest()) == (
        b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert not hasattr(h, "hexdigest")
    with pytest.raises(ValueError):
        h.update(b"more")
    data = b"line one\nline two\n" * 50
    assert dev.uzlib.decompress(zlib.compress(data)) == data
    raw = zlib.compressobj(wbits=-15)
    deflated = raw.compress(data) + raw.flush()
    assert dev.uzlib.decompress(deflated, -15) == data
    stream = dev.uzlib.DecompIO(io.BytesIO(zlib.compress(data)))
    assert stream.readline() == b"line one\n"
    assert stream.read(9) == b"line two\n"
    assert len(stream.read()) == len(data) - 18
    with pytest.raises(OSError):
        dev.uzlib.decompress(b"not zlib")


def test_micropython_module_and_gc_memory_move(
    dev: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """const/opt_level; gc.mem_free/mem_alloc add up to the model's heap and move with
    what is allocated; mem_info prints the same figures."""
    mp = dev.micropython
    assert mp.const(42) == 42
    assert mp.opt_level() == 0 and mp.opt_level(2) is None and mp.opt_level() == 2
    mp.opt_level(0)
    assert mp.native(len) is len
    heap = 1024 * 1024  # the EC600N's
    free, alloc = gc.mem_free(), gc.mem_alloc()  # two readings: a few bytes apart
    assert 0 < free < heap and abs(free + alloc - heap) < 4096
    before = gc.mem_alloc()
    blob = [bytearray(1000) for _ in range(100)]
    grown = gc.mem_alloc()
    assert grown - before >= 100_000
    del blob
    gc.collect()
    assert gc.mem_alloc() < grown - 90_000
    mp.mem_info()
    out = capsys.readouterr().out
    assert f"GC: total: {heap}, used: " in out
    with pytest.raises(TypeError):
        mp.opt_level("1")


def test_gc_memory_functions_exist_only_inside_a_run() -> None:
    """Outside the device environment CPython's gc has no mem_free."""
    assert not hasattr(gc, "mem_free")
    with device_environment():
        assert callable(gc.mem_free)
    assert not hasattr(gc, "mem_free")


def test_rtc_alarm_calls_back_on_the_device_clock(dev: ModuleType) -> None:
    """set_alarm(t) + enable_alarm(1): the callback runs once the device clock passes t;
    an alarm in the past is -1; a wrong tuple is ValueError."""
    rtc = dev.machine.RTC()
    rang = threading.Event()
    assert rtc.register_callback(lambda arg: rang.set()) == 0
    y, mo, d, _wd, h, mi, s, _ = rtc.datetime()
    now = dev.utime.mktime((y, mo, d, h, mi, s, 0, 0))
    soon = dev.utime.localtime(now + 1)
    assert rtc.set_alarm((*soon[:3], 0, *soon[3:6], 0)) == 0
    assert rtc.enable_alarm(1) == 0
    assert rang.wait(5)
    past = dev.utime.localtime(now - 60)
    assert rtc.set_alarm((*past[:3], 0, *past[3:6], 0)) == -1
    with pytest.raises(ValueError):
        rtc.set_alarm((2030, 1, 1))
    with pytest.raises(ValueError):
        rtc.datetime((2030, 1, 1, 0, 0, 0))
    with pytest.raises(TypeError):
        rtc.datetime("2030-01-01")
    rtc.enable_alarm(0)


def test_leaving_the_environment_stops_a_watchdog() -> None:
    """A WDT created inside device_environment() cannot end this process afterwards."""
    with device_environment():
        machine = importlib.import_module("machine")
        wdt = machine.WDT(1)
        assert wdt.feed() == 0
    time.sleep(1.5)  # past the period: the process is still here
    assert wdt._stopped.is_set()
