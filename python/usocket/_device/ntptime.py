"""QuecPython's ``ntptime`` (SNTP client) for device scripts run by ``usocket-run``.

* ``host``: the server, ``'ntp.aliyun.com'`` by default; assign it or call ``sethost(h)``
  (0, or -1 for None).
* ``time()``: asks ``host`` on UDP port 123 (a 48-byte SNTP query) and returns the server's
  time in **seconds since 2000-01-01 UTC**, as the device does. When a try fails (no answer
  within 10 s, an error, or a reply that is not a valid SNTP answer), ``host`` moves to the
  next of ``pool.ntp.org``, ``asia.pool.ntp.org``, ``cn.ntp.org.cn`` and it tries again
  (4 tries; ``host`` stays changed). All failing: ``OSError('Server connection failed!')``.
* ``settime(timezone=0)``: ``-1`` for a zone outside -12..12; else sets the device clock
  (what ``utime.time()`` and ``machine.RTC`` read; never the PC's clock) to the server's
  UTC and the ``utime`` zone to ``timezone``, and returns 0. ``time()``'s ``OSError``
  propagates.

The query goes through ``usocket``, so the runner's ``--map`` rules apply to it. The
per-try timeout is ``TIMEOUT_S`` (10, as on the device; a PC-only setting).
"""

from __future__ import annotations

import struct

import usocket
import utime

host = "ntp.aliyun.com"
#: The servers tried after ``host``, in order.
FALLBACK_HOSTS = ("pool.ntp.org", "asia.pool.ntp.org", "cn.ntp.org.cn")
#: Seconds to wait for each answer.
TIMEOUT_S = 10
NTP_PORT = 123
#: NTP (1900) to 2000-01-01 and to 1970-01-01, in seconds.
NTP_TO_2000 = 3155673600
NTP_TO_UNIX = 2208988800
_QUERY = b"\x1b" + bytes(47)


def sethost(h: str | None) -> int:
    """Use server ``h`` from now on; 0, or -1 when ``h`` is None."""
    global host
    if h is None:
        return -1
    if not isinstance(h, str):
        raise TypeError(f"host must be str, not {type(h).__name__}")
    host = h
    return 0


def _ask(server: str) -> float:
    """One SNTP exchange: the server's transmit time as NTP seconds (float)."""
    addr = usocket.getaddrinfo(server, NTP_PORT)[0][-1]
    s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    try:
        s.settimeout(TIMEOUT_S)
        s.connect(addr)
        s.send(_QUERY)
        reply = s.recv(48)
    finally:
        s.close()
    if len(reply) < 48:
        raise ValueError(f"short SNTP reply ({len(reply)} bytes)")
    mode, stratum = reply[0] & 0x07, reply[1]
    seconds, fraction = struct.unpack("!II", reply[40:48])
    if mode not in (4, 5) or stratum == 0 or seconds == 0:
        raise ValueError("not a valid SNTP answer")
    return seconds + fraction / 2**32


def _server_time() -> float:
    global host
    tries = 1 + len(FALLBACK_HOSTS)
    for attempt in range(tries):
        try:
            return _ask(host)
        except (OSError, ValueError, IndexError):
            if attempt == tries - 1:
                break
            try:
                index = FALLBACK_HOSTS.index(host) + 1
            except ValueError:
                index = 0
            host = FALLBACK_HOSTS[index % len(FALLBACK_HOSTS)]
    raise OSError("Server connection failed!")


def time() -> int:
    """The server's time in seconds since 2000-01-01 UTC."""
    return int(_server_time()) - NTP_TO_2000


def settime(timezone: int = 0) -> int:
    """Set the device clock from the server and the zone to ``timezone``; 0 or -1."""
    if isinstance(timezone, bool) or not isinstance(timezone, int):
        raise TypeError(f"can't convert {type(timezone).__name__} to int")
    if not -12 <= timezone <= 12:
        return -1
    ntp = _server_time()
    utime._set_device_time(ntp - NTP_TO_UNIX)
    utime.setTimeZone(timezone)
    return 0
