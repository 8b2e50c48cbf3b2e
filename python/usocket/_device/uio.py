"""MicroPython's ``uio`` for device scripts run by ``usocket-run``: CPython's ``io``.

``BytesIO``, ``StringIO`` and ``open``. Paths are the PC's: a device path such as
``/usr/config.json`` is not translated.
"""

import io as _io
from io import BytesIO, StringIO

#: The builtin ``open`` (``io.open``), under the device module's name.
open = _io.open

__all__ = ["BytesIO", "StringIO", "open"]
