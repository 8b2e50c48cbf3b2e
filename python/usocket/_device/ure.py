"""MicroPython's ``ure`` for device scripts run by ``usocket-run``: CPython's ``re``.

``compile``, ``match``, ``search``, ``sub``, ``split``, ``escape`` and ``DEBUG``. CPython's
pattern language is a superset of MicroPython's, so a pattern the device rejects (e.g. with
look-behind or ``{m,n}`` counts on old firmware) may still work here.
"""

from re import DEBUG, compile, escape, match, search, split, sub

__all__ = ["DEBUG", "compile", "escape", "match", "search", "split", "sub"]
