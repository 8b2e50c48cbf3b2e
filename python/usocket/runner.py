"""Run an unmodified QuecPython device script on a PC.

``python -m usocket run SCRIPT`` (or ``usocket-run SCRIPT``) lands in :func:`run`. A run:

* applies the usocket profile, the ``--map`` address rules and the guard for addresses no
  rule covers (a warning per destination, or refusal with ``--strict-map``), and tells the
  cellular modules what the network does (environment variables, see :data:`ENV_NO_NETWORK`);
* reads the device identity (``--device FILE.json``, ``QPY_*`` variables) and checks it
  before the script starts;
* makes the companion modules of :mod:`usocket._device` importable for this run only, in
  the device's order: the firmware's C built-ins (:data:`BUILTIN_MODULES`) before the
  script's folder, the frozen Python modules (every other one) after it; installs the
  device ``_thread`` under that name and ``gc.mem_free``/``gc.mem_alloc``;
* makes the script's folder importable as the package ``usr`` (on the device user files
  live under ``/usr``) and as plain top-level modules, as CPython does for a script, and
  maps the device paths ``/usr/...`` and ``/bak/...`` in ``open`` and ``uos``;
* executes the script as ``__main__`` in the main thread, then, as the device does, keeps
  running while threads started with ``_thread.start_new_thread`` are alive;
* turns the outcome into an exit status: the script's ``SystemExit`` code, 1 with a
  traceback for an uncaught exception, 130 for Ctrl-C and 124 when ``--timeout`` expires.

Layout: :func:`parse_map_rule` turns ``--map`` text into the tuples the extension takes,
:func:`device_environment` installs and removes the companion modules, :func:`run` is the
whole run; ``usocket/__main__.py`` only parses the command line.

Status 3 means the script restarted the device (``misc.Power.powerRestart()`` or a starved
``machine.WDT``); ``misc.Power.powerDown()`` ends the run with status 0. With
``--reboot N`` a restart instead replaces the process with a fresh run of the same command
line (``os.execv``), up to N times, as the device boots the script again.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

#: Folder of the companion modules; on ``sys.path`` after the script's folder, during a run only.
DEVICE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_device")

#: Set to ``1`` by ``--no-network``: ``checkNet`` never reports ready, ``dataCall`` no IP.
ENV_NO_NETWORK = "USOCKET_NO_NETWORK"
#: Set by ``--net-ready-after S`` to the wall-clock time (``time.time()``) the network is up.
ENV_NET_READY_AT = "USOCKET_NET_READY_AT"
#: The usocket profile; the runner sets it too so that child processes inherit it.
ENV_PROFILE = "USOCKET_PROFILE"
#: ``--device FILE.json``: the device identity file (the variable works without the flag).
ENV_DEVICE_FILE = "USOCKET_DEVICE_FILE"
#: The identity's ``max_sockets``, for usocket's socket-count warning.
ENV_MAX_SOCKETS = "USOCKET_MAX_SOCKETS"
#: ``--ssl-strict``: ``ussl`` verifies certificates even without ``ca``.
ENV_SSL_STRICT = "USOCKET_SSL_STRICT"
#: ``warn`` or ``strict``: what happens to connections no ``--map`` rule covers.
ENV_ADDRESS_GUARD = "USOCKET_ADDRESS_GUARD"
#: ``--reboot N``: how many more times a device restart starts the script again, and the
#: command line that does it (JSON list), for ``_devstate.end_run``.
ENV_REBOOTS_LEFT = "USOCKET_REBOOTS_LEFT"
ENV_REBOOT_ARGV = "USOCKET_REBOOT_ARGV"
#: Set only for the process a reboot starts: the reboots left after it.
ENV_REBOOT_NEXT = "USOCKET_REBOOT_NEXT"
#: The folders ``/usr`` and ``/bak`` map to during a run.
ENV_USR_DIR = "USOCKET_USR_DIR"
ENV_BAK_DIR = "USOCKET_BAK_DIR"

#: Modules the firmware has built in (C): no file in the script's folder replaces them.
#: Every other module in :data:`DEVICE_DIR` is "frozen Python" and comes after that folder.
BUILTIN_MODULES = frozenset(
    {
        "usocket",
        "ussl",
        "utime",
        "_thread",
        "ustruct",
        "uos",
        "usys",
        "uselect",
        "uio",
        "ujson",
        "ubinascii",
        "uerrno",
        "urandom",
        "ure",
        "ucollections",
        "uhashlib",
        "uzlib",
        "micropython",
        "net",
        "sim",
        "modem",
        "misc",
        "machine",
        "osTimer",
        "dataCall",
    }
)

PROFILES = ("quecpython", "legacy", "micropython")

#: Exit status when ``--timeout`` ends a run, as GNU ``timeout`` uses.
EXIT_TIMEOUT = 124
#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130
#: Exit status after ``misc.Power.powerRestart()`` or a starved watchdog.
EXIT_RESTART = 3
#: Exit status for bad options or a bad device file.
EXIT_USAGE = 2

#: One ``--map`` rule: (from_host, from_port or None = any, to_host, to_port or None = keep).
MapRule = tuple[str, Optional[int], str, Optional[int]]


@dataclass
class RunOptions:
    """Everything the command line says about one run."""

    script: str
    args: list[str] = field(default_factory=list)
    profile: str | None = None
    net_ready_after: float | None = None
    no_network: bool = False
    maps: list[MapRule] = field(default_factory=list)
    timeout: float | None = None
    device_file: str | None = None
    strict_map: bool = False
    ssl_strict: bool = False
    bak_dir: str | None = None
    reboots: int = 0


# --------------------------------------------------------------------------- --map


_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")


def _check_host(host: str, whole: str) -> None:
    """A host name, an IPv4 address or (already unbracketed) an IPv6 address."""
    if ":" in host:
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise ValueError(f"--map {whole!r}: {host!r} is not an IPv6 address") from None
        return
    if not _HOST_NAME.match(host):
        raise ValueError(f"--map {whole!r}: {host!r} is not a host name or address")


def _parse_endpoint(text: str, whole: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` into (host, port or None)."""
    if "://" in text or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", text):
        raise ValueError(f"--map {whole!r}: no scheme (like 'mqtt://') in a rule, only HOST[:PORT]")
    if "/" in text or "@" in text or any(c.isspace() for c in text):
        raise ValueError(f"--map {whole!r}: {text!r} is not HOST[:PORT]")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"--map {whole!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"--map {whole!r}: expected ':PORT' after ']'")
        if not host or ":" not in host:
            raise ValueError(f"--map {whole!r}: only IPv6 addresses go in brackets")
        port_text: str | None = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        raise ValueError(
            f"--map {whole!r}: too many ':' in {text!r}; an IPv6 address goes in "
            "brackets, e.g. [::1] or [::1]:7000"
        )
    else:
        host, port_text = text, None
    if not host:
        raise ValueError(f"--map {whole!r}: empty host")
    _check_host(host, whole)
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"--map {whole!r}: port must be 1..65535, got {port_text!r}")
    return host, int(port_text)


def parse_map_rule(text: str) -> MapRule:
    """Parse one ``--map`` value into ``(from_host, from_port, to_host, to_port)``.

    Accepted forms: ``HOST:PORT=HOST:PORT`` (that exact endpoint), ``HOST=HOST`` (the host
    on any port, keeping the port), and the mixed ``HOST:PORT=HOST`` / ``HOST=HOST:PORT``.
    IPv6 addresses go in brackets: ``[::1]`` or ``[::1]:9000``. A scheme (``mqtt://``), a
    path, extra colons or a bare IPv6 address raise ``ValueError`` with the offending text.
    """
    if text.count("=") != 1:
        raise ValueError(f"--map {text!r}: expected FROM=TO, e.g. 1.2.3.4:80=127.0.0.1:8080")
    left, right = text.split("=")
    from_host, from_port = _parse_endpoint(left.strip(), text)
    to_host, to_port = _parse_endpoint(right.strip(), text)
    return (from_host, from_port, to_host, to_port)


# --------------------------------------------------------------------------- environment


def _load_device_thread() -> types.ModuleType:
    """Load ``_device/_thread.py`` as a module named ``_thread`` (not yet installed)."""
    path = os.path.join(DEVICE_DIR, "_thread.py")
    spec = importlib.util.spec_from_file_location("_thread", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _usr_package(script_dir: str) -> types.ModuleType:
    """A package ``usr`` whose only search location is the script's folder."""
    spec = importlib.machinery.ModuleSpec("usr", None, is_package=True)
    spec.submodule_search_locations = [script_dir]
    module = importlib.util.module_from_spec(spec)
    module.__path__ = [script_dir]
    return module


def _is_device_module(module: object) -> bool:
    path = getattr(module, "__file__", None) or ""
    return os.path.dirname(os.path.abspath(path)) == DEVICE_DIR if path else False


def _is_builtin_tier(name: str) -> bool:
    """Module ``name`` is one of the firmware's C built-ins (or a private helper)."""
    return name in BUILTIN_MODULES or name.startswith("_dev")


class _BuiltinCompanionFinder(importlib.abc.MetaPathFinder):
    """Finds the C-built-in companions before anything on ``sys.path`` (the script's
    folder included), as nothing shadows a built-in module on the device."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if path is not None or not _is_builtin_tier(fullname):
            return None
        location = os.path.join(DEVICE_DIR, fullname + ".py")
        if not os.path.isfile(location):
            return None
        return importlib.util.spec_from_file_location(fullname, location)


class _QueueSwitch(types.ModuleType):
    """``sys.modules['queue']`` during a run: device code (the script, its folder and the
    companions) sees the device's ``queue`` (or a ``queue.py`` in the script's folder);
    Python's own library keeps CPython's."""

    def __init__(self, real: types.ModuleType, device_roots: tuple[str, ...]) -> None:
        super().__init__("queue")
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_roots", device_roots)
        object.__setattr__(self, "_device", None)

    def _device_module(self) -> types.ModuleType:
        module = object.__getattribute__(self, "_device")
        if module is None:
            roots = [r for r in object.__getattribute__(self, "_roots") if os.path.isdir(r)]
            spec = importlib.machinery.PathFinder.find_spec("queue", roots)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            object.__setattr__(self, "_device", module)
        return module

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__") and name in ("__class__", "__dict__", "__spec__"):
            return object.__getattribute__(self, name)
        caller = sys._getframe(1).f_code.co_filename
        if _is_device_code(caller, object.__getattribute__(self, "_roots")):
            module = object.__getattribute__(self, "_device_module")()
        else:
            module = object.__getattribute__(self, "_real")
        return getattr(module, name)


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def _library_roots() -> tuple[str, ...]:
    """Where Python's own library and installed packages live."""
    import sysconfig

    paths = sysconfig.get_paths()
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    found.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    return tuple(os.path.abspath(p) for p in found if p)


_LIBRARY_ROOTS = _library_roots()


def _is_device_code(filename: str, roots: tuple[str, ...]) -> bool:
    """True for code of the device modules, or of the script and its folder (``roots``)
    unless it is Python's library or an installed package that happens to be below it."""
    path = os.path.abspath(filename)
    if _under(path, (DEVICE_DIR,)):
        return True
    return _under(path, roots) and not _under(path, _LIBRARY_ROOTS)


def _device_open(roots: tuple[str, ...]) -> Any:
    """``open`` that maps ``/usr/...`` and ``/bak/...`` for device code (the script, its
    folder, the companions); Python's own library keeps the PC's paths."""
    real_open = io.open

    def open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            isinstance(file, str)
            and file.startswith(("/usr", "/bak"))
            and _is_device_code(sys._getframe(1).f_code.co_filename, roots)
        ):
            import _devstate

            file = _devstate.device_path(file)
        return real_open(file, *args, **kwargs)

    open.__doc__ = real_open.__doc__
    return open


@contextlib.contextmanager
def device_environment(script_dir: str | None = None) -> Iterator[types.ModuleType]:
    """Make the companion modules importable by their device names inside the block.

    Yields the device ``_thread`` module (installed as ``sys.modules['_thread']``; CPython's
    own ``threading`` keeps the functions it bound at import, and the device module
    re-exports every name of CPython's ``_thread``). The C-built-in companions
    (:data:`BUILTIN_MODULES`) are found before ``sys.path``; the others come after
    ``script_dir``. With ``script_dir``, that folder is importable as package ``usr`` and by
    plain module names, ``open`` maps ``/usr`` and ``/bak`` for device code, and ``queue``
    is the device's for device code. ``gc`` gains ``mem_free``/``mem_alloc``. On exit
    everything is put back.
    """
    import queue as real_queue

    saved_path = list(sys.path)
    saved_thread = sys.modules["_thread"]
    saved_usr = sys.modules.get("usr")
    saved_open = builtins.open
    device_thread = _load_device_thread()
    finder = _BuiltinCompanionFinder()
    sys.meta_path.insert(0, finder)
    roots: tuple[str, ...] = (DEVICE_DIR,)
    if script_dir is not None:
        roots = (os.path.abspath(script_dir), DEVICE_DIR)
        sys.path.insert(0, script_dir)
        sys.path.insert(1, DEVICE_DIR)
        sys.modules["usr"] = _usr_package(script_dir)
        builtins.open = _device_open(roots)
    else:
        sys.path.insert(0, DEVICE_DIR)
    sys.modules["queue"] = _QueueSwitch(real_queue, roots)
    sys.modules["_thread"] = device_thread
    devmem = importlib.import_module("_devmem")
    gc.mem_free = devmem.mem_free  # type: ignore[attr-defined]
    gc.mem_alloc = devmem.mem_alloc  # type: ignore[attr-defined]
    try:
        yield device_thread
    finally:
        machine = sys.modules.get("machine")
        watchdog = getattr(getattr(machine, "WDT", None), "_current", None)
        if watchdog is not None and _is_device_module(machine):
            watchdog.stop()  # a watchdog must not end this process after the block
        devmem.stop()
        for name in ("mem_free", "mem_alloc"):
            with contextlib.suppress(AttributeError):
                delattr(gc, name)
        builtins.open = saved_open
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
        sys.path[:] = saved_path
        sys.modules["_thread"] = saved_thread
        sys.modules["queue"] = real_queue
        for name, module in list(sys.modules.items()):
            if name not in ("_thread", "queue") and _is_device_module(module):
                del sys.modules[name]
        if script_dir is not None:
            for name in [n for n in sys.modules if n == "usr" or n.startswith("usr.")]:
                del sys.modules[name]
            if saved_usr is not None:
                sys.modules["usr"] = saved_usr


def _configure_usocket(options: RunOptions) -> None:
    """Apply the profile, the address map and its guard before the script imports usocket."""
    if options.profile is not None:
        os.environ[ENV_PROFILE] = options.profile
    import usocket

    if options.profile is not None:
        usocket._apply_profile(options.profile)
    usocket._usocket._set_address_map(list(options.maps))
    guard = "strict" if options.strict_map else "warn"
    os.environ[ENV_ADDRESS_GUARD] = guard
    usocket._usocket._set_address_guard(guard)


def _configure_network(options: RunOptions) -> None:
    """Tell checkNet/dataCall (via the environment) when the network is up, if ever."""
    if options.no_network:
        os.environ[ENV_NO_NETWORK] = "1"
    if options.net_ready_after is not None:
        os.environ[ENV_NET_READY_AT] = repr(time.time() + options.net_ready_after)


def _configure_identity(options: RunOptions) -> dict[str, Any]:
    """Check the device identity (file and variables) and export what others read.

    Raises ``ValueError`` naming the bad file, key or variable.
    """
    if options.device_file is not None:
        os.environ[ENV_DEVICE_FILE] = os.path.abspath(options.device_file)
    sys.path.insert(0, DEVICE_DIR)
    try:
        spec = importlib.util.spec_from_file_location(
            "_devstate_check", os.path.join(DEVICE_DIR, "_devstate.py")
        )
        assert spec is not None and spec.loader is not None
        devstate = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(devstate)
    finally:
        sys.path.remove(DEVICE_DIR)
    identity = devstate.resolve_identity()
    if identity.get("max_sockets") is not None:
        os.environ[ENV_MAX_SOCKETS] = str(identity["max_sockets"])
    if options.ssl_strict:
        os.environ[ENV_SSL_STRICT] = "1"
    # A reboot passes the count on in ENV_REBOOT_NEXT, read once here (so processes the
    # script starts never mistake themselves for a reboot).
    after_reboot = os.environ.pop(ENV_REBOOT_NEXT, "")
    left = int(after_reboot) if after_reboot.isdigit() else options.reboots
    os.environ[ENV_REBOOTS_LEFT] = str(left)
    os.environ[ENV_REBOOT_ARGV] = json.dumps([sys.executable, *sys.orig_argv[1:]])
    return identity


def _configure_paths(options: RunOptions, script_dir: str, imei: str) -> None:
    """Export where ``/usr`` and ``/bak`` map and say so on stderr."""
    bak = options.bak_dir or os.path.join(tempfile.gettempdir(), "usocket-bak", imei)
    bak = os.path.abspath(bak)
    os.makedirs(bak, exist_ok=True)
    os.environ[ENV_USR_DIR] = script_dir
    os.environ[ENV_BAK_DIR] = bak
    print(f"usocket-run: /usr -> {script_dir}, /bak -> {bak}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the run


def _exit_code(exc: SystemExit) -> int:
    """The exit status CPython derives from ``SystemExit`` (message on stderr if not int)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code
    print(code, file=sys.stderr)
    return 1


def _print_script_traceback(exc: BaseException) -> None:
    """Print ``exc`` as CPython would for a script, without the runner's own frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
    sys.stderr.flush()


def _exec_script(path: str, argv: Sequence[str]) -> None:
    """Compile and execute the script as module ``__main__`` in this thread."""
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    sys.argv[:] = list(argv)
    exec(code, main.__dict__)  # noqa: S102 - running the user's script is the point


def _start_watchdog(seconds: float, stop: threading.Event) -> None:
    """End the whole process with status 124 unless ``stop`` is set within ``seconds``."""

    def watch() -> None:
        if stop.wait(seconds):
            return
        sys.stderr.write(f"usocket-run: timed out after {seconds:g} s\n")
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(EXIT_TIMEOUT)

    threading.Thread(target=watch, name="usocket-run-timeout", daemon=True).start()


def _flush_std() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()


def run(options: RunOptions) -> int:
    """Run one device script as described in the module docstring; return the exit status."""
    path = os.path.abspath(options.script)
    if not os.path.isfile(path):
        print(f"usocket-run: can't open file {options.script!r}", file=sys.stderr)
        return 2
    try:
        identity = _configure_identity(options)
        script_dir = os.path.dirname(path)
        _configure_paths(options, script_dir, identity["imei"])
    except (ValueError, OSError) as exc:
        print(f"usocket-run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_usocket(options)
    _configure_network(options)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    done = threading.Event()
    if options.timeout is not None:
        _start_watchdog(options.timeout, done)
    status = 0
    saved_main, saved_argv = sys.modules["__main__"], list(sys.argv)
    with device_environment(script_dir) as device_thread:
        try:
            _exec_script(path, [options.script, *options.args])
            device_thread._wait_for_threads()
        except SystemExit as exc:
            status = _exit_code(exc)
        except KeyboardInterrupt as exc:
            _print_script_traceback(exc)
            status = EXIT_INTERRUPTED
        except BaseException as exc:  # noqa: BLE001 - the script's own uncaught error
            _print_script_traceback(exc)
            status = 1
        finally:
            device_thread._stop_all_threads()
            done.set()
            sys.modules["__main__"] = saved_main
            sys.argv[:] = saved_argv
    import usocket

    usocket._usocket._set_address_guard("off")
    _flush_std()
    return status
