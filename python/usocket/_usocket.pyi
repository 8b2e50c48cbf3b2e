"""Type stubs for ``usocket._usocket``, the Rust extension behind ``usocket``.

Names starting with an underscore are private hooks for the rest of usocket-rs (the
script runner and the companion modules), not part of the device API.
"""

from collections.abc import Callable, Sequence
from typing import final

from typing_extensions import Buffer, TypeAlias

__all__ = [
    "DeviceCompatibilityWarning",
    "SSLSocket",
    "_clear_thread_stop",
    "_constants",
    "_events_loop",
    "_get_profile",
    "_request_thread_stop",
    "_reset_warnings",
    "_set_address_guard",
    "_set_address_map",
    "_set_profile",
    "_ssl_wrap",
    "getaddrinfo",
    "inet_ntop",
    "inet_pton",
    "socket",
]

_Address: TypeAlias = tuple[str, int] | list[str | int]
_Data: TypeAlias = Buffer | str

class DeviceCompatibilityWarning(UserWarning):
    """Something worked on the PC that fails on a real QuecPython device."""

@final
class socket:
    """A QuecPython socket: TCP or UDP, IPv4 or IPv6, and a byte stream itself."""

    def __new__(cls, af: int = 2, type: int = 1, proto: int = 0, /) -> socket: ...
    def close(self) -> None: ...
    def bind(self, address: _Address, /) -> None: ...
    def listen(self, backlog: int | None = None, /) -> None: ...
    def accept(self) -> tuple[socket, str, int] | tuple[socket, tuple[str, int]]:
        """``(conn, ip, port)``; ``(conn, (ip, port))`` in the micropython profile."""
    def connect(self, address: _Address, /) -> None: ...
    def send(self, data: _Data, flags: int | None = None, /) -> int:
        """``flags`` only in the micropython profile (TypeError otherwise)."""
    def sendall(self, data: _Data, /) -> None: ...
    def sendto(
        self, data: _Data, flags_or_address: int | _Address, address: _Address | None = None, /
    ) -> int:
        """``sendto(data, address)``; ``sendto(data, flags, address)`` in micropython."""
    def recv(self, bufsize: int, flags: int | None = None, /) -> bytes: ...
    def recvfrom(
        self, bufsize: int, flags: int | None = None, /
    ) -> tuple[bytes, tuple[str, int]]: ...
    def read(self, size: int | None = None, /) -> bytes | None: ...
    def readinto(self, buf: Buffer, nbytes: int | None = None, /) -> int | None: ...
    def readline(self, limit: int | None = None, /) -> bytes | None: ...
    def write(
        self, buf: _Data, off_or_len: int | None = None, max_len: int | None = None, /
    ) -> int | None: ...
    def makefile(self, *args: object) -> socket: ...
    def fileno(self) -> int: ...
    def setblocking(self, flag: object, /) -> None: ...
    def settimeout(self, value: float | None, /) -> None: ...
    def setsockopt(
        self,
        level: int,
        optname: int,
        value: int | Buffer | Callable[[socket], object] | None,
        /,
    ) -> None:
        """Set an option; option 20 with a callable registers ``callback(sock)``, called
        from one background thread whenever the socket is readable (None unregisters)."""
    def getsocketsta(self) -> int:
        """lwIP TCP state 0-10, 0 for UDP, -1 after close (absent in micropython)."""
    def getaddrinfo(self, *args: object) -> list[tuple[int, int, int, str, tuple[str, int]]]:
        """The tutorial's instance call; warns once (DeviceCompatibilityWarning)."""

def getaddrinfo(
    host: str,
    port: int | str,
    af: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
    /,
) -> list[tuple[int, int, int, str, tuple[str, int]]]: ...
def inet_pton(af: int, text: str, /) -> bytes:
    """Exported by ``usocket`` in the micropython profile only."""

def inet_ntop(af: int, packed: Buffer, /) -> str:
    """Exported by ``usocket`` in the micropython profile only."""

# Private hooks.
def _set_profile(name: str) -> None:
    """Switch the process-wide profile (use ``usocket._apply_profile``, which also
    rebuilds the module namespace). Unknown names raise ValueError."""

def _get_profile() -> str:
    """The current profile: 'quecpython', 'legacy' or 'micropython'."""

def _constants(name: str) -> list[tuple[str, int]]:
    """The module constants of profile ``name``."""

def _request_thread_stop(ident: int) -> None:
    """Mark thread ``ident`` (threading.get_ident()): its blocking usocket calls, running
    or later, raise SystemExit within ~100 ms until ``_clear_thread_stop(ident)``."""

def _clear_thread_stop(ident: int) -> None:
    """Remove thread ``ident``'s stop mark."""

def _set_address_map(rules: Sequence[tuple[str, int | None, str, int | None]]) -> None:
    """Replace the address-map rules (from_host, from_port, to_host, to_port), applied in
    getaddrinfo/connect/sendto before resolution; host matched case-insensitively,
    from_port None matches any port, to_port None keeps the port; each rule's first use is
    announced once on stderr. An empty list clears the map."""

def _set_address_guard(mode: str) -> None:
    """What connect/sendto do with a non-loopback address no map rule covers: 'off'
    (nothing), 'warn' (one warning per destination on stderr) or 'strict' (refused with
    OSError(113)); other names raise ValueError."""

def _reset_warnings() -> None:
    """Forget which DeviceCompatibilityWarnings were given (for tests)."""

def _events_loop() -> None:
    """The readable-callback dispatcher (runs forever on the ``usocket-events`` thread)."""

@final
class SSLSocket:
    """A TLS stream over a usocket.socket, as ussl.wrap_socket returns it."""

    def read(self, size: int | None = None, /) -> bytes | None: ...
    def readinto(self, buf: Buffer, nbytes: int | None = None, /) -> int | None: ...
    def readline(self, limit: int | None = None, /) -> bytes | None: ...
    def write(self, buf: _Data, length: int | None = None, /) -> int | None: ...
    def send(self, data: _Data, /) -> int: ...
    def recv(self, bufsize: int, /) -> bytes: ...
    def settimeout(self, value: float | None, /) -> None: ...
    def setblocking(self, flag: object, /) -> None: ...
    def getsocketsta(self) -> int: ...
    def getpeercert(self, binary_form: object, /) -> bytes | None: ...
    def close(self) -> None: ...
    def _version(self) -> str | None: ...

def _ssl_wrap(
    sock: socket,
    server_side: bool,
    key: str | Buffer | None,
    cert: str | Buffer | None,
    ca: str | Buffer | None,
    server_hostname: str | None,
    do_handshake: bool,
    verify_without_ca: bool,
    tls13: bool,
) -> SSLSocket:
    """ussl.wrap_socket's checked arguments: TLS over sock (handshake now when
    do_handshake); ValueError for bad PEM, OSError for a failed handshake."""
