"""usocket-run: how a script runs, what it can import, and its exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_support import Running, run_device, write_script
from usocket.runner import device_environment, parse_map_rule

COMPANIONS = [
    "utime",
    "log",
    "checkNet",
    "dataCall",
    "usys",
    "uselect",
    "uerrno",
    "ujson",
    "ubinascii",
    "ustruct",
    "uio",
    "uos",
    "urandom",
]


def script(tmp_path: Path, source: str, name: str = "main.py") -> str:
    return str(write_script(tmp_path, name, textwrap.dedent(source)))


def test_script_runs_as_main_with_its_argv(tmp_path: Path) -> None:
    """The script is __main__ and sees [SCRIPT, args...] as sys.argv."""
    path = script(tmp_path, "import sys\nprint(__name__, sys.argv)\n")
    result = run_device(path, "a", "--b")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"__main__ {[path, 'a', '--b']}\n"


def test_script_folder_is_package_usr(tmp_path: Path) -> None:
    """helper.py beside the script is importable as usr.helper (and as helper)."""
    write_script(tmp_path, "helper.py", "NAME = 'helper'\n")
    path = script(
        tmp_path,
        """\
        import usr.helper
        from usr import helper as h2
        import helper
        print(usr.helper.NAME, h2 is usr.helper, helper.NAME)
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "helper True helper\n"


def test_uncaught_exception_gives_traceback_and_status_1(tmp_path: Path) -> None:
    """An uncaught exception prints the script's traceback (no runner frames); status 1."""
    path = script(tmp_path, "def f():\n    raise ValueError('boom')\nf()\n")
    result = run_device(path)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{path}", line 3, in <module>' in result.stderr
    assert f'File "{path}", line 2, in f' in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: boom")
    assert "runner.py" not in result.stderr


def test_syntax_error_is_reported_like_cpython(tmp_path: Path) -> None:
    """A script that does not compile gives CPython's SyntaxError report and status 1."""
    path = script(tmp_path, "print('ok')\nif True\n    pass\n")
    result = run_device(path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f'File "{path}", line 2' in result.stderr
    assert "SyntaxError:" in result.stderr


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [("3", 3, ""), ("None", 0, ""), ("'bye'", 1, "bye\n"), ("0", 0, "")],
)
def test_system_exit_sets_the_status(tmp_path: Path, code: str, status: int, stderr: str) -> None:
    """SystemExit(n) exits with n; a non-int message goes to stderr with status 1."""
    path = script(tmp_path, f"import usys\nusys.exit({code})\n")
    result = run_device(path)
    assert (result.returncode, result.stderr) == (status, stderr)


def test_timeout_ends_a_script_that_never_exits(tmp_path: Path) -> None:
    """--timeout ends a busy main thread with exit status 124, as GNU timeout."""
    path = script(tmp_path, "print('started', flush=True)\nwhile True:\n    pass\n")
    result = run_device("--timeout", "1", path)
    assert result.returncode == 124
    assert result.stdout == "started\n"
    assert "timed out after 1 s" in result.stderr


def test_timeout_ends_a_run_kept_alive_by_a_thread(tmp_path: Path) -> None:
    """A _thread thread that never ends keeps the run alive until --timeout (124)."""
    path = script(
        tmp_path,
        """\
        import _thread, utime
        def forever():
            while True:
                utime.sleep(1)
        _thread.start_new_thread(forever, ())
        print('main returns')
        """,
    )
    result = run_device("--timeout", "1", path)
    assert result.returncode == 124
    assert result.stdout == "main returns\n"


def test_run_goes_on_while_threads_are_alive(tmp_path: Path) -> None:
    """After the main script returns, the run waits for its _thread threads."""
    path = script(
        tmp_path,
        """\
        import _thread, utime
        lock = _thread.allocate_lock()
        lock.acquire()
        def worker(n):
            lock.acquire()   # waits until main has printed
            lock.release()
            utime.sleep_ms(100)
            print('worker', n, 'done')
        _thread.start_new_thread(worker, (1,))
        print('main done')
        lock.release()
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\nworker 1 done\n"


def test_thread_exception_ends_only_that_thread(tmp_path: Path) -> None:
    """An uncaught error in a thread prints a traceback; the other threads and main go on."""
    path = script(
        tmp_path,
        """\
        import _thread, utime
        main_done = _thread.allocate_lock()
        main_done.acquire()
        def boom():
            raise ValueError('in thread')
        def fine():
            with main_done:  # runs on after the failing thread and the main script
                print('fine thread done')
        failing = _thread.start_new_thread(boom, ())
        _thread.start_new_thread(fine, ())
        while _thread.threadIsRunning(failing):
            utime.sleep_ms(10)
        print('main done')
        main_done.release()
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\nfine thread done\n"
    assert "Unhandled exception in thread started by <function boom at 0x" in result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: in thread")


def test_cpython_threading_still_works_inside_a_run(tmp_path: Path) -> None:
    """threading, queue and concurrent.futures work while the device _thread is installed."""
    path = script(
        tmp_path,
        """\
        import _thread, threading, queue, time
        from concurrent.futures import ThreadPoolExecutor
        assert hasattr(_thread, 'allocate_semphore') and hasattr(_thread, 'RLock')
        q = queue.Queue()
        t = threading.Thread(target=lambda: q.put(threading.current_thread().name), name='T1')
        t.start(); t.join()
        with ThreadPoolExecutor(2) as pool:
            squares = list(pool.map(lambda x: x * x, range(5)))
        lock = threading.RLock()
        with lock, lock:
            pass
        print(q.get(), squares, time.strptime('2024', '%Y').tm_year, threading.active_count())
        """,
    )
    result = run_device(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "T1 [0, 1, 4, 9, 16] 2024 1\n"


def test_ctrl_c_ends_the_run_with_status_130(tmp_path: Path) -> None:
    """SIGINT during a sleep ends the run with a KeyboardInterrupt traceback and 130."""
    path = script(tmp_path, "import utime\nprint('ready')\nutime.sleep(30)\n")
    with Running(path) as run:
        run.wait_for("ready")
        run.proc.send_signal(signal.SIGINT)
        status, _, err = run.finish()
    assert status == 130
    assert err.rstrip().endswith("KeyboardInterrupt")


def test_console_script_is_the_same_as_module_run(tmp_path: Path) -> None:
    """usocket-run SCRIPT behaves as python -m usocket run SCRIPT."""
    exe = Path(sys.executable).with_name("usocket-run")
    if not exe.exists():
        pytest.skip("usocket-run console script not installed in this environment")
    path = script(tmp_path, "import sys, utime\nprint(sys.argv[1:], utime.ticks_add(1, 1))\n")
    direct = subprocess.run(
        [str(exe), "--timeout", "20", path, "x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (direct.returncode, direct.stdout) == (0, "['x'] 2\n"), direct.stderr
    assert run_device("--timeout", "20", path, "x").stdout == direct.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "nonsense"], "--map 'nonsense': expected FROM=TO"),
        (["--map", "a:99999=b"], "port must be 1..65535"),
        (["--profile", "nokia"], "invalid choice: 'nokia'"),
        (["--timeout", "-1"], "seconds must be finite and >= 0"),
        (["--no-network", "--net-ready-after", "1"], "exclude each other"),
        (["/nonexistent/main.py"], "can't open file '/nonexistent/main.py'"),
    ],
)
def test_bad_command_lines_fail_clearly(args: list[str], message: str) -> None:
    """Bad options or a missing script end with status 2 and say what is wrong."""
    result = run_device(*args, *([] if args[0].startswith("/") else ["main.py"]))
    assert result.returncode == 2
    assert message in result.stderr


def test_companions_are_not_importable_outside_the_runner() -> None:
    """A plain Python (usocket imported or not) has no utime, log, checkNet, ... modules."""
    probe = textwrap.dedent(
        f"""\
        import importlib.util, _thread, usocket, usocket.runner
        found = [n for n in {COMPANIONS!r} if importlib.util.find_spec(n) is not None]
        print(found, hasattr(_thread, 'allocate_semphore'))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout) == (0, "[] False\n"), result.stderr


def test_device_environment_puts_everything_back() -> None:
    """Inside device_environment the companions import; afterwards they are gone again."""
    import _thread as cpython_thread

    path_before = list(sys.path)
    with device_environment() as device_thread:
        import utime  # noqa: F401 - importable only here

        assert sys.modules["_thread"] is device_thread
        assert device_thread.allocate_lock is not cpython_thread.allocate_lock
        assert device_thread.RLock is cpython_thread.RLock
    assert sys.modules["_thread"] is cpython_thread
    assert sys.path == path_before
    assert not any(name in sys.modules for name in COMPANIONS)


def test_network_options_reach_checknet_and_datacall(tmp_path: Path) -> None:
    """--no-network and --net-ready-after change what checkNet/dataCall report."""
    path = script(
        tmp_path,
        """\
        import checkNet, dataCall, usys
        before = dataCall.getInfo(1, 0)[2][:3]
        wait = checkNet.waitNetworkReady(int(usys.argv[1]))
        print(before, wait, dataCall.getInfo(1, 0)[2][:3])
        """,
    )
    up = "[1, 0, '127.0.0.1']"
    down = "[0, 0, '0.0.0.0']"
    assert run_device(path, "5").stdout == f"{up} (3, 1) {up}\n"
    assert run_device("--no-network", path, "1").stdout == f"{down} (2, 0) {down}\n"
    assert run_device("--net-ready-after", "1", path, "5").stdout == f"{down} (3, 1) {up}\n"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("112.125.89.8:37982=127.0.0.1:7000", ("112.125.89.8", 37982, "127.0.0.1", 7000)),
        ("iot.example.com=127.0.0.1", ("iot.example.com", None, "127.0.0.1", None)),
        ("host:80=127.0.0.1", ("host", 80, "127.0.0.1", None)),
        ("host=127.0.0.1:8080", ("host", None, "127.0.0.1", 8080)),
        ("[2001:db8::1]:443=[::1]:8443", ("2001:db8::1", 443, "::1", 8443)),
        ("[2001:db8::1]=[::1]", ("2001:db8::1", None, "::1", None)),
    ],
)
def test_parse_map_rule_forms(text: str, rule: tuple) -> None:
    """--map accepts HOST:PORT, HOST and bracketed IPv6 on both sides."""
    assert parse_map_rule(text) == rule


@pytest.mark.parametrize("text", ["a", "a=b=c", "=b", "a:0=b", "a:x=b", "[::1=b", "[::1]x=b"])
def test_parse_map_rule_rejects_bad_text(text: str) -> None:
    """Malformed --map values raise ValueError naming the value."""
    with pytest.raises(ValueError, match="--map"):
        parse_map_rule(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("mqtt://broker.example.com:1883=127.0.0.1:1883", "no scheme"),
        ("http://example.com=127.0.0.1", "no scheme"),
        ("example.com=tcp://127.0.0.1:80", "no scheme"),
        ("2001:db8::1=::1", "brackets"),
        ("2001:db8::1:443=127.0.0.1", "brackets"),
        ("host:80:81=127.0.0.1", "too many ':'"),
        ("host=127.0.0.1:80:1", "too many ':'"),
        ("example.com/path=127.0.0.1", "not HOST"),
        ("[example.com]:80=127.0.0.1", "only IPv6"),
        ("[::g]:80=127.0.0.1", "not an IPv6 address"),
        ("bad host=127.0.0.1", "not HOST"),
    ],
)
def test_parse_map_rule_rejects_nonsense_with_a_reason(text: str, reason: str) -> None:
    """Scheme prefixes, bare IPv6, extra colons and paths are refused with the reason."""
    with pytest.raises(ValueError, match="--map") as info:
        parse_map_rule(text)
    assert reason in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab1.:=[]/@ -9%fF", max_size=24))
def test_parse_map_rule_gives_a_rule_or_a_value_error(text: str) -> None:
    """Any text: a well-formed rule (hosts without scheme or stray colons, ports in range)
    or ValueError naming --map; never another exception."""
    try:
        from_host, from_port, to_host, to_port = parse_map_rule(text)
    except ValueError as exc:
        assert "--map" in str(exc)
        return
    for host in (from_host, to_host):
        assert host and "/" not in host and "@" not in host and " " not in host
        assert host.count(":") == 0 or host.count(":") >= 2  # a name/IPv4, or IPv6
    for port in (from_port, to_port):
        assert port is None or 1 <= port <= 65535


def test_nonsense_map_rule_stops_the_run_before_the_script(tmp_path: Path) -> None:
    """On the command line a bad rule is a usage error (status 2) naming the rule."""
    path = script(tmp_path, "print('ran')\n")
    result = run_device("--map", "mqtt://broker.example.com:1883=127.0.0.1:1883", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "mqtt://broker.example.com:1883" in result.stderr
    assert "no scheme" in result.stderr


def test_profile_environment_reaches_child_processes(tmp_path: Path) -> None:
    """--profile is exported as USOCKET_PROFILE for processes the script starts."""
    path = script(tmp_path, "import os\nprint(os.environ.get('USOCKET_PROFILE'))\n")
    env_free = {k: v for k, v in os.environ.items() if k != "USOCKET_PROFILE"}
    result = subprocess.run(
        [sys.executable, "-m", "usocket", "run", "--profile", "legacy", path],
        capture_output=True,
        text=True,
        timeout=30,
        env=env_free,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "legacy\n"), result.stderr
