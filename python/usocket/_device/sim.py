"""QuecPython's ``sim`` for device scripts run by ``usocket-run``.

The SIM is always present and ready: ``getStatus()`` is ``1``. ``getImsi()`` and
``getIccid()`` return the run's identity; ``getPhoneNumber()`` returns ``-1`` (no number
stored, as on most IoT SIMs). PIN functions return ``-1`` (there is no PIN to check).
The optional ``simId`` must be 0 or 1, else ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import _devstate

#: ``getStatus()`` for a ready SIM.
SIM_READY = 1


def _sim_id(args: tuple) -> None:
    if len(args) > 1:
        raise TypeError(f"function takes at most 1 positional argument ({len(args)} given)")
    if args:
        if not isinstance(args[0], int):
            raise TypeError(f"can't convert {type(args[0]).__name__} to int")
        if args[0] not in (0, 1):
            raise ValueError("invalid value, simId should be in (0, 1)")


def getStatus(*simId: int) -> int:
    """``1``: SIM ready."""
    _sim_id(simId)
    return SIM_READY


def getImsi(*simId: int) -> str:
    """The IMSI."""
    _sim_id(simId)
    return _devstate.identity()["imsi"]


def getIccid(*simId: int) -> str:
    """The ICCID (hex letters upper-cased)."""
    _sim_id(simId)
    return _devstate.identity()["iccid"]


def getPhoneNumber(*simId: int) -> int:
    """``-1``: no phone number is stored on the SIM."""
    _sim_id(simId)
    return -1


def _no_pin(*args: Any) -> int:
    return -1


verifyPin = enablePin = disablePin = changePin = unlockPin = verifyPuk = _no_pin
