"""QuecPython's ``umqtt`` for device scripts run by ``usocket-run``: an MQTT 3.1/3.1.1
client over ``usocket`` (and ``ussl`` for TLS), written to the device's documented API.

``from umqtt import MQTTClient``::

    c = MQTTClient(client_id, server, port=0, user=None, password=None, keepalive=0,
                   ssl=False, ssl_params={}, reconn=True, version=4)
    c.set_callback(lambda topic, msg: ...)    # both bytes
    c.connect()                               # 0; failures are ValueError('MQTT Connect ...')
    c.subscribe('t', qos=1)
    c.publish('t', 'hello', retain=False, qos=1)   # True/False, never raises
    c.wait_msg()                              # one packet; reconnects when reconn=True

As on the device: ``port=0`` means 8883 with ``ssl`` else 1883; ``keepalive`` must be 0 or at
least 5; topics, payloads and ``client_id`` may be ``str`` (sent as UTF-8) or ``bytes``; QoS
0 and 1 (QoS 1 waits up to 5 s for PUBACK); ``check_msg()`` returns ``None`` at once when
nothing is pending; ``get_mqttsta()`` maps the TCP state to 0 connected, 1 connecting,
2 closed by the server, -1 otherwise; ``error_register_cb(f)`` gets ``'reconnect_start'``,
``'reconnect_success'`` and, without ``reconn``, ``'Send ping timeout.'``.

With ``keepalive`` a background thread sends PINGREQ every ``keepalive - 3`` seconds
(checked every 5 s). PINGRESP is consumed by ``wait_msg``/``check_msg``; a ping still
unanswered at the next turn counts as a dead link: with ``reconn`` the socket is closed so
that ``wait_msg`` reconnects (and re-subscribes every topic), without it the error callback
is told. A broken connection found by ``wait_msg`` is handled the same way.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

import usocket

#: How often the keepalive thread looks at the link (seconds), as on the device.
KEEPALIVE_TICK_S = 5.0
#: How long QoS 1 publish and subscribe wait for their acknowledgement.
ACK_TIMEOUT_S = 5.0
#: The TCP connect timeout.
CONNECT_TIMEOUT_S = 20.0

_log: Any = None


def _logger() -> Any:
    global _log
    if _log is None:
        try:
            import log

            _log = log.getLogger("umqtt")
        except ImportError:  # outside the runner: plain stderr lines
            import sys

            class _Stderr:
                def warning(self, msg: str, *args: Any) -> None:
                    print("WARN:umqtt:" + (msg % args if args else msg), file=sys.stderr)

                info = error = warning

            _log = _Stderr()
    return _log


class MQTTException(Exception):
    """A protocol-level failure (e.g. the broker refused the connection)."""


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


class MQTTClient:
    """An MQTT client with the device's methods and return values (see the module doc)."""

    def __init__(
        self,
        client_id: str | bytes,
        server: str,
        port: int = 0,
        user: str | bytes | None = None,
        password: str | bytes | None = None,
        keepalive: int = 0,
        ssl: bool = False,
        ssl_params: dict[str, Any] | None = None,
        reconn: bool = True,
        version: int = 4,
        pingmaxnum: int = 0,
        manage: bool = False,
        ipvtype: int = 0,
    ) -> None:
        if not isinstance(server, str):
            raise TypeError("server must be str")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be 0..65535")
        if not isinstance(keepalive, int) or keepalive < 0 or 0 < keepalive < 5:
            raise ValueError("keepalive must be 0 or at least 5")
        if version not in (3, 4):
            raise ValueError("version must be 3 or 4")
        if ssl_params is not None and not isinstance(ssl_params, dict):
            raise TypeError("ssl_params must be a dict")
        self.client_id = _as_bytes(client_id, "client_id")
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.user = None if user is None else _as_bytes(user, "user")
        self.pswd = None if password is None else _as_bytes(password, "password")
        self.keepalive = keepalive
        self.ssl = bool(ssl)
        self.ssl_params = dict(ssl_params or {})
        self.reconn = bool(reconn)
        self.version = version
        self.pingmaxnum = max(0, int(pingmaxnum))
        self.ipvtype = ipvtype
        self.cb: Any = None
        self._err_cb: Any = None
        self.lw_topic: bytes | None = None
        self.lw_msg = b""
        self.lw_qos = 0
        self.lw_retain = False
        self.topics: dict[bytes, int] = {}
        self.pid = 0
        self._sock: Any = None
        self._connected = False
        self._clean_session = True
        self._disconnected = False
        self._write_lock = threading.Lock()
        self._read_lock = threading.RLock()  # a callback may publish with QoS 1
        self._acks = threading.Condition()
        self._acked: dict[int, int] = {}
        self._readers: set[int] = set()
        self._ping_outstanding = 0
        self._last_ping = 0.0
        self._keepalive_thread: threading.Thread | None = None

    # ------------------------------------------------------------ configuration

    def set_callback(self, f: Any) -> None:
        """``f(topic, msg)`` receives every PUBLISH (both ``bytes``)."""
        self.cb = f

    def error_register_cb(self, f: Any) -> None:
        """``f(err)`` is told about reconnects and keepalive failures (a ``str``)."""
        self._err_cb = f

    def set_last_will(
        self, topic: str | bytes, msg: str | bytes, retain: bool = False, qos: int = 0
    ) -> None:
        """The message the broker publishes if this client vanishes."""
        assert 0 <= qos <= 2
        topic_b = _as_bytes(topic, "topic")
        assert topic_b
        self.lw_topic = topic_b
        self.lw_msg = _as_bytes(msg, "msg")
        self.lw_qos = qos
        self.lw_retain = bool(retain)

    def _tell(self, err: str) -> None:
        if self._err_cb is not None:
            try:
                self._err_cb(err)
            except Exception as exc:  # noqa: BLE001 - a user callback must not kill us
                _logger().warning("error callback raised %r", exc)

    # ------------------------------------------------------------ wire helpers

    @property
    def sock(self) -> Any:
        """The connected socket (``AttributeError`` before ``connect()``)."""
        if self._sock is None:
            raise AttributeError("'MQTTClient' object has no attribute 'sock'")
        return self._sock

    def _send(self, data: bytes) -> None:
        with self._write_lock:
            sock = self.sock
            view = memoryview(data)
            while view:
                n = sock.write(view)
                if n is None:  # non-blocking and full: wait a little and retry
                    time.sleep(0.01)
                    continue
                view = view[n:]

    def _read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.read(n - len(out))
            if chunk is None:
                time.sleep(0.005)
                continue
            if not chunk:
                raise OSError(107)
            out += chunk
        return out

    def _read_length(self) -> int:
        n = 0
        shift = 0
        while True:
            b = self._read_exact(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 21:
                raise MQTTException("malformed remaining length")

    def _next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    # ------------------------------------------------------------ connect

    def _open(self) -> Any:
        # A resolver error fails at once; an empty answer is asked again (5 times).
        for _ in range(5):
            infos = usocket.getaddrinfo(self.server, self.port)
            if infos:
                break
            time.sleep(0.5)
        else:
            raise OSError(-202)
        family, kind, proto, _name, addr = infos[0]
        sock = usocket.socket(family, kind, proto)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(addr)
            if self.ssl:
                import ussl

                params = dict(self.ssl_params)
                params.setdefault("server_hostname", self.server)
                sock = ussl.wrap_socket(sock, **params)
        except BaseException:
            sock.close()
            raise
        return sock

    def _connect_packet(self, clean_session: bool) -> bytes:
        if self.version == 4:
            header = _string(b"MQTT") + b"\x04"
        else:
            header = _string(b"MQIsdp") + b"\x03"
        flags = 0x02 if clean_session else 0
        payload = _string(self.client_id)
        if self.lw_topic:
            flags |= 0x04 | (self.lw_qos << 3) | (0x20 if self.lw_retain else 0)
            payload += _string(self.lw_topic) + _string(self.lw_msg)
        if self.user is not None:
            flags |= 0x80
            payload += _string(self.user)
            if self.pswd is not None:
                flags |= 0x40
                payload += _string(self.pswd)
        body = header + bytes([flags]) + struct.pack("!H", self.keepalive) + payload
        return b"\x10" + _remaining_length(len(body)) + body

    def connect(self, clean_session: bool = True) -> int:
        """Connects (DNS, TCP, TLS when ``ssl``, CONNECT/CONNACK); returns 0. Every
        failure is ``ValueError('MQTT Connect error: ...')``."""
        self._clean_session = bool(clean_session)
        self._disconnected = False
        try:
            sock = self._open()
            old, self._sock = self._sock, sock
            if old is not None and old is not sock:
                old.close()
            self._connected = False
            self._send(self._connect_packet(clean_session))
            resp = self._read_exact(4)
            if resp[0] != 0x20 or resp[1] != 0x02:
                raise MQTTException("bad CONNACK " + resp.hex())
            if resp[3] != 0:
                if resp[3] == 4:
                    raise MQTTException(
                        "4: bad user name or password (the server FIN disconnected)"
                    )
                raise MQTTException(resp[3])
            sock.settimeout(None)
        except Exception as exc:
            if self._sock is not None:
                self._sock.close()
            raise ValueError(f"MQTT Connect error: {exc}") from exc
        self._connected = True
        self._ping_outstanding = 0
        self._last_ping = time.monotonic()
        self._start_keepalive()
        return 0

    # ------------------------------------------------------------ keepalive

    def _start_keepalive(self) -> None:
        if self.keepalive <= 0:
            return
        t = self._keepalive_thread
        if t is not None and t.is_alive():
            return
        t = threading.Thread(target=self._keepalive_loop, name="umqtt-keepalive", daemon=True)
        self._keepalive_thread = t
        t.start()

    def _keepalive_loop(self) -> None:
        retries = 0
        while not self._disconnected:
            deadline = time.monotonic() + KEEPALIVE_TICK_S
            while time.monotonic() < deadline:
                if self._disconnected:
                    return
                time.sleep(min(0.1, KEEPALIVE_TICK_S))
            if time.monotonic() - self._last_ping < self.keepalive - 3:
                continue
            if self._ping_outstanding:
                if not self.reconn:
                    self._tell("Send ping timeout.")
                    return
                if retries < self.pingmaxnum:
                    retries += 1
                else:
                    # The link is dead: end it so wait_msg reconnects.
                    _logger().warning("ping timeout, closing the connection")
                    if self._sock is not None:
                        self._sock.close()
                    return
            else:
                retries = 0
            try:
                self.ping()
            except OSError as exc:
                if not self.reconn:
                    self._tell(str(exc))
                    return

    def ping(self) -> None:
        """Sends PINGREQ; the answer is consumed by ``wait_msg``/``check_msg``."""
        self._send(b"\xc0\x00")
        self._ping_outstanding += 1
        self._last_ping = time.monotonic()

    # ------------------------------------------------------------ publish/subscribe

    def _wait_ack(self, pid: int, deadline: float) -> int | None:
        """The acknowledgement code for ``pid`` (read by us or by a wait_msg thread)."""
        me = threading.get_ident()
        while True:
            with self._acks:
                if pid in self._acked:
                    return self._acked.pop(pid)
                others_reading = bool(self._readers - {me})
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if others_reading:
                    self._acks.wait(min(left, 0.1))
                    continue
            if not self._read_lock.acquire(timeout=min(left, 0.1)):
                continue
            try:
                sock = self.sock
                sock.settimeout(max(left, 0.001))
                try:
                    self._handle_packet(blocking=True)
                except OSError as exc:
                    if exc.args and exc.args[0] == 110:
                        return None
                    raise
                finally:
                    if sock is self._sock:
                        sock.settimeout(None)
            finally:
                self._read_lock.release()

    def publish(
        self, topic: str | bytes, msg: str | bytes, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publishes ``msg``; ``True`` when sent (QoS 0) or acknowledged (QoS 1),
        ``False`` otherwise (QoS 2 is not supported). Never raises."""
        try:
            if qos not in (0, 1):
                _logger().warning("publish: QoS %s is not supported", qos)
                return False
            topic_b = _as_bytes(topic, "topic")
            msg_b = _as_bytes(msg, "msg")
            header = bytes([0x30 | (qos << 1) | (1 if retain else 0)])
            body = _string(topic_b)
            pid = 0
            if qos:
                pid = self._next_pid()
                body += struct.pack("!H", pid)
            body += msg_b
            self._send(header + _remaining_length(len(body)) + body)
            if not qos:
                return True
            code = self._wait_ack(pid, time.monotonic() + ACK_TIMEOUT_S)
            if code is None:
                _logger().warning("publish: no PUBACK for packet %d", pid)
                return False
            return True
        except Exception as exc:  # noqa: BLE001 - publish never raises on the device
            _logger().warning("publish failed: %r", exc)
            return False

    def _subscribe_packet(self, topic: bytes, qos: int) -> tuple[int, bytes]:
        pid = self._next_pid()
        body = struct.pack("!H", pid) + _string(topic) + bytes([qos])
        return pid, b"\x82" + _remaining_length(len(body)) + body

    def subscribe(self, topic: str | bytes, qos: int = 0) -> None:
        """Subscribes (remembered for re-subscription after a reconnect) and waits for
        SUBACK; a refusal is only logged. Needs ``set_callback`` first."""
        assert self.cb is not None, "Subscribe callback is not set"
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        topic_b = _as_bytes(topic, "topic")
        if not topic_b:
            raise ValueError("empty topic")
        self.topics[topic_b] = qos
        pid, packet = self._subscribe_packet(topic_b, qos)
        self._send(packet)
        code = self._wait_ack(pid, time.monotonic() + ACK_TIMEOUT_S)
        if code is None:
            _logger().warning("subscribe: no SUBACK for %r", topic_b)
        elif code == 0x80:
            _logger().warning("subscribe: the broker refused %r", topic_b)

    # ------------------------------------------------------------ receiving

    def _ack(self, pid: int, code: int) -> None:
        with self._acks:
            self._acked[pid] = code
            self._acks.notify_all()

    def _handle_packet(self, blocking: bool) -> Any:
        """Reads and handles one packet; see ``wait_msg`` for the results."""
        sock = self.sock
        if not blocking:
            sock.setblocking(False)
            try:
                first = sock.read(1)
            except OSError as exc:
                if exc.args and exc.args[0] == 11:
                    return None
                raise
            finally:
                sock.setblocking(True)
            if first is None:
                return None
        else:
            first = sock.read(1)
        if first == b"":
            # The end of the stream (after the FIN rule's 107, or at once in the
            # micropython profile): a lost connection, so reconn reconnects.
            raise OSError(-1)
        op = first[0]
        if op == 0xD0:  # PINGRESP
            self._read_exact(1)
            self._ping_outstanding = 0
            return b"\xd0"
        if op == 0x40:  # PUBACK
            length = self._read_length()
            data = self._read_exact(length)
            self._ack(struct.unpack("!H", data[:2])[0], 0)
            return None
        if op == 0x90:  # SUBACK
            length = self._read_length()
            data = self._read_exact(length)
            code = data[2] if length > 2 else 0x80
            self._ack(struct.unpack("!H", data[:2])[0], code)
            return 0x80 if code == 0x80 else 0x90
        if op & 0xF0 != 0x30:  # anything else: skip it
            self._read_exact(self._read_length())
            return op
        length = self._read_length()
        data = self._read_exact(length)
        tlen = struct.unpack("!H", data[:2])[0]
        topic = data[2 : 2 + tlen]
        pos = 2 + tlen
        qos = (op >> 1) & 0x03
        pid = 0
        if qos:
            pid = struct.unpack("!H", data[pos : pos + 2])[0]
            pos += 2
        msg = data[pos:]
        assert qos != 2, "QoS 2 messages are not supported"
        if self.cb is not None:
            try:
                self.cb(topic, msg)
            except Exception as exc:  # noqa: BLE001 - the device logs and goes on
                _logger().warning("callback raised %r", exc)
        if qos == 1:
            self._send(b"\x40\x02" + struct.pack("!H", pid))
        return None

    def _reconnect(self) -> None:
        """Reconnects until it works or ``disconnect()`` is called, then re-subscribes."""
        self._tell("reconnect_start")
        attempt = 0
        while not self._disconnected:
            try:
                if self._sock is not None:
                    self._sock.close()
                self.connect(self._clean_session)
                for topic, qos in list(self.topics.items()):
                    _pid, packet = self._subscribe_packet(topic, qos)
                    self._send(packet)
                self._tell("reconnect_success")
                return
            except (OSError, ValueError) as exc:
                attempt += 1
                _logger().warning("reconnect failed: %s", exc)
                deadline = time.monotonic() + 5 + attempt
                while time.monotonic() < deadline and not self._disconnected:
                    time.sleep(0.1)

    def _receive(self, blocking: bool) -> Any:
        if self._disconnected:
            return None
        me = threading.get_ident()
        while True:
            with self._acks:
                self._readers.add(me)
            try:
                with self._read_lock:
                    return self._handle_packet(blocking)
            except OSError as exc:
                if not self.reconn or self._disconnected:
                    if self._disconnected:
                        return None
                    raise
                _logger().warning("connection lost (%s), reconnecting", exc)
                time.sleep(1)
                self._reconnect()
                if self._disconnected:
                    return None
            finally:
                with self._acks:
                    self._readers.discard(me)

    def wait_msg(self) -> Any:
        """Blocks for one packet. ``None`` after a PUBLISH was delivered (and for PUBACK),
        ``b'\\xd0'`` for PINGRESP, ``0x90``/``0x80`` for SUBACK granted/refused. A broken
        or ended connection reconnects (reconn=True) or raises OSError."""
        return self._receive(blocking=True)

    def check_msg(self) -> Any:
        """Like ``wait_msg`` but returns ``None`` at once when nothing is pending."""
        return self._receive(blocking=False)

    # ------------------------------------------------------------ state and shutdown

    def get_mqttsta(self) -> int:
        """0 connected, 1 connecting, 2 closed by the server, -1 otherwise."""
        sock = self.sock
        getsta = getattr(sock, "getsocketsta", None)
        if getsta is None:
            return 0 if self._connected else -1
        state = getsta()
        if state in (0, 2, 3):
            return 1
        if state == 4 and self._connected:
            return 0
        if state in (7, 8):
            return 2
        return -1

    def disconnect(self) -> None:
        """Stops the keepalive thread, sends DISCONNECT and closes. Never raises."""
        self._disconnected = True
        try:
            if self._sock is not None:
                self._sock.settimeout(2)  # a broker that stopped reading cannot hang us
                self._send(b"\xe0\x00")
                time.sleep(0.5)
        except Exception as exc:  # noqa: BLE001 - disconnect never raises
            _logger().warning("disconnect: %r", exc)
        finally:
            if self._sock is not None:
                self._sock.close()
            self._connected = False

    def close(self) -> None:
        """Closes the socket only (for a reconnect the script drives itself)."""
        if self._sock is not None:
            self._sock.close()
        self._connected = False
