"""State the device modules share during a ``usocket-run`` run (private to the runner).

* **Identity** (:func:`identity`): IMEI, ICCID, IMSI, model, firmware, SN, CSQ, APN, time
  zone and socket limit. Defaults below, then the JSON device file named by
  ``USOCKET_DEVICE_FILE`` (the runner's ``--device``), then the ``QPY_*`` environment
  variables: each later source wins. :func:`load_device_file` validates a file.
* **The network** (:func:`registered`): one state that ``net``, ``sim``, ``dataCall`` and
  ``checkNet`` all read: up unless ``USOCKET_NO_NETWORK`` / ``USOCKET_NET_READY_AT`` say
  otherwise or ``net.setModemFun`` switched the radio off.
* **Device paths** (:func:`device_path`): ``/usr/...`` and ``/bak/...`` to the folders the
  runner exports in ``USOCKET_USR_DIR`` / ``USOCKET_BAK_DIR``.
* **Callbacks** (:class:`CallbackThread`): one daemon thread per module kind running
  callbacks one after another; an exception is printed and later callbacks still run.
* **Ending the run** (:func:`end_run`) for ``misc.Power`` and ``machine.WDT``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

ENV_DEVICE_FILE = "USOCKET_DEVICE_FILE"
ENV_MAX_SOCKETS = "USOCKET_MAX_SOCKETS"
ENV_NO_NETWORK = "USOCKET_NO_NETWORK"
ENV_NET_READY_AT = "USOCKET_NET_READY_AT"
ENV_USR_DIR = "USOCKET_USR_DIR"
ENV_BAK_DIR = "USOCKET_BAK_DIR"

#: Exit status of ``misc.Power.powerRestart()`` and of a starved watchdog.
EXIT_RESTART = 3
#: Exit status of ``misc.Power.powerDown()``.
EXIT_POWER_DOWN = 0

#: The identity a run has when nothing overrides it (invented, plausible values).
DEFAULTS: dict[str, Any] = {
    "imei": "861234040000013",
    "iccid": "89860112345678901237",
    "imsi": "460010123456789",
    "model": "EC600N",
    "firmware": "EC600NCNLCR03A01M16_OCPU_QPY",
    "sn": "D1Q23N0000000001P",
    "csq": 31,
    "apn": "3gnet",
    "timezone": 8,
    "max_sockets": None,
}

#: Device-file key -> environment variable that overrides it.
ENV_NAMES = {
    "imei": "QPY_IMEI",
    "iccid": "QPY_ICCID",
    "imsi": "QPY_IMSI",
    "model": "QPY_MODEL",
    "firmware": "QPY_FWVER",
    "sn": "QPY_SN",
    "csq": "QPY_CSQ",
    "apn": "QPY_APN",
    "timezone": "QPY_TIMEZONE",
    "max_sockets": ENV_MAX_SOCKETS,
}


def _digits(key: str, low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isdigit() or not low <= len(text) <= high:
            span = f"{low}" if low == high else f"{low} to {high}"
            raise ValueError(f"{key} must be a string of {span} digits, got {value!r}")
        return text

    return check


def _iccid(value: Any) -> str:
    ok = isinstance(value, str) and 19 <= len(value) <= 20 and value.isalnum()
    if not ok or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"iccid must be a string of 19 or 20 digits, got {value!r}")
    return value.upper()


def _text(key: str, limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
            raise ValueError(f"{key} must be a non-empty string of at most {limit} characters")
        return value

    return check


def _int_in(key: str, low: int, high: int, extra: tuple[int, ...] = ()) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")  # noqa: TRY004
        if not (low <= value <= high or value in extra):
            also = f" or {', '.join(map(str, extra))}" if extra else ""
            raise ValueError(f"{key} must be in {low}..{high}{also}, got {value}")
        return value

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "imei": _digits("imei", 15, 15),
    "iccid": _iccid,
    "imsi": _digits("imsi", 6, 15),
    "model": _text("model", 32),
    "firmware": _text("firmware", 64),
    "sn": _text("sn", 32),
    "csq": _int_in("csq", 0, 31, (99,)),
    "apn": _text("apn", 63),
    "timezone": _int_in("timezone", -12, 12),
    "max_sockets": _int_in("max_sockets", 0, 1024),
}


def load_device_file(path: str) -> dict[str, Any]:
    """Read and check a device identity file; ``ValueError`` naming the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"device file {path!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"device file {path!r}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"device file {path!r}: expected a JSON object")  # noqa: TRY004
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _CHECKS:
            known = ", ".join(sorted(_CHECKS))
            raise ValueError(f"device file {path!r}: unknown key {key!r} (known: {known})")
        try:
            values[key] = _CHECKS[key](value)
        except ValueError as exc:
            raise ValueError(f"device file {path!r}: {exc}") from None
    return values


def resolve_identity(environ: Any = None) -> dict[str, Any]:
    """Defaults, then the device file, then the environment variables (``ValueError``)."""
    env = os.environ if environ is None else environ
    values = dict(DEFAULTS)
    path = env.get(ENV_DEVICE_FILE)
    if path:
        values.update(load_device_file(path))
    for key, name in ENV_NAMES.items():
        text = env.get(name)
        if text:
            try:
                values[key] = _CHECKS[key](text)
            except ValueError as exc:
                raise ValueError(f"environment variable {name}: {exc}") from None
    return values


_identity: dict[str, Any] | None = None


def identity() -> dict[str, Any]:
    """This process's identity (read once)."""
    global _identity
    if _identity is None:
        _identity = resolve_identity()
    return _identity


# --------------------------------------------------------------------------- network

_lock = threading.Lock()
#: ``net.setModemFun`` level: 1 full, 0 minimum, 4 airplane.
modem_fun = 1


def network_ready_at() -> float | None:
    """Wall-clock time the network comes up; None if never (``--no-network``)."""
    if os.environ.get(ENV_NO_NETWORK, "") not in ("", "0"):
        return None
    text = os.environ.get(ENV_NET_READY_AT)
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{ENV_NET_READY_AT} must be a time.time() value, got {text!r}")


def seconds_until_network() -> float | None:
    """Seconds until the runner's network is up (0 if it is), None if it never will be."""
    at = network_ready_at()
    if at is None:
        return None
    return max(0.0, at - time.time())


def registered() -> bool:
    """True when the module is registered: the runner's network is up and the radio on."""
    return modem_fun == 1 and seconds_until_network() == 0.0


def set_modem_fun(level: int) -> None:
    """Switch the radio: 1 full (network back), 0 or 4 (network down)."""
    global modem_fun
    with _lock:
        modem_fun = level


# --------------------------------------------------------------------------- paths


def device_path(path: Any) -> Any:
    """``/usr/...`` and ``/bak/...`` to the PC folders the runner set; anything else as is."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        return path
    for prefix, env in (("/usr", ENV_USR_DIR), ("/bak", ENV_BAK_DIR)):
        if path == prefix or path.startswith(prefix + "/"):
            root = os.environ.get(env)
            if root:
                rest = path[len(prefix) :].lstrip("/")
                return os.path.join(root, rest) if rest else root
    return path


# --------------------------------------------------------------------------- callbacks


class CallbackThread:
    """Runs callbacks one after another in one daemon thread, started on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``."""
        with self._ready:
            self._jobs.append((fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                fn, args = self._jobs.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a failing callback must not stop later ones
                traceback.print_exc()


# --------------------------------------------------------------------------- ending


ENV_REBOOTS_LEFT = "USOCKET_REBOOTS_LEFT"
ENV_REBOOT_ARGV = "USOCKET_REBOOT_ARGV"
ENV_REBOOT_NEXT = "USOCKET_REBOOT_NEXT"


def _say(message: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream must not stop the exit
            pass
    try:
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110
        pass


def end_run(status: int, message: str) -> None:
    """Flush output, print ``message (exit status N)`` on stderr and end the whole process.

    A restart (status 3) with reboots left (the runner's ``--reboot N``) instead replaces
    this process with a fresh run of the same command line.
    """
    left = os.environ.get(ENV_REBOOTS_LEFT, "0")
    argv_text = os.environ.get(ENV_REBOOT_ARGV)
    if status == EXIT_RESTART and left.isdigit() and int(left) > 0 and argv_text:
        try:
            argv = json.loads(argv_text)
        except ValueError:
            argv = None
        if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
            remaining = int(left) - 1
            _say(f"{message}; booting again ({remaining} reboot(s) left)")
            os.environ[ENV_REBOOT_NEXT] = str(remaining)
            os.execv(argv[0], argv)
    _say(f"{message} (exit status {status})")
    os._exit(status)
