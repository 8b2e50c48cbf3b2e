"""QuecPython's ``log`` for device scripts run by ``usocket-run``.

Follows the device's frozen ``log.py`` (QuecPython/micropython ports/quectel/py/log.py):

* Levels ``CRITICAL`` 50, ``ERROR`` 40, ``WARNING`` 30, ``INFO`` 20, ``DEBUG`` 10, ``NOTSET`` 0.
* Each record is one line ``LEVEL:name:msg`` with the level names ``CRIT``, ``ERROR``,
  ``WARN``, ``INFO``, ``DEBUG`` (``LVL<n>`` for other numbers), on stderr by default.
* ``basicConfig(level=INFO, filename=None, stream=None, format=None)`` sets the global level
  (and the stream); ``filename``/``format`` only print a "not supported" notice.
* ``getLogger(name='root')`` returns one cached ``Logger`` per name. A logger's own level
  (``setLevel``) wins when non-zero, else the global level applies.
* ``Logger.debug/info/warning/error/critical(msg, *args)`` and ``log(level, msg, *args)``
  format with ``%`` only when args are given.
* ``set_output(out)``: ``usys.stdout``/``usys.stderr`` or any object with ``write`` (on the
  device a ``machine.UART``); anything else raises ``Exception``.
"""

from __future__ import annotations

import sys
from typing import Any

CRITICAL = 50
ERROR = 40
WARNING = 30
INFO = 20
DEBUG = 10
NOTSET = 0

_level_dict = {
    CRITICAL: "CRIT",
    ERROR: "ERROR",
    WARNING: "WARN",
    INFO: "INFO",
    DEBUG: "DEBUG",
}

_level = INFO
#: None means "whatever ``sys.stderr`` is when a record is written".
_stream: Any | None = None
_loggers: dict[str, Logger] = {}


def _out() -> Any:
    return sys.stderr if _stream is None else _stream


class Logger:
    """A named logger; see the module docstring for levels and output."""

    level = NOTSET

    def __init__(self, name: str) -> None:
        self.name = name

    def _level_str(self, level: int) -> str:
        name = _level_dict.get(level)
        return name if name is not None else f"LVL{level}"

    def setLevel(self, level: int) -> None:
        """Set this logger's own level (0 falls back to the global level)."""
        self.level = level

    def isEnabledFor(self, level: int) -> bool:
        """True if a record of ``level`` would be written."""
        return level >= (self.level or _level)

    def log(self, level: int, msg: Any, *args: Any) -> None:
        """Write ``msg`` (``msg % args`` when args are given) at ``level``."""
        if self.isEnabledFor(level):
            if args:
                msg = msg % args
            stream = _out()
            stream.write(f"{self._level_str(level)}:{self.name}:{msg}\n")
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()

    def debug(self, msg: Any, *args: Any) -> None:
        """Log at DEBUG."""
        self.log(DEBUG, msg, *args)

    def info(self, msg: Any, *args: Any) -> None:
        """Log at INFO."""
        self.log(INFO, msg, *args)

    def warning(self, msg: Any, *args: Any) -> None:
        """Log at WARNING (written as ``WARN``)."""
        self.log(WARNING, msg, *args)

    def error(self, msg: Any, *args: Any) -> None:
        """Log at ERROR."""
        self.log(ERROR, msg, *args)

    def critical(self, msg: Any, *args: Any) -> None:
        """Log at CRITICAL (written as ``CRIT``)."""
        self.log(CRITICAL, msg, *args)


def getLogger(name: str = "root") -> Logger:
    """The logger called ``name``, created on first use."""
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = Logger(name)
    return logger


def set_output(out: Any) -> None:
    """Send records to ``out``: ``usys.stdout``, ``usys.stderr`` or a writable object."""
    global _stream
    if out is sys.stderr:
        _stream = None
    elif out is sys.stdout or callable(getattr(out, "write", None)):
        _stream = out
    else:
        raise Exception(f"{out} must extend UART")  # noqa: TRY002 - what the device raises


def basicConfig(
    level: int = INFO, filename: Any = None, stream: Any = None, format: Any = None
) -> None:
    """Set the global level (and stream); ``filename``/``format`` are not supported."""
    global _level, _stream
    _level = level
    if stream:
        _stream = stream
    if filename is not None:
        print("logging.basicConfig: filename arg is not supported")
    if format is not None:
        print("logging.basicConfig: format arg is not supported")
