"""MicroPython's ``ujson`` for device scripts run by ``usocket-run``: CPython's ``json``.

``dumps(obj)``, ``loads(str_or_bytes)``, ``dump(obj, stream)``, ``load(stream)``; invalid
input raises ``ValueError`` (CPython's ``JSONDecodeError`` is a subclass).
"""

from json import dump, dumps, load, loads

__all__ = ["dump", "dumps", "load", "loads"]
