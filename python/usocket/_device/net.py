"""QuecPython's ``net`` (cellular registration and signal) for scripts run by ``usocket-run``.

One simulated network drives this module, ``sim``, ``dataCall`` and ``checkNet``: it is up
unless the runner says otherwise (``--no-network``, ``--net-ready-after``) or
``setModemFun(0|4)`` switched the radio off. Up: registered on LTE (stat 1), the identity's
CSQ (31 by default). Down: stat 0, CSQ 99, ``operatorName()`` -1.

Return shapes are the device's: ``getState()`` is a tuple of two **lists** (voice, data),
``getCellInfo()`` a tuple of three lists of tuples, failures are ``-1`` (an int). The
optional trailing ``simId`` must be 0 or 1 (else ``ValueError``). ``setCallback`` stores the
function; the PC's network never changes on its own, so it is not called.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import _devstate

# The serving cell (invented, in range): LTE TAC, ECI, PCI, EARFCN.
_TAC = 20941
_ECI = 253373185
_PCI = 168
_EARFCN = 1650
#: The EC600N reports the MCC hex-coded: 460 -> 0x460 = 1120.
_MCC_HEX = 0x460
_MNC = 1
_RAT_LTE = 7
_OPERATOR = ("CHN-UNICOM", "UNICOM", "460", "01")

_config = [5, False]
_apn: dict[tuple[int, int], tuple[int, str, str, str, int]] = {}
_callback: Callable[[Any], Any] | None = None


def _check_sim(sim_id: Any) -> None:
    if isinstance(sim_id, bool) or not isinstance(sim_id, int):
        raise TypeError(f"can't convert {type(sim_id).__name__} to int")
    if sim_id not in (0, 1):
        raise ValueError("invalid value, simId should be in (0, 1)")


def _sim_only(args: tuple, name: str) -> None:
    if len(args) > 1:
        raise TypeError(f"{name}() takes at most 1 argument ({len(args)} given)")
    if args:
        _check_sim(args[0])


def _csq() -> int:
    return int(_devstate.identity()["csq"]) if _devstate.registered() else 99


def csqQueryPoll(*simId: int) -> int:
    """Signal quality 0..31, 99 when unknown (not registered)."""
    _sim_only(simId, "csqQueryPoll")
    return _csq()


def getState(*simId: int) -> tuple[list[int], list[int]]:
    """``([stat, lac, cid, rat, reject_cause, psc] voice, [...] data)``; stat 1 = home."""
    _sim_only(simId, "getState")
    if _devstate.registered():
        entry = [1, _TAC, _ECI, _RAT_LTE, 0, 0]
    else:
        entry = [0, 0, 0, 10, 0, 0]
    return (list(entry), list(entry))


def getSignal(*args: int) -> tuple[list[int], list[int]]:
    """``([rssi, ber, rscp, ecno] GSM/WCDMA, [rssi, rsrp, rsrq, cqi(, sinr)] LTE)``."""
    if len(args) > 2:
        raise TypeError(f"getSignal() takes at most 2 arguments ({len(args)} given)")
    sinr = bool(args[0]) if args else False
    if len(args) == 2:
        _check_sim(args[1])
    csq = _csq()
    if csq == 99:
        lte = [99, 255, 255, 255]
    else:
        rssi = -113 + 2 * csq
        lte = [rssi, rssi - 25, -5 - (31 - csq) // 3, 255]
    if sinr:
        lte.append(18 if csq != 99 else 255)
    return ([99, 99, 255, 255], lte)


def getConfig(*simId: int) -> tuple[int, bool]:
    """``(net_mode, roaming)``: 5 = LTE only."""
    _sim_only(simId, "getConfig")
    return (_config[0], _config[1])


def setConfig(mode: int, roaming: Any = None, *simId: int) -> int:
    """Store the network mode (0..32) and roaming flag; 0, or -1 for a bad mode."""
    _sim_only(simId, "setConfig")
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"can't convert {type(mode).__name__} to int")
    if not 0 <= mode <= 32:
        return -1
    _config[0] = mode
    if roaming is not None:
        _config[1] = bool(roaming)
    return 0


def getNetMode(*simId: int) -> tuple[int, str, str, int] | int:
    """``(selection 0 auto, mcc, mnc, act)``; -1 when not registered."""
    _sim_only(simId, "getNetMode")
    if not _devstate.registered():
        return -1
    return (0, "460", "01", _RAT_LTE)


def getCellInfo(*args: int) -> tuple[list, list, list] | int:
    """``(gsm, umts, lte)``; LTE ``(flag, cid, mcc, mnc, pci, tac, earfcn, rssi, rsrq)``."""
    if len(args) > 1:
        raise TypeError(f"getCellInfo() takes at most 1 argument ({len(args)} given)")
    if not _devstate.registered():
        return ([], [], [])
    rssi = -113 + 2 * _csq()
    return ([], [], [(0, _ECI, _MCC_HEX, _MNC, _PCI, _TAC, _EARFCN, rssi - 14, -8)])


def _cells(index: int, simId: tuple) -> list[int] | int:
    _sim_only(simId, "get")
    if not _devstate.registered():
        return -1
    return [cell[index] for cell in getCellInfo()[2]]  # type: ignore[index]


def getCi(*simId: int) -> list[int] | int:
    """Cell ids of all cells, -1 when not registered."""
    return _cells(1, simId)


def getLac(*simId: int) -> list[int] | int:
    """Location (tracking) area codes of all cells."""
    return _cells(5, simId)


def getMcc(*simId: int) -> list[int] | int:
    """MCCs of all cells (hex-coded, as the EC600N reports them)."""
    return _cells(2, simId)


def getMnc(*simId: int) -> list[int] | int:
    """MNCs of all cells."""
    return _cells(3, simId)


def _serving(index: int, simId: tuple) -> int:
    cells = _cells(index, simId)
    return cells[0] if isinstance(cells, list) and cells else -1


def getServingCi(*simId: int) -> int:
    """The serving cell's id, -1 when not registered."""
    return _serving(1, simId)


def getServingLac(*simId: int) -> int:
    """The serving cell's TAC."""
    return _serving(5, simId)


def getServingMcc(*simId: int) -> int:
    """The serving cell's MCC (hex-coded)."""
    return _serving(2, simId)


def getServingMnc(*simId: int) -> int:
    """The serving cell's MNC."""
    return _serving(3, simId)


def operatorName(*simId: int) -> tuple[str, str, str, str] | int:
    """``(long name, short name, mcc, mnc)``; -1 unless registered."""
    _sim_only(simId, "operatorName")
    return _OPERATOR if _devstate.registered() else -1


def nitzTime() -> tuple[str, int, int] | int:
    """``('yy/mm/dd hh:mm:ss zone 0', unix_seconds, leap)`` from the device clock."""
    if not _devstate.registered():
        return -1
    import utime

    now = utime.time()
    t = time.gmtime(now)
    text = time.strftime("%y/%m/%d %H:%M:%S", t) + f" {utime.getTimeZone()} 0"
    return (text, now, 0)


def getModemFun() -> int:
    """The radio level: 1 full, 0 minimum, 4 airplane."""
    return _devstate.modem_fun


def setModemFun(fun: int, rst: int = 0) -> int:
    """Set the radio level (0, 1 or 4); 0 and 4 take the network down until 1.

    ``rst=1`` restarts the device: the run ends with exit status 3.
    """
    if isinstance(fun, bool) or not isinstance(fun, int):
        raise TypeError(f"can't convert {type(fun).__name__} to int")
    if fun not in (0, 1, 4) or rst not in (0, 1):
        return -1
    _devstate.set_modem_fun(fun)
    if rst == 1:
        import misc

        misc.Power.powerRestart()
    return 0


def _default_apn() -> tuple[int, str, str, str, int]:
    return (0, _devstate.identity()["apn"], "", "", 0)


def setApn(*args: Any) -> int:
    """``setApn(apn, simid)`` or ``setApn(pid, iptype, apn, user, pwd, auth, simid)``; 0."""
    if len(args) == 2:
        apn, sim_id = args
        _check_sim(sim_id)
        if not isinstance(apn, str):
            raise TypeError("apn must be str")
        _apn[(1, sim_id)] = (0, apn, "", "", 0)
        return 0
    if len(args) == 7:
        pid, iptype, apn, user, pwd, auth, sim_id = args
        _check_sim(sim_id)
        if not isinstance(pid, int) or not 1 <= pid <= 8:
            raise ValueError("invalid value, pid should be in [1, 8]")
        if not all(isinstance(v, str) for v in (apn, user, pwd)):
            raise TypeError("apn, user and pwd must be str")
        if iptype not in (0, 1, 2) or auth not in (0, 1, 2, 3):
            return -1
        _apn[(pid, sim_id)] = (iptype, apn, user, pwd, auth)
        return 0
    raise ValueError("invalid arguments: setApn(apn, simid) or setApn(pid, iptype, apn, ...)")


def getApn(*args: int) -> str | tuple[int, str, str, str, int]:
    """``getApn(simid)`` -> the APN; ``getApn(pid, simid)`` -> ``(iptype, apn, user, ...)``."""
    if len(args) == 1:
        _check_sim(args[0])
        return _apn.get((1, args[0]), _default_apn())[1]
    if len(args) == 2:
        pid, sim_id = args
        _check_sim(sim_id)
        if not isinstance(pid, int) or not 1 <= pid <= 8:
            raise ValueError("invalid value, pid should be in [1, 8]")
        return _apn.get((pid, sim_id), _default_apn())
    raise ValueError("invalid arguments: getApn(simid) or getApn(pid, simid)")


def setCallback(fn: Callable[[Any], Any] | None) -> int:
    """Store the network-event callback (the PC's network never calls it); 0."""
    global _callback
    if fn is not None and not callable(fn):
        raise TypeError("callback must be callable")
    _callback = fn
    return 0
