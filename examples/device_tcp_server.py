"""A TCP server on the module: `IPPROTO_TCP_SER`, a thread per client, 3-tuple `accept()`.

The server binds to the module's own address (`dataCall.getInfo(1, 0)[2][2]`; on a PC
the runner reports 127.0.0.1), accepts MAX_CLIENTS clients and serves each one in its own
`_thread` thread, sending back every chunk it receives in upper case until the client
disconnects. The main script returns after the last accept; the run ends when the last
client thread does.

    usocket-run --strict-map examples/device_tcp_server.py [PORT [MAX_CLIENTS]]
"""

# Device firmware of 2021 (MicroPython 1.13) has no f-strings: keep %-formatting.
# ruff: noqa: UP031

import _thread

import checkNet
import dataCall
import log
import usocket
import usys

PORT = 8000
MAX_CLIENTS = 2

log.basicConfig(level=log.INFO)
logger = log.getLogger("tcp_server")


def serve_client(conn, ip, port):
    """Echo upper-cased data back to one client until it goes away."""
    logger.info("client %s:%d connected" % (ip, port))
    while True:
        try:
            data = conn.recv(1024)
        except OSError as e:
            logger.info("client %s:%d gone: %s" % (ip, port, e))
            break
        if not data:
            logger.info("client %s:%d gone" % (ip, port))
            break
        conn.send(data.upper())
    conn.close()


def main():
    port = int(usys.argv[1]) if len(usys.argv) > 1 else PORT
    max_clients = int(usys.argv[2]) if len(usys.argv) > 2 else MAX_CLIENTS
    if checkNet.waitNetworkReady(30) != (3, 1):
        logger.error("network not ready")
        return
    ip = dataCall.getInfo(1, 0)[2][2]

    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM, usocket.IPPROTO_TCP_SER)
    sock.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(5)
    print("listening on %s:%d" % (ip, port))

    for _ in range(max_clients):
        conn, client_ip, client_port = sock.accept()
        _thread.start_new_thread(serve_client, (conn, client_ip, client_port))
    sock.close()
    print("accepted %d clients, listener closed" % max_clients)


main()
