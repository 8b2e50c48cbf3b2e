"""MicroPython's ``uio`` for device scripts run by ``usocket-run``: CPython's ``io``.

``BytesIO``, ``StringIO`` and ``open``; ``open`` translates the device paths ``/usr/...``
and ``/bak/...`` as the builtin ``open`` does during a run.
"""

from __future__ import annotations

import io as _io
from io import BytesIO, StringIO
from typing import Any

import _devstate

__all__ = ["BytesIO", "StringIO", "open"]


def open(file: Any, *args: Any, **kwargs: Any) -> Any:
    """``io.open`` with device paths translated."""
    return _io.open(_devstate.device_path(file), *args, **kwargs)  # noqa: UP020
