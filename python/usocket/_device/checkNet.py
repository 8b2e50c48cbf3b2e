"""QuecPython's ``checkNet`` for device scripts run by ``usocket-run``.

``waitNetworkReady(timeout=60)`` (an alias of ``wait_network_connected``, as in current
firmware) and ``CheckNetwork(project_name, project_version).wait_network_connected(
timeout_s=60)`` return ``(stage, state)``: ``(3, 1)`` means SIM ready, registered and data
call (PDP context) active. A timeout outside 1..3600 raises
``OSError('timeout_s should be in [1, 3600]s!')``.

The runner decides what the network does, through the environment variables that
``dataCall`` documents:

* default: ready at once, ``(3, 1)`` without waiting;
* ``--net-ready-after S`` (``USOCKET_NET_READY_AT``): the call waits until the network is
  up and returns ``(3, 1)``, or returns ``(2, 0)`` when ``timeout`` ends first;
* ``--no-network`` (``USOCKET_NO_NETWORK=1``): waits the whole timeout, returns ``(2, 0)``.

``(2, 0)`` is what the tutorial's code lists as "network timeout": the SIM is ready
(``sim.getStatus()`` would be 1) but the module never registered. Registered but with the
data call switched off (``dataCall.deactivate(1)``), a timed-out wait returns ``(3, 0)``. The SIM stage (1) never
fails here. ``CheckNetwork.poweron_print_once()`` prints the device's banner with
PROJECT_NAME, PROJECT_VERSION, FIRMWARE_VERSION and SIM_CARD_STATUS.
"""

from __future__ import annotations

import sys
import time

import dataCall
import modem
import net
import sim

#: ``sim.getStatus()`` value for "SIM ready".
SIM_READY = 1
_SLICE_S = 0.05


def _stop_point() -> None:
    """Let ``_thread.stop_thread`` end the calling thread here, between two wait slices."""
    check = getattr(sys.modules.get("_thread"), "_check_stop", None)
    if check is not None:
        check()


def _data_call_up() -> bool:
    """True when dataCall reports the call on profile 1 as established."""
    info = dataCall.getInfo(1, 0)
    return isinstance(info, tuple) and info[2][0] == 1


def _check_timeout(timeout_s: float) -> None:
    if not isinstance(timeout_s, (int, float)):
        raise TypeError(f"can't convert {type(timeout_s).__name__} to int")
    if timeout_s < 1 or timeout_s > 3600:
        raise OSError("timeout_s should be in [1, 3600]s!")


def _stage_reached() -> tuple[int, int]:
    """Where a timed-out wait stopped: (2, registration state) or, registered without a
    data call (``dataCall.deactivate``), (3, 0)."""
    stat = net.getState()[1][0]
    if stat in (1, 5):
        return (3, 0)
    return (2, stat)


def wait_network_connected(timeout_s: int = 60) -> tuple[int, int]:
    """Wait up to ``timeout_s`` seconds for the data call; ``(3, 1)`` when it is up."""
    _check_timeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        _stop_point()
        if _data_call_up():
            return (3, 1)
        left = deadline - time.monotonic()
        if left <= 0:
            return _stage_reached()
        time.sleep(min(left, _SLICE_S))


def waitNetworkReady(timeout: int = 60, timeout_s: int | None = None) -> tuple[int, int]:
    """Same as :func:`wait_network_connected`; takes the stub's ``timeout`` or ``timeout_s``."""
    return wait_network_connected(timeout if timeout_s is None else timeout_s)


class CheckNetwork:
    """The device's network checker with a power-on banner."""

    def __init__(self, project_name: str, project_version: str) -> None:
        self.PROJECT_NAME = project_name
        self.PROJECT_VERSION = project_version
        self.FIRMWARE_VERSION = modem.getDevFwVersion()

    def poweron_print_once(self) -> None:
        """Print the banner with project, firmware and SIM status."""
        print("==================================================")
        print(f"PROJECT_NAME     : {self.PROJECT_NAME}")
        print(f"PROJECT_VERSION  : {self.PROJECT_VERSION}")
        print(f"FIRMWARE_VERSION : {self.FIRMWARE_VERSION}")
        print(f"SIM_CARD_STATUS  : {sim.getStatus()}")
        print("==================================================")

    @staticmethod
    def check_datacall_status() -> int:
        """1 if a data call is active, else 0."""
        return 1 if _data_call_up() else 0

    def wait_network_connected(self, timeout_s: int = 60) -> tuple[int, int]:
        """Same as the module-level :func:`wait_network_connected`."""
        return wait_network_connected(timeout_s)
