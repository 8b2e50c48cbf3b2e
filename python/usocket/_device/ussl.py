"""QuecPython's ``ussl`` for device scripts run by ``usocket-run``: TLS over a usocket.

``wrap_socket(sock, *, server_side=False, key=None, cert=None, ca=None,
server_hostname=None, do_handshake=True)`` returns an ``SSLSocket`` with ``read``,
``readinto``, ``readline``, ``write``, ``recv``, ``send``, ``settimeout``, ``setblocking``,
``getsocketsta``, ``getpeercert(True)`` and ``close``. The TLS itself is Rust (rustls) in
the same engine as ``usocket``, so blocking, timeouts, non-blocking calls, the FIN rule and
errno values are the socket's.

Device rules kept here:

* Keys and certificates are PEM text (``str`` or ``bytes``), never file names.
* Without ``ca`` nothing is verified (``server_hostname`` is only sent as SNI). With
  ``ca`` the server's chain must verify, and its name too when ``server_hostname`` is given.
* Bad PEM raises ``ValueError('invalid key' | 'invalid cert' | 'invalid ca')``; a failed
  handshake raises ``OSError`` with mbedTLS's negative code (``-9984``: certificate verify
  failed, ``-30592``: fatal alert from the peer); socket failures keep their errno.
* TLS 1.2 only, as the device's mbedTLS.

PC-only switches, read at each ``wrap_socket`` call:

* ``USOCKET_SSL_STRICT=1`` verifies the server even without ``ca``, against the system's
  trusted roots (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured). Never the default.
* ``USOCKET_SSL_TLS13=1`` offers TLS 1.3 as well.

In the ``micropython`` profile ``wrap_socket`` also takes upstream's ``cert_reqs``
(``CERT_NONE``/``CERT_OPTIONAL``/``CERT_REQUIRED``), ``cadata`` (PEM or DER) and
``ca_certs`` (a PEM file name), and the module has the ``CERT_*`` constants.
"""

from __future__ import annotations

import os
from typing import Any

from usocket import _usocket

SSLSocket = _usocket.SSLSocket

_CERT_CONSTANTS = {"CERT_NONE": 0, "CERT_OPTIONAL": 1, "CERT_REQUIRED": 2}
_UPSTREAM_KEYWORDS = ("cert_reqs", "cadata", "ca_certs")


def __getattr__(name: str) -> int:
    if name in _CERT_CONSTANTS and _usocket._get_profile() == "micropython":
        return _CERT_CONSTANTS[name]
    raise AttributeError(f"module 'ussl' has no attribute '{name}'")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _upstream_ca(options: dict[str, Any], ca: Any) -> tuple[Any, bool]:
    """Applies upstream MicroPython's ``cert_reqs``/``cadata``/``ca_certs``: the CA data
    and whether to verify without any (``CERT_REQUIRED`` alone uses the system roots)."""
    cert_reqs = options.get("cert_reqs", 0)
    if not isinstance(cert_reqs, int) or cert_reqs not in (0, 1, 2):
        raise ValueError("cert_reqs must be CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED")
    cadata = options.get("cadata")
    ca_certs = options.get("ca_certs")
    if ca_certs is not None:
        if not isinstance(ca_certs, str):
            raise TypeError("ca_certs must be a file name (str)")
        with open(ca_certs, "rb") as f:
            cadata = f.read()
    if ca is None and cadata is not None and cert_reqs == 2:
        ca = cadata  # upstream verifies only under CERT_REQUIRED
    return ca, cert_reqs == 2 and ca is None


def wrap_socket(
    sock: Any,
    *,
    server_side: bool = False,
    key: str | bytes | None = None,
    cert: str | bytes | None = None,
    ca: str | bytes | None = None,
    server_hostname: str | None = None,
    do_handshake: bool = True,
    **upstream: Any,
) -> Any:
    """Wraps the connected (or accepted) usocket ``sock`` in TLS; see the module doc."""
    verify = _flag("USOCKET_SSL_STRICT")
    if upstream:
        unknown = [k for k in upstream if k not in _UPSTREAM_KEYWORDS]
        if unknown or _usocket._get_profile() != "micropython":
            bad = unknown[0] if unknown else next(iter(upstream))
            raise TypeError(f"wrap_socket() got an unexpected keyword argument '{bad}'")
        ca, required = _upstream_ca(upstream, ca)
        verify = verify or required
    if key is not None and cert is None:
        raise TypeError("wrap_socket(): key given without cert")
    if server_side and (key is None or cert is None):
        raise TypeError("wrap_socket(): server_side=True needs key and cert")
    return _usocket._ssl_wrap(
        sock,
        bool(server_side),
        key,
        cert,
        ca,
        server_hostname,
        bool(do_handshake),
        verify,
        _flag("USOCKET_SSL_TLS13"),
    )
