"""MicroPython's ``ustruct`` for device scripts run by ``usocket-run``: CPython's ``struct``.

``calcsize``, ``pack``, ``pack_into``, ``unpack``, ``unpack_from`` with the same format
strings (``<``, ``>``, ``!``, ``@`` and the usual codes).
"""

from struct import calcsize, pack, pack_into, unpack, unpack_from

__all__ = ["calcsize", "pack", "pack_into", "unpack", "unpack_from"]
