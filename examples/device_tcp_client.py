"""A TCP client with a reader thread: the pattern of Quectel's "Use Socket" tutorial.

The main thread connects and uploads a few lines; a `_thread` thread blocks in `recv()`
and prints what the server sends until the server closes the connection (the first read
after the server's FIN raises `OSError(107)` on the device), then closes the socket, but
only once the main thread has let go of the `sending` lock: closing a socket while another
thread is still inside `send()` on it makes that call fail with `OSError(9)`. The main
script returns right after sending: as on the device, the run goes on while the reader
thread is alive.

The server address is hard-coded, as in real device scripts. On a PC, point it at a local
server without editing the file:

    usocket-run --strict-map --map 112.125.89.8:37982=127.0.0.1:7000 examples/device_tcp_client.py

or pass HOST PORT as arguments:
`usocket-run --strict-map examples/device_tcp_client.py 127.0.0.1 7000`.
"""

# Device firmware of 2021 (MicroPython 1.13) has no f-strings: keep %-formatting.
# ruff: noqa: UP031

import _thread

import checkNet
import log
import usocket
import usys
import utime

SERVER_HOST = "112.125.89.8"
SERVER_PORT = 37982
MESSAGES = 3

log.basicConfig(level=log.INFO)
logger = log.getLogger("tcp_client")
#: Held by the main thread while it sends: the reader closes the socket only after that.
sending = _thread.allocate_lock()


def reader(sock):
    """Print each line the server sends until it closes the connection."""
    pending = b""
    while True:
        try:
            data = sock.recv(1024)
        except OSError as e:
            logger.info("reader ends: %s" % e)
            break
        if not data:
            logger.info("reader ends: connection closed")
            break
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            # One write per line: print() writes the text and the newline separately,
            # so lines printed by two threads at once could interleave.
            usys.stdout.write("recv: %s\n" % line.decode().strip())
    with sending:
        sock.close()


def main():
    stage, state = checkNet.waitNetworkReady(30)
    if (stage, state) != (3, 1):
        logger.error("network not ready: stage %d, state %d" % (stage, state))
        return
    host, port = SERVER_HOST, SERVER_PORT
    if len(usys.argv) >= 3:
        host, port = usys.argv[1], int(usys.argv[2])

    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    addr = usocket.getaddrinfo(host, port)[0][-1]
    sock.connect(addr)
    logger.info("connected to %s:%d" % (addr[0], addr[1]))
    sending.acquire()
    _thread.start_new_thread(reader, (sock,))

    for i in range(1, MESSAGES + 1):
        sent = sock.send("hello %d\r\n" % i)
        usys.stdout.write("send %d bytes\n" % sent)
        utime.sleep_ms(20)
    sending.release()


main()
