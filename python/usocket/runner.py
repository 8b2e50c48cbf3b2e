"""Run an unmodified QuecPython device script on a PC.

``python -m usocket run SCRIPT`` (or ``usocket-run SCRIPT``) lands in :func:`run`. A run:

* applies the usocket profile and the ``--map`` address rules, and tells ``checkNet`` and
  ``dataCall`` what the network does (environment variables, see :data:`ENV_NO_NETWORK`);
* puts the companion modules of :mod:`usocket._device` (``utime``, ``_thread``, ``log``, ...)
  first on ``sys.path`` and installs the device ``_thread`` under that name, for this run
  only, so they never shadow anything in a user's normal Python;
* makes the script's folder importable as the package ``usr`` (on the device user files
  live under ``/usr``) and as plain top-level modules, as CPython does for a script;
* executes the script as ``__main__`` in the main thread, then, as the device does, keeps
  running while threads started with ``_thread.start_new_thread`` are alive;
* turns the outcome into an exit status: the script's ``SystemExit`` code, 1 with a
  traceback for an uncaught exception, 130 for Ctrl-C and 124 when ``--timeout`` expires.

Layout: :func:`parse_map_rule` turns ``--map`` text into the tuples the extension takes,
:func:`device_environment` installs and removes the companion modules, :func:`run` is the
whole run; ``usocket/__main__.py`` only parses the command line.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional

#: Folder of the companion modules; first on ``sys.path`` during a run only.
DEVICE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_device")

#: Set to ``1`` by ``--no-network``: ``checkNet`` never reports ready, ``dataCall`` no IP.
ENV_NO_NETWORK = "USOCKET_NO_NETWORK"
#: Set by ``--net-ready-after S`` to the wall-clock time (``time.time()``) the network is up.
ENV_NET_READY_AT = "USOCKET_NET_READY_AT"
#: The usocket profile; the runner sets it too so that child processes inherit it.
ENV_PROFILE = "USOCKET_PROFILE"

PROFILES = ("quecpython", "legacy", "micropython")

#: Exit status when ``--timeout`` ends a run, as GNU ``timeout`` uses.
EXIT_TIMEOUT = 124
#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130

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


# --------------------------------------------------------------------------- --map


def _parse_endpoint(text: str, whole: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` into (host, port or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"--map {whole!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"--map {whole!r}: expected ':PORT' after ']'")
        port_text: str | None = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        # No colon, or a bare IPv6 address (several colons) without a port.
        host, port_text = text, None
    if not host:
        raise ValueError(f"--map {whole!r}: empty host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"--map {whole!r}: port must be 1..65535, got {port_text!r}")
    return host, int(port_text)


def parse_map_rule(text: str) -> MapRule:
    """Parse one ``--map`` value into ``(from_host, from_port, to_host, to_port)``.

    Accepted forms: ``HOST:PORT=HOST:PORT`` (that exact endpoint), ``HOST=HOST`` (the host
    on any port, keeping the port), and the mixed ``HOST:PORT=HOST`` / ``HOST=HOST:PORT``.
    IPv6 addresses go in brackets when a port follows: ``[::1]:9000``. Anything else raises
    ``ValueError`` with the offending text.
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


@contextlib.contextmanager
def device_environment(script_dir: str | None = None) -> Iterator[types.ModuleType]:
    """Make the companion modules importable by their device names inside the block.

    Yields the device ``_thread`` module (installed as ``sys.modules['_thread']``; CPython's
    own ``threading`` keeps the functions it bound at import, and the device module
    re-exports every name of CPython's ``_thread``). With ``script_dir``, that folder is
    also importable as package ``usr`` and by plain module names. On exit everything is
    put back: ``sys.path``, ``_thread``, ``usr`` and the companion modules imported inside.
    """
    saved_path = list(sys.path)
    saved_thread = sys.modules["_thread"]
    saved_usr = sys.modules.get("usr")
    device_thread = _load_device_thread()
    sys.path.insert(0, DEVICE_DIR)
    if script_dir is not None:
        sys.path.insert(1, script_dir)
        sys.modules["usr"] = _usr_package(script_dir)
    sys.modules["_thread"] = device_thread
    try:
        yield device_thread
    finally:
        sys.path[:] = saved_path
        sys.modules["_thread"] = saved_thread
        for name, module in list(sys.modules.items()):
            if name != "_thread" and _is_device_module(module):
                del sys.modules[name]
        if script_dir is not None:
            for name in [n for n in sys.modules if n == "usr" or n.startswith("usr.")]:
                del sys.modules[name]
            if saved_usr is not None:
                sys.modules["usr"] = saved_usr


def _configure_usocket(options: RunOptions) -> None:
    """Apply the profile and the address map before the script imports usocket."""
    if options.profile is not None:
        os.environ[ENV_PROFILE] = options.profile
    if options.profile is None and not options.maps:
        return
    import usocket

    if options.profile is not None:
        usocket._apply_profile(options.profile)
    if options.maps:
        usocket._usocket._set_address_map(list(options.maps))


def _configure_network(options: RunOptions) -> None:
    """Tell checkNet/dataCall (via the environment) when the network is up, if ever."""
    if options.no_network:
        os.environ[ENV_NO_NETWORK] = "1"
    if options.net_ready_after is not None:
        os.environ[ENV_NET_READY_AT] = repr(time.time() + options.net_ready_after)


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
    _configure_usocket(options)
    _configure_network(options)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    done = threading.Event()
    if options.timeout is not None:
        _start_watchdog(options.timeout, done)
    status = 0
    saved_main, saved_argv = sys.modules["__main__"], list(sys.argv)
    with device_environment(os.path.dirname(path)) as device_thread:
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
    _flush_std()
    return status
