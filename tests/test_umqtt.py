"""umqtt against a real mosquitto started by the test (TCP and TLS listeners), observed by
an independent client (paho-mqtt): QoS 0 and 1 both ways, retained messages, last will,
keepalive pings, a broker that goes away (reconnect and re-subscription), bad input, and a
device script run through ``python -m usocket run``."""

from __future__ import annotations

import importlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import paho.mqtt.client as paho
import pytest
from runner_support import EXAMPLES, run_device
from tls_support import Broker, Certs, env, free_port, make_certs, mosquitto_available
from usocket.runner import device_environment
from usocket_peers import profile

pytestmark = pytest.mark.skipif(
    not mosquitto_available() and not os.environ.get("CI"), reason="mosquitto not installed"
)

WAIT_S = 10.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("mqtt-certs"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("mosquitto"), certs)
    yield b
    b.stop()


@pytest.fixture
def umqtt() -> Iterator[ModuleType]:
    with env(USOCKET_SSL_STRICT=None), device_environment():
        yield importlib.import_module("umqtt")


class Observer:
    """An independent MQTT client (paho) that records what it receives."""

    def __init__(self, port: int, *topics: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="")
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, m.payload, bool(m.retain))
        )
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(WAIT_S)

    def get(self) -> tuple[str, bytes, bool]:
        return self.messages.get(timeout=WAIT_S)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def received(client: Any, count: int) -> list[tuple[bytes, bytes]]:
    """Runs wait_msg until the callback saw ``count`` messages (bounded)."""
    got: list[tuple[bytes, bytes]] = []
    client.set_callback(lambda t, m: got.append((t, m)))
    deadline = time.monotonic() + WAIT_S
    while len(got) < count and time.monotonic() < deadline:
        client.wait_msg()
    return got


@pytest.mark.parametrize("transport", ["tcp", "tls-ca", "tls-no-ca"])
def test_publish_and_subscribe_qos0_qos1(
    umqtt: ModuleType, broker: Broker, certs: Certs, transport: str
) -> None:
    """str and bytes topics/payloads go out with QoS 0 and 1 and come back as bytes."""
    port = broker.port if transport == "tcp" else broker.tls_port
    ssl_params = {"ca": certs.ca_pem} if transport == "tls-ca" else {}
    obs = Observer(broker.port, f"dev/{transport}/up")
    c = umqtt.MQTTClient(
        f"dev-{transport}", "127.0.0.1", port, ssl=transport != "tcp", ssl_params=ssl_params
    )
    try:
        assert c.connect() == 0
        assert c.get_mqttsta() == 0
        assert c.publish(f"dev/{transport}/up", "héllo", qos=0) is True
        assert c.publish(f"dev/{transport}/up".encode(), b"\x00\xff", qos=1) is True
        assert obs.get() == (f"dev/{transport}/up", "héllo".encode(), False)
        assert obs.get() == (f"dev/{transport}/up", b"\x00\xff", False)
        assert c.publish(f"dev/{transport}/up", "two", qos=2) is False
        c.set_callback(lambda t, m: None)
        c.subscribe(f"dev/{transport}/down", qos=1)
        assert c.check_msg() is None  # nothing pending: at once
        obs.publish(f"dev/{transport}/down", b"q1", qos=1)
        obs.publish(f"dev/{transport}/down", b"q0", qos=0)
        assert received(c, 2) == [
            (f"dev/{transport}/down".encode(), b"q1"),
            (f"dev/{transport}/down".encode(), b"q0"),
        ]
    finally:
        c.disconnect()
        obs.close()


def test_retained_message_and_last_will(umqtt: ModuleType, broker: Broker) -> None:
    """A retained publish reaches a later subscriber; a vanished client's will is sent,
    a clean disconnect sends none."""
    pub = umqtt.MQTTClient("retainer", "127.0.0.1", broker.port)
    pub.connect()
    assert pub.publish("dev/retained", "kept", retain=True, qos=1)
    pub.disconnect()
    late = umqtt.MQTTClient(b"late", "127.0.0.1", broker.port)
    late.connect()
    late.set_callback(lambda t, m: None)
    late.subscribe("dev/retained")
    assert received(late, 1) == [(b"dev/retained", b"kept")]
    late.disconnect()

    obs = Observer(broker.port, "dev/will/#")
    try:
        clean = umqtt.MQTTClient("clean", "127.0.0.1", broker.port)
        clean.set_last_will("dev/will/clean", "gone")
        clean.connect()
        clean.disconnect()
        dying = umqtt.MQTTClient("dying", "127.0.0.1", broker.port)
        dying.set_last_will("dev/will/dying", b"lost", qos=1)
        dying.connect()
        dying.close()  # no DISCONNECT: the broker publishes the will
        assert obs.get() == ("dev/will/dying", b"lost", False)
        assert obs.messages.empty()
    finally:
        obs.close()


@pytest.mark.parametrize(
    ("transport", "name"), [("tcp", "quecpython"), ("tls", "quecpython"), ("tcp", "micropython")]
)
def test_broker_goes_away_reconnect_and_resubscribe(
    umqtt: ModuleType, broker: Broker, certs: Certs, transport: str, name: str
) -> None:
    """The broker restarts under a client blocked in wait_msg: it reconnects, tells the
    error callback, re-subscribes, and messages flow again (also where the end of the
    stream reads as b'' instead of OSError(107))."""
    with profile(name):
        reconnect_round(umqtt, broker, certs, transport)


def reconnect_round(umqtt: ModuleType, broker: Broker, certs: Certs, transport: str) -> None:
    tls = transport == "tls"
    c = umqtt.MQTTClient(
        f"phoenix-{transport}",
        "127.0.0.1",
        broker.tls_port if tls else broker.port,
        ssl=tls,
        ssl_params={"ca": certs.ca_pem} if tls else {},
    )
    events: list[str] = []
    got: list[tuple[bytes, bytes]] = []
    c.error_register_cb(events.append)
    c.set_callback(lambda t, m: got.append((t, m)))
    c.connect()
    c.subscribe(f"dev/{transport}/phoenix", qos=1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            c.wait_msg()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        broker.restart()
        deadline = time.monotonic() + WAIT_S
        while "reconnect_success" not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events[:2] == ["reconnect_start", "reconnect_success"]
        assert c.get_mqttsta() == 0
        obs = Observer(broker.port)
        deadline = time.monotonic() + WAIT_S
        while not got and time.monotonic() < deadline:
            obs.publish(f"dev/{transport}/phoenix", b"again")  # until the SUBACK is in
            time.sleep(0.1)
        obs.close()
        assert got and got[0] == (f"dev/{transport}/phoenix".encode(), b"again")
    finally:
        stop.set()
        c.disconnect()
        t.join(WAIT_S)
    assert not t.is_alive()


def test_qos1_publish_from_inside_the_callback(umqtt: ModuleType, broker: Broker) -> None:
    """A callback that answers with a QoS 1 publish gets its PUBACK (read re-entrantly)."""
    obs = Observer(broker.port, "dev/answer")
    c = umqtt.MQTTClient("answerer", "127.0.0.1", broker.port)
    results: list[bool] = []
    c.set_callback(lambda t, m: results.append(c.publish("dev/answer", b"re:" + m, qos=1)))
    try:
        c.connect()
        c.subscribe("dev/ask", qos=1)
        obs.publish("dev/ask", b"ping")
        deadline = time.monotonic() + WAIT_S
        while not results and time.monotonic() < deadline:
            c.wait_msg()
        assert results == [True]
        assert obs.get() == ("dev/answer", b"re:ping", False)
    finally:
        c.disconnect()
        obs.close()


def test_mqtt_3_1_and_credentials(umqtt: ModuleType, broker: Broker) -> None:
    """version=3 speaks MQTT 3.1 ("MQIsdp"); user and password are sent."""
    obs = Observer(broker.port, "dev/v3")
    try:
        c = umqtt.MQTTClient("old-fw", "127.0.0.1", broker.port, user="u", password="p", version=3)
        assert c.connect() == 0
        assert c.publish("dev/v3", "from 3.1", qos=1)
        assert obs.get() == ("dev/v3", b"from 3.1", False)
        c.disconnect()
    finally:
        obs.close()


def test_without_reconn_errors_reach_the_script(umqtt: ModuleType, broker: Broker) -> None:
    """reconn=False: a broker that goes away is an OSError from wait_msg."""
    c = umqtt.MQTTClient("fragile", "127.0.0.1", broker.port, reconn=False)
    c.connect()
    c.set_callback(lambda t, m: None)
    broker.restart()
    with pytest.raises(OSError):
        for _ in range(3):  # the FIN rule: 107, in every device profile
            c.wait_msg()
    assert c.get_mqttsta() in (-1, 2)
    c.disconnect()
    assert c.get_mqttsta() == -1


def test_keepalive_pings_and_ping_timeout(
    umqtt: ModuleType, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pings go out every keepalive-3 s and wait_msg returns the PINGRESP; without reconn
    an unanswered ping (nobody reading) reaches the error callback."""
    monkeypatch.setattr(umqtt, "KEEPALIVE_TICK_S", 0.2)
    c = umqtt.MQTTClient("pinger", "127.0.0.1", broker.port, keepalive=5)
    c.connect()
    try:
        assert c.wait_msg() == b"\xd0"
    finally:
        c.disconnect()
    quiet = umqtt.MQTTClient("quiet", "127.0.0.1", broker.port, keepalive=5, reconn=False)
    errors: list[str] = []
    quiet.error_register_cb(errors.append)
    quiet.connect()
    deadline = time.monotonic() + WAIT_S
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    quiet.disconnect()
    assert errors == ["Send ping timeout."]


def test_bad_input_is_a_clear_exception(umqtt: ModuleType, broker: Broker, certs: Certs) -> None:
    """Wrong arguments raise at once; failed connects are ValueError('MQTT Connect...');
    publish never raises."""
    with pytest.raises(ValueError):
        umqtt.MQTTClient("x", "127.0.0.1", keepalive=3)
    with pytest.raises(ValueError):
        umqtt.MQTTClient("x", "127.0.0.1", version=5)
    with pytest.raises(TypeError):
        umqtt.MQTTClient(42, "127.0.0.1")
    with pytest.raises(TypeError):
        umqtt.MQTTClient("x", ("127.0.0.1", 1883))
    c = umqtt.MQTTClient("x", "127.0.0.1", broker.port)
    assert c.port == broker.port
    assert umqtt.MQTTClient("x", "h").port == 1883
    assert umqtt.MQTTClient("x", "h", ssl=True).port == 8883
    with pytest.raises(AttributeError):
        c.get_mqttsta()
    assert c.publish("t", "m") is False
    with pytest.raises(AssertionError):
        c.subscribe("t")
    with pytest.raises(AssertionError):
        c.set_last_will("t", "m", qos=3)
    with pytest.raises(AssertionError):
        c.set_last_will("", "m")
    refused = umqtt.MQTTClient("x", "127.0.0.1", free_port())
    with pytest.raises(ValueError, match="^MQTT Connect"):
        refused.connect()
    bad_ca = umqtt.MQTTClient(
        "x", "127.0.0.1", broker.tls_port, ssl=True, ssl_params={"ca": "not pem"}
    )
    with pytest.raises(ValueError, match="invalid cert"):
        bad_ca.connect()
    other = make_certs(certs.ca_file.parent / "mqtt-other")
    untrusted = umqtt.MQTTClient(
        "x", "127.0.0.1", broker.tls_port, ssl=True, ssl_params={"ca": other.ca_pem}
    )
    with pytest.raises(ValueError, match="-9984"):
        untrusted.connect()
    c.connect()
    c.set_callback(lambda t, m: None)
    with pytest.raises(TypeError):
        c.subscribe(3.5)
    assert c.publish(None, "m") is False
    c.disconnect()
    c.disconnect()  # never raises


def test_example_runs_through_the_runner(broker: Broker, tmp_path: Path) -> None:
    """examples/device_mqtt.py (unmodified device code) against the broker via --map."""
    result = run_device(
        "--map",
        f"mqtt.example.com:1883=127.0.0.1:{broker.port}",
        str(EXAMPLES / "device_mqtt.py"),
    )
    assert result.returncode == 0, result.stderr
    assert "received b'device/demo/echo' b'hello 2'" in result.stdout
    assert "done" in result.stdout
