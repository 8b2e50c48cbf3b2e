"""QuecPython's ``modem`` for device scripts run by ``usocket-run``: the device's identity.

``getDevImei()``, ``getDevModel()``, ``getDevSN()``, ``getDevFwVersion()`` and
``getDevProductId()`` return strings from the run's identity (defaults, ``--device FILE``,
``QPY_*`` variables; see the ``usocket-run`` documentation). The SIM-id argument some
firmware accepts is checked (0 or 1, else ``ValueError``) and otherwise ignored.
"""

from __future__ import annotations

import _devstate

#: What ``getDevProductId()`` reports.
PRODUCT_ID = "Quectel"


def _sim_id(args: tuple) -> None:
    if len(args) > 1:
        raise TypeError(f"function takes at most 1 positional argument ({len(args)} given)")
    if args and args[0] not in (0, 1):
        raise ValueError("invalid value, simId should be in (0, 1)")


def getDevImei(*simId: int) -> str:
    """The IMEI (15 digits)."""
    _sim_id(simId)
    return _devstate.identity()["imei"]


def getDevModel() -> str:
    """The module model, e.g. ``'EC600N'``."""
    return _devstate.identity()["model"]


def getDevSN(*simId: int) -> str:
    """The serial number."""
    _sim_id(simId)
    return _devstate.identity()["sn"]


def getDevFwVersion() -> str:
    """The firmware version string."""
    return _devstate.identity()["firmware"]


def getDevProductId() -> str:
    """The product id (``'Quectel'``)."""
    return PRODUCT_ID
