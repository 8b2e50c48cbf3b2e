"""A client that reconnects after the server drops it: `getsocketsta` and `TCP_KEEPALIVE`.

The pattern of DTU code: resolve the server's name, connect a *new* socket each time (a
second `connect()` on the same socket fails on the device), enable TCP keep-alive
(`TCP_KEEPALIVE`, in minutes), read with a timeout and send a heartbeat whenever the line
has been quiet for that long (`e.args[0] == 110`), and when the server closes the
connection report the TCP state (`getsocketsta()`), close, back off and connect again.
It stops after SESSIONS sessions, or with status 1 after MAX_FAILURES failed connects.

    usocket-run --strict-map --map iot.example.com:37984=127.0.0.1:7000 examples/device_reconnect.py [SESSIONS]
"""

# Device firmware of 2021 (MicroPython 1.13) has no f-strings: keep %-formatting.
# ruff: noqa: UP031

import log
import usocket
import usys
import utime

SERVER_HOST = "iot.example.com"
SERVER_PORT = 37984
SESSIONS = 3
HEARTBEAT_S = 0.3
MAX_FAILURES = 10

log.basicConfig(level=log.INFO)
logger = log.getLogger("reconnect")


def connect():
    addr = usocket.getaddrinfo(SERVER_HOST, SERVER_PORT)[0][-1]
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    sock.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, 1)
    sock.settimeout(5)
    sock.connect(addr)
    sock.settimeout(HEARTBEAT_S)
    return sock


def session(number, sock):
    """Talk to the server until it drops the connection."""
    print("session %d: connected, state %d" % (number, sock.getsocketsta()))
    sock.send("hello %d\n" % number)
    while True:
        try:
            data = sock.recv(256)
        except OSError as e:
            if e.args[0] == 110:
                sock.send("heartbeat\n")
                continue
            print("session %d: server dropped us (%s), state %d" % (number, e, sock.getsocketsta()))
            return
        if not data:
            print("session %d: server dropped us, state %d" % (number, sock.getsocketsta()))
            return
        for line in data.decode().split("\n"):
            if line:
                print("session %d: got %s" % (number, line))


def main():
    sessions = int(usys.argv[1]) if len(usys.argv) > 1 else SESSIONS
    failures = 0
    backoff_ms = 100
    done = 0
    while done < sessions:
        try:
            sock = connect()
        except OSError as e:
            failures += 1
            logger.warning("connect failed (%s), retry in %d ms" % (e, backoff_ms))
            if failures >= MAX_FAILURES:
                logger.error("giving up")
                usys.exit(1)
            utime.sleep_ms(backoff_ms)
            backoff_ms = min(backoff_ms * 2, 2000)
            continue
        done += 1
        backoff_ms = 100
        session(done, sock)
        sock.close()
        print("session %d: closed, state %d" % (done, sock.getsocketsta()))
        utime.sleep_ms(backoff_ms)
    print("done after %d sessions" % done)


main()
