"""The "Use Socket" tutorial (QuecPython, Grey.TU 2022-03-03), runnable on a PC.

Performs the tutorial's six steps literally, against HOST PORT from the command line
(default 127.0.0.1 34187):

    python examples/use_socket.py [HOST [PORT]]

Step 2 calls ``getaddrinfo`` on the socket *instance*, exactly as the tutorial writes it;
on a device that is an AttributeError, so usocket-rs warns once
(``DeviceCompatibilityWarning``) and delegates to ``usocket.getaddrinfo``.
"""

import sys

import usocket


def main(host="127.0.0.1", port=34187):
    # 1. Import usocket and create a socket
    socket = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    # 2. DNS
    socketinfo = socket.getaddrinfo(host, port)[0][-1]
    # 3. Create the connection to server
    socket.connect(socketinfo)
    # 4. Module uploading data
    ret = socket.send("1234567890\r\n")
    print("send %d bytes" % ret)  # noqa: UP031 (the tutorial's own code)
    # 5. Server sending data
    data = socket.recv(1024)
    print("recv %s bytes:" % len(data))  # noqa: UP031
    print(data.decode())
    # 6. Close a socket
    socket.close()


if __name__ == "__main__":
    argv = sys.argv[1:]
    main(argv[0] if argv else "127.0.0.1", int(argv[1]) if len(argv) > 1 else 34187)
