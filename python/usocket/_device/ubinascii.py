"""MicroPython's ``ubinascii`` for device scripts run by ``usocket-run``: CPython's.

``hexlify(data[, sep])``, ``unhexlify(data)``, ``a2b_base64(data)``, ``b2a_base64(data)``
(with a trailing newline, as on the device) and ``crc32(data[, value])``.
"""

from binascii import a2b_base64, b2a_base64, crc32, hexlify, unhexlify

__all__ = ["a2b_base64", "b2a_base64", "crc32", "hexlify", "unhexlify"]
