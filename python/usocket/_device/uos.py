"""MicroPython's ``uos`` for device scripts run by ``usocket-run``: a subset of ``os``.

``chdir``, ``getcwd``, ``listdir``, ``ilistdir``, ``mkdir``, ``remove``, ``rename``, ``rmdir``,
``stat``, ``statvfs``, ``uname``, ``urandom`` and ``sep``. Paths are the PC's: a device path
such as ``/usr/config.json`` is not translated.
"""

from __future__ import annotations

import os as _os
import stat as _stat
from collections.abc import Iterator
from os import chdir, getcwd, listdir, mkdir, remove, rename, rmdir, sep, statvfs, uname, urandom
from os import stat as _os_stat

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


def stat(path: str) -> tuple[int, ...]:
    """``(mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime)`` as a plain tuple."""
    return tuple(int(v) for v in tuple(_os_stat(path))[:10])


def ilistdir(path: str = ".") -> Iterator[tuple[str, int, int, int]]:
    """Yield ``(name, type, inode, size)`` for each entry; type 0x4000 dir, 0x8000 file."""
    for entry in _os.scandir(path):
        st = entry.stat(follow_symlinks=True)
        kind = _DIR if _stat.S_ISDIR(st.st_mode) else _FILE
        yield (entry.name, kind, entry.inode(), 0 if kind == _DIR else st.st_size)
