"""QuecPython's ``ql_fs`` (file helpers) for device scripts run by ``usocket-run``.

``path_exists``, ``path_dirname``, ``path_getsize``, ``mkdirs``, ``rmdirs``,
``touch(file, data, file_type='json')``, ``write_json``, ``read_json`` (None for a missing
file), ``file_copy(dst, src)``. Device paths ``/usr/...`` and ``/bak/...`` are translated
to the run's folders, as ``open`` and ``uos`` do. ``path_getsize`` of a missing file raises
this module's own ``FileNotFoundError`` (an ``Exception`` subclass), as on the device.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import _devstate


class FileNotFoundError(Exception):
    """Raised by :func:`path_getsize` for a missing file."""


def path_exists(path: Any) -> bool:
    """True when ``path`` exists; a falsy ``path`` is False."""
    if not path:
        return False
    return os.path.exists(_devstate.device_path(path))


def path_dirname(path: str) -> str:
    """The text before the last ``/`` (``'/'`` for a root-level path, ``''`` if none)."""
    index = path.rfind("/")
    if index < 0:
        return ""
    return path[:index] or "/"


def path_getsize(path: str) -> int:
    """The file's size in bytes."""
    try:
        return os.stat(_devstate.device_path(path)).st_size
    except OSError:
        raise FileNotFoundError(f"[Errno 2] No such file or directory: {path!r}") from None


def mkdirs(path: str) -> None:
    """Create ``path`` and every missing parent folder."""
    os.makedirs(_devstate.device_path(path), exist_ok=True)


def rmdirs(path: str) -> None:
    """Delete ``path`` and everything under it."""
    real = _devstate.device_path(path)
    if os.path.isdir(real):
        shutil.rmtree(real)
    elif os.path.exists(real):
        os.remove(real)


def touch(file: str, data: Any, file_type: str = "json") -> int:
    """Write ``data`` (as JSON unless ``file_type`` says otherwise); 0, or -1 on failure."""
    real = _devstate.device_path(file)
    try:
        folder = os.path.dirname(real)
        if folder:
            os.makedirs(folder, exist_ok=True)
        text = json.dumps(data) if file_type == "json" else data
        mode = "wb" if isinstance(text, (bytes, bytearray)) else "w"
        with open(real, mode) as f:
            f.write(text)
    except (OSError, TypeError, ValueError):
        return -1
    return 0


def write_json(file: str, data: Any) -> int:
    """Same as ``touch(file, data)``."""
    return touch(file, data)


def read_json(file: str) -> Any:
    """The file's JSON content; None if the file does not exist. Bad JSON: ``ValueError``."""
    real = _devstate.device_path(file)
    if not os.path.isfile(real):
        return None
    with open(real, encoding="utf-8") as f:
        return json.loads(f.read())


def file_copy(dst: str, src: str) -> bool:
    """Copy ``src`` to ``dst``; ``True``, or ``False`` when ``src`` does not exist."""
    real_src = _devstate.device_path(src)
    if not os.path.isfile(real_src):
        return False
    real_dst = _devstate.device_path(dst)
    folder = os.path.dirname(real_dst)
    if folder:
        os.makedirs(folder, exist_ok=True)
    shutil.copyfile(real_src, real_dst)
    return True
