"""MicroPython's ``uerrno`` for device scripts run by ``usocket-run``.

The names of MicroPython's errno table with their Linux values (the numbers usocket
raises), and ``errorcode`` mapping each number back to its name.
"""

EPERM = 1
ENOENT = 2
EIO = 5
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EEXIST = 17
ENODEV = 19
EISDIR = 21
EINVAL = 22
EOPNOTSUPP = 95
EADDRINUSE = 98
ECONNABORTED = 103
ECONNRESET = 104
ENOBUFS = 105
ENOTCONN = 107
ETIMEDOUT = 110
ECONNREFUSED = 111
EHOSTUNREACH = 113
EALREADY = 114
EINPROGRESS = 115

#: Number -> name, e.g. ``errorcode[110] == 'ETIMEDOUT'``.
errorcode = {value: name for name, value in sorted(globals().items()) if name.startswith("E")}
