"""MicroPython's ``uos`` for device scripts run by ``usocket-run``: a subset of ``os``.

``chdir``, ``getcwd``, ``listdir``, ``ilistdir``, ``mkdir``, ``remove``, ``rename``, ``rmdir``,
``stat``, ``statvfs``, ``uname``, ``urandom`` and ``sep``. Device paths are translated as
during the whole run: ``/usr/...`` is the script's folder and ``/bak/...`` the run's
scratch folder; other paths are the PC's. ``uname()`` is the device's tuple of
``'key=value'`` strings, built from the run's model.
"""

from __future__ import annotations

import os as _os
import stat as _stat
from collections.abc import Iterator
from os import getcwd, sep, urandom
from typing import Any

import _devstate

__all__ = [
    "chdir",
    "getcwd",
    "ilistdir",
    "listdir",
    "mkdir",
    "remove",
    "rename",
    "rmdir",
    "sep",
    "stat",
    "statvfs",
    "uname",
    "urandom",
]

#: MicroPython's type codes in ``ilistdir`` tuples.
_DIR = 0x4000
_FILE = 0x8000

_path = _devstate.device_path


def chdir(path: str) -> None:
    """Change the current folder."""
    _os.chdir(_path(path))


def listdir(path: str = ".") -> list[str]:
    """Names in ``path``."""
    return _os.listdir(_path(path))


def mkdir(path: str) -> None:
    """Create a folder."""
    _os.mkdir(_path(path))


def remove(path: str) -> None:
    """Delete a file."""
    _os.remove(_path(path))


def rename(old: str, new: str) -> None:
    """Rename a file or folder."""
    _os.rename(_path(old), _path(new))


def rmdir(path: str) -> None:
    """Delete an empty folder."""
    _os.rmdir(_path(path))


def statvfs(path: str) -> Any:
    """File-system statistics of the folder holding ``path``."""
    return _os.statvfs(_path(path))


def stat(path: str) -> tuple[int, ...]:
    """``(mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime)`` as a plain tuple."""
    return tuple(int(v) for v in tuple(_os.stat(_path(path)))[:10])


def ilistdir(path: str = ".") -> Iterator[tuple[str, int, int, int]]:
    """Yield ``(name, type, inode, size)`` for each entry; type 0x4000 dir, 0x8000 file."""
    for entry in _os.scandir(_path(path)):
        st = entry.stat(follow_symlinks=True)
        kind = _DIR if _stat.S_ISDIR(st.st_mode) else _FILE
        yield (entry.name, kind, entry.inode(), 0 if kind == _DIR else st.st_size)


def uname() -> tuple[str, str, str, str, str, str]:
    """``('sysname=EC600N-CNLC', 'nodename=EC600N', 'release=...', ...)`` for the model."""
    model = _devstate.identity()["model"]
    firmware = _devstate.identity()["firmware"]
    variant = firmware[len(model) : len(model) + 4] if firmware.startswith(model) else ""
    sysname = f"{model}-{variant}" if len(variant) == 4 and variant.isalpha() else model
    return (
        f"sysname={sysname}",
        f"nodename={model}",
        "release=1.13.0",
        "version=v1.13 on 2023-06-01",
        f"machine={model} with QUECTEL",
        "qpyver=V0004",
    )
