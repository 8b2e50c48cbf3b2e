"""QuecPython's ``usocket`` module for CPython, with a Rust core.

``import usocket`` gives a device script the device's socket module: the same constants,
return shapes, errors (plain ``OSError(errno)``), blocking and timeout rules, and TCP state
codes. The behaviour profile (``quecpython`` by default, ``legacy`` or ``micropython``) is
read from the ``USOCKET_PROFILE`` environment variable at import; the script runner switches
it with ``_apply_profile``. Only the device's names are public (plus
``DeviceCompatibilityWarning``); scripts probe with ``hasattr`` and must see what the
device has.

Device details reproduced (see ``docs/usocket.md``): ``close()`` sends a FIN, or only a RST
with a zero ``SO_LINGER``, and wakes threads blocked on the socket with ``OSError(9)``
without sending anything; stream reads on one socket take turns between threads;
``setsockopt(SOL_SOCKET, 20, callback)`` registers the readable callback, run on one shared
background thread; an ``AF_INET6`` socket is dual stack as in lwIP (IPv4 peers appear as
``'::ffff:a.b.c.d'``, a numeric address of the other family is ``OSError(22)``); past the
device's limits (``USOCKET_MAX_SOCKETS`` sockets at once, default 15 in the device
profiles; receives above 64 KiB) a ``DeviceCompatibilityWarning`` is emitted once and the
call goes on.
"""

import os as _os

from . import _usocket
from ._usocket import DeviceCompatibilityWarning, getaddrinfo, socket

#: Names every profile exports.
_BASE_NAMES = ("socket", "getaddrinfo", "DeviceCompatibilityWarning")
#: Functions only upstream MicroPython has.
_MICROPYTHON_FUNCTIONS = {"inet_pton": _usocket.inet_pton, "inet_ntop": _usocket.inet_ntop}
#: Socket methods only the device has (hidden in the micropython profile).
_DEVICE_METHODS = {"getsocketsta": socket.__dict__["getsocketsta"]}
#: Names the current profile added to this module (removed when the profile changes).
_profile_names: "list[str]" = []

__all__ = ["DeviceCompatibilityWarning", "getaddrinfo", "socket"]


def _apply_profile(name: str) -> None:
    """Switch the process-wide profile and rebuild the public namespace to match.

    Unknown names raise ``ValueError``. Existing sockets follow the new profile from
    their next call on.
    """
    _usocket._set_profile(name)
    namespace = globals()
    for old in _profile_names:
        namespace.pop(old, None)
    _profile_names.clear()
    for const, value in _usocket._constants(name):
        namespace[const] = value
        _profile_names.append(const)
    if name == "micropython":
        namespace.update(_MICROPYTHON_FUNCTIONS)
        _profile_names.extend(_MICROPYTHON_FUNCTIONS)
        for method in _DEVICE_METHODS:
            if method in socket.__dict__:
                delattr(socket, method)
    else:
        for method, descriptor in _DEVICE_METHODS.items():
            if method not in socket.__dict__:
                setattr(socket, method, descriptor)
    __all__[:] = [*_BASE_NAMES, *_profile_names]


def _profile() -> str:
    """The current profile's name."""
    return _usocket._get_profile()


_apply_profile(_os.environ.get("USOCKET_PROFILE", "") or "quecpython")
