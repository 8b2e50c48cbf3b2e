"""A UDP server and client pair, one script with two roles.

    usocket-run --strict-map examples/device_udp.py server [PORT [COUNT]]
    usocket-run --strict-map --map 112.125.89.8:37983=127.0.0.1:PORT examples/device_udp.py client [COUNT]

The server binds the module's address (`dataCall.getInfo`), answers COUNT datagrams with
`ack <data>` to whoever sent them and exits. The client sends COUNT pings straight to the
hard-coded SERVER address with `sendto` (no getaddrinfo: `sendto` takes a numeric IPv4
address on the device) and prints each reply; `--map` redirects it on a PC.
"""

# Device firmware of 2021 (MicroPython 1.13) has no f-strings: keep %-formatting.
# ruff: noqa: UP031

import dataCall
import log
import usocket
import usys

SERVER_HOST = "112.125.89.8"
SERVER_PORT = 37983
COUNT = 3

log.basicConfig(level=log.INFO)
logger = log.getLogger("udp")


def server(port, count):
    ip = dataCall.getInfo(1, 0)[2][2]
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    sock.bind((ip, port))
    print("udp server on %s:%d" % (ip, port))
    for _ in range(count):
        data, addr = sock.recvfrom(1024)
        print("from %s:%d: %s" % (addr[0], addr[1], data.decode()))
        sock.sendto(b"ack " + data, addr)
    sock.close()


def client(count):
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
    sock.settimeout(5)
    for i in range(1, count + 1):
        sock.sendto("ping %d" % i, (SERVER_HOST, SERVER_PORT))
        try:
            data, _addr = sock.recvfrom(1024)
        except OSError as e:
            logger.error("no reply to ping %d: %s" % (i, e))
            usys.exit(1)
        print("reply: %s" % data.decode())
    sock.close()


def main():
    role = usys.argv[1] if len(usys.argv) > 1 else "client"
    if role == "server":
        port = int(usys.argv[2]) if len(usys.argv) > 2 else SERVER_PORT
        count = int(usys.argv[3]) if len(usys.argv) > 3 else COUNT
        server(port, count)
    elif role == "client":
        client(int(usys.argv[2]) if len(usys.argv) > 2 else COUNT)
    else:
        print("usage: device_udp.py server [PORT [COUNT]] | client [COUNT]")
        usys.exit(2)


main()
