"""QuecPython's ``misc`` for device scripts run by ``usocket-run``: ``Power``.

``Power.powerRestart()`` ends the whole run with exit status 3 and ``Power.powerDown()``
with exit status 0, after flushing output and printing one line on stderr; neither
returns. ``powerOnReason()`` is 1 (power key), ``powerDownReason()`` 1 (normal) and
``getVbatt()`` 3800 (mV).
"""

from __future__ import annotations

import _devstate


class Power:
    """The module's power functions, called on the class."""

    @staticmethod
    def powerRestart() -> None:
        """Restart the device: the run ends with exit status 3."""
        _devstate.end_run(
            _devstate.EXIT_RESTART,
            "usocket-run: misc.Power.powerRestart(): the device restarts",
        )

    @staticmethod
    def powerDown() -> None:
        """Power the device off: the run ends with exit status 0."""
        _devstate.end_run(
            _devstate.EXIT_POWER_DOWN,
            "usocket-run: misc.Power.powerDown(): the device powers off",
        )

    @staticmethod
    def powerOnReason() -> int:
        """``1``: powered on by the power key."""
        return 1

    @staticmethod
    def powerDownReason() -> int:
        """``1``: the last power-down was a normal one."""
        return 1

    @staticmethod
    def getVbatt() -> int:
        """Battery voltage in mV."""
        return 3800
