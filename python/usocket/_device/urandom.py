"""MicroPython's ``urandom`` for device scripts run by ``usocket-run``: CPython's ``random``.

``getrandbits(n)``, ``seed(n)``, ``random()``, ``uniform(a, b)``, ``randint(a, b)``,
``randrange(...)`` and ``choice(seq)``.
"""

from random import choice, getrandbits, randint, random, randrange, seed, uniform

__all__ = ["choice", "getrandbits", "randint", "random", "randrange", "seed", "uniform"]
