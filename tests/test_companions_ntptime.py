"""ntptime through usocket-run against an SNTP responder on UDP loopback (--map points the
device's NTP host names at it)."""

from __future__ import annotations

import calendar
import socket
import struct
import textwrap
import threading
from pathlib import Path

from runner_support import free_port, run_device, write_script

NTP_TO_UNIX = 2208988800
#: What the responder says it is: 2030-01-01 00:00:00 UTC.
SERVER_UNIX = calendar.timegm((2030, 1, 1, 0, 0, 0, 0, 0, 0))
SECONDS_SINCE_2000 = SERVER_UNIX - calendar.timegm((2000, 1, 1, 0, 0, 0, 0, 0, 0))


class NtpResponder:
    """Answers SNTP queries on 127.0.0.1 with SERVER_UNIX, in a thread, until closed."""

    def __init__(self, reply: bytes | None = None, silent: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: list[bytes] = []
        self._reply = reply
        self._silent = silent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _answer(self) -> bytes:
        if self._reply is not None:
            return self._reply
        # LI 0, version 4, mode 4 (server); stratum 2; transmit time at bytes 40..48.
        head = bytes([0x24, 2, 6, 0xEC]) + bytes(36)
        return head + struct.pack("!II", SERVER_UNIX + NTP_TO_UNIX, 1 << 31)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries.append(data)
            if not self._silent:
                self.sock.sendto(self._answer(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def script(tmp_path: Path, source: str) -> str:
    return str(write_script(tmp_path, "main.py", textwrap.dedent(source)))


def maps(**ports: int) -> list[str]:
    """--map options sending each NTP host's port 123 to a loopback port."""
    names = {
        "aliyun": "ntp.aliyun.com",
        "pool": "pool.ntp.org",
        "asia": "asia.pool.ntp.org",
        "cn": "cn.ntp.org.cn",
    }
    args = []
    for key, port in ports.items():
        args += ["--map", f"{names[key]}:123=127.0.0.1:{port}"]
    return args


def test_time_and_settime_move_the_device_clock_not_the_pc_clock(tmp_path: Path) -> None:
    """time() is seconds since 2000; settime(8) sets utime (zone 8) and machine.RTC; the
    query is a 48-byte SNTP request starting 0x1B."""
    ntp = NtpResponder()
    path = script(
        tmp_path,
        """\
        import ntptime, utime, machine, time
        print(ntptime.host, ntptime.time())
        print(ntptime.settime(8), utime.getTimeZone())
        print(utime.localtime()[:4], machine.RTC().datetime()[:5])
        print(abs(utime.time() - time.time()) > 86400)
        """,
    )
    try:
        result = run_device(*maps(aliyun=ntp.port), path)
    finally:
        ntp.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"ntp.aliyun.com {SECONDS_SINCE_2000}",
        "0 8",
        "(2030, 1, 1, 8) (2030, 1, 1, 2, 8)",
        "True",
    ]
    assert len(ntp.queries) == 2
    assert all(len(q) == 48 and q[0] == 0x1B for q in ntp.queries)


def test_a_failing_server_moves_host_to_the_next_one(tmp_path: Path) -> None:
    """ntp.aliyun.com refused and pool.ntp.org answering garbage: host moves on until
    asia.pool.ntp.org answers, and stays there."""
    garbage = NtpResponder(reply=b"\x00\x01")
    good = NtpResponder()
    path = script(
        tmp_path,
        """\
        import ntptime
        print(ntptime.time(), ntptime.host)
        print(ntptime.time(), ntptime.host)
        """,
    )
    try:
        args = maps(aliyun=free_port(socket.SOCK_DGRAM), pool=garbage.port, asia=good.port)
        result = run_device(*args, path)
    finally:
        garbage.close()
        good.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{SECONDS_SINCE_2000} asia.pool.ntp.org\n{SECONDS_SINCE_2000} asia.pool.ntp.org\n"
    )
    assert len(garbage.queries) == 1
    assert len(good.queries) == 2


def test_a_server_that_never_answers_times_out_and_the_next_one_is_asked(
    tmp_path: Path,
) -> None:
    """A silent server: the try times out (shortened here through ntptime.TIMEOUT_S) and
    pool.ntp.org is asked next."""
    silent = NtpResponder(silent=True)
    good = NtpResponder()
    path = script(
        tmp_path,
        """\
        import ntptime
        ntptime.TIMEOUT_S = 0.5
        print(ntptime.time(), ntptime.host)
        """,
    )
    try:
        result = run_device(*maps(aliyun=silent.port, pool=good.port), path)
    finally:
        silent.close()
        good.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SECONDS_SINCE_2000} pool.ntp.org\n"
    assert (len(silent.queries), len(good.queries)) == (1, 1)


def test_all_servers_failing_and_bad_arguments(tmp_path: Path) -> None:
    """Four failures: OSError('Server connection failed!'); settime out of range -1 and
    the clock untouched; sethost(None) -1; a non-int zone TypeError."""
    closed = free_port(socket.SOCK_DGRAM)
    path = script(
        tmp_path,
        """\
        import ntptime
        try:
            ntptime.time()
        except OSError as e:
            print('OSError', e.args, ntptime.host)
        print(ntptime.settime(13), ntptime.settime(-13), ntptime.sethost(None))
        try:
            ntptime.settime('8')
        except TypeError as e:
            print('TypeError')
        print(ntptime.sethost('ntp.aliyun.com'), ntptime.host)
        """,
    )
    result = run_device(*maps(aliyun=closed, pool=closed, asia=closed, cn=closed), path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "OSError ('Server connection failed!',) cn.ntp.org.cn",
        "-1 -1 -1",
        "TypeError",
        "0 ntp.aliyun.com",
    ]
