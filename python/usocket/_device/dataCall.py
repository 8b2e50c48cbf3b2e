"""QuecPython's ``dataCall`` (cellular data call) for device scripts run by ``usocket-run``.

A PC has no cellular data call; this module reports one on the loopback interface so that
device code which binds to "its own IP" (``dataCall.getInfo(1, 0)[2][2]``) gets an address
it can bind and reach: ``127.0.0.1`` (``::1`` for IPv6).

What the network does comes from the runner, through environment variables:

* ``USOCKET_NO_NETWORK=1`` (``--no-network``): no data call is ever up.
* ``USOCKET_NET_READY_AT=<time.time() value>`` (``--net-ready-after S``): the data call is
  up from that moment on.
* neither: up from the start.

``net.setModemFun(0|4)`` takes the call down too, until ``setModemFun(1)``.

``getInfo(profileID, ipType)`` -> ``(profileID, ipType, [state, reconnect, addr, dns1,
dns2])``, and for ipType 2 ``(profileID, 2, [IPv4 list], [IPv6 list])``; state is 1 when the
call is up, else 0 with address ``'0.0.0.0'`` (``'::'``). Profile 1 carries the call,
profiles 2..8 report state 0; other profiles or ipTypes return -1. ``activate(1)`` /
``deactivate(1)`` switch the call on and off (while the network allows it) and call the
``setCallback`` function with ``(profileID, state)`` in a separate thread, as the device
does; so does the network coming up after ``--net-ready-after``. ``setPDPContext`` /
``getPDPContext`` / ``setAutoActivate`` / ``setAutoConnect`` / ``setDNSServer`` store their
values and return 0; they do not change what getInfo reports.
"""

from __future__ import annotations

import _queue
import threading
import traceback
from typing import Any, Callable

import _devstate

ENV_NO_NETWORK = _devstate.ENV_NO_NETWORK
ENV_NET_READY_AT = _devstate.ENV_NET_READY_AT

#: Profiles a device has; profile 1 is the one that gets the (loopback) data call.
_PROFILES = range(1, 9)
_ACTIVE_PROFILE = 1

_lock = threading.Lock()
_deactivated = False
_callback: Callable[[Any], Any] | None = None
_pdp: dict[int, tuple[int, str, str, str, int]] = {}
_dns: dict[int, tuple[str, str]] = {}
#: Callback events, delivered in order by one daemon thread started on first use.
_events: _queue.SimpleQueue = _queue.SimpleQueue()
_deliverer: threading.Thread | None = None


def _seconds_until_network() -> float | None:
    """Seconds until the network is up (0 if it is), None if it never will be."""
    return _devstate.seconds_until_network()


def _is_up() -> bool:
    """True when the data call on profile 1 is active (registered and not deactivated)."""
    return _devstate.registered() and not _deactivated


def _system_dns() -> tuple[str, str]:
    servers: list[str] = []
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and "." in parts[1]:
                    servers.append(parts[1])
    except OSError:
        pass
    servers += ["0.0.0.0", "0.0.0.0"]
    return servers[0], servers[1]


def _entry(profile_id: int, v6: bool) -> list[int | str]:
    up = profile_id == _ACTIVE_PROFILE and _is_up()
    none = "::" if v6 else "0.0.0.0"
    if not up:
        return [0, 0, none, none, none]
    dns1, dns2 = _dns.get(profile_id) or (("::", "::") if v6 else _system_dns())
    return [1, 0, "::1" if v6 else "127.0.0.1", dns1, dns2]


def getInfo(profileID: int, ipType: int) -> int | tuple:
    """The data call's state and address for ``profileID`` (see the module docstring)."""
    if not isinstance(profileID, int) or not isinstance(ipType, int):
        raise TypeError("profileID and ipType must be int")
    if profileID not in _PROFILES or ipType not in (0, 1, 2):
        return -1
    if ipType == 2:
        return (profileID, 2, _entry(profileID, False), _entry(profileID, True))
    return (profileID, ipType, _entry(profileID, ipType == 1))


def _deliver() -> None:
    """Call the callback for each queued event, in order, in one background thread."""
    while True:
        callback, event = _events.get()
        try:
            callback(event)
        except Exception:  # noqa: BLE001 - a failing callback must not stop later events
            traceback.print_exc()


def _notify(profile_id: int, state: int) -> None:
    global _deliverer
    callback = _callback
    if callback is None:
        return
    with _lock:
        if _deliverer is None:
            _deliverer = threading.Thread(target=_deliver, name="dataCall-callback", daemon=True)
            _deliverer.start()
    _events.put((callback, (profile_id, state)))


def setCallback(fun: Callable[[Any], Any] | None) -> int:
    """Register ``fun(args)``, called with ``(profileID, state)`` when the call changes."""
    global _callback
    if fun is not None and not callable(fun):
        raise TypeError("callback must be callable")
    _callback = fun
    wait = _seconds_until_network()
    if fun is not None and wait:
        timer = threading.Timer(wait, lambda: _notify(_ACTIVE_PROFILE, 1 if _is_up() else 0))
        timer.daemon = True
        timer.start()
    return 0


def activate(profileID: int) -> int:
    """Activate the data call; 0 on success, -1 when there is no network."""
    global _deactivated
    if profileID not in _PROFILES:
        return -1
    if profileID != _ACTIVE_PROFILE or not _devstate.registered():
        return -1
    with _lock:
        was_down, _deactivated = _deactivated, False
    if was_down:
        _notify(profileID, 1)
    return 0


def deactivate(profileID: int) -> int:
    """Deactivate the data call; 0 on success."""
    global _deactivated
    if profileID not in _PROFILES:
        return -1
    if profileID == _ACTIVE_PROFILE:
        with _lock:
            was_up = _is_up()
            _deactivated = True
        if was_up:
            _notify(profileID, 0)
    return 0


def setPDPContext(
    profileID: int, ipType: int, apn: str, username: str, password: str, authType: int
) -> int:
    """Store the PDP context settings (no effect on the PC); 0, or -1 for a bad profile."""
    if profileID not in _PROFILES:
        return -1
    _pdp[profileID] = (ipType, apn, username, password, authType)
    return 0


def getPDPContext(profileID: int) -> int | tuple[int, str, str, str, int]:
    """The stored ``(ipType, apn, username, password, authType)``; -1 for a bad profile."""
    if profileID not in _PROFILES:
        return -1
    return _pdp.get(profileID, (0, "", "", "", 0))


def setAutoActivate(profileID: int, enable: int) -> int:
    """Accepted and ignored (the PC's call is always automatic); returns 0."""
    return 0 if profileID in _PROFILES else -1


def setAutoConnect(profileID: int, enable: int) -> int:
    """Accepted and ignored; returns 0."""
    return 0 if profileID in _PROFILES else -1


def setDNSServer(profileID: int, simID: int, priDNS: str, secDNS: str) -> int:
    """Set the DNS servers getInfo reports for ``profileID`` (resolution is the PC's)."""
    if profileID not in _PROFILES:
        return -1
    _dns[profileID] = (priDNS, secDNS)
    return 0
