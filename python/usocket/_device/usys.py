"""QuecPython's ``usys`` for device scripts run by ``usocket-run``.

Every attribute of CPython's ``sys`` is reachable (looked up at access time, so
``usys.stdout`` follows any redirection of ``sys.stdout``), plus MicroPython's
``print_exception(exc, file=usys.stdout)``, which prints the traceback and the exception
the way an uncaught one would be printed, to stdout by default.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any


def print_exception(exc: BaseException, file: Any | None = None) -> None:
    """Print ``exc`` with its traceback to ``file`` (default: ``usys.stdout``)."""
    if not isinstance(exc, BaseException):
        raise TypeError("print_exception() argument must be an exception")
    out = sys.stdout if file is None else file
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=out)


def __getattr__(name: str) -> Any:
    """Everything else comes from CPython's ``sys``."""
    try:
        return getattr(sys, name)
    except AttributeError:
        raise AttributeError(f"module 'usys' has no attribute {name!r}") from None
