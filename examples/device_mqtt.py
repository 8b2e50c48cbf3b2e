"""An MQTT device client with QuecPython's built-in `umqtt`: connect, subscribe, publish.

The shape of Quectel's MQTT examples: wait for the network, create an `MQTTClient` with a
client id built from the IMEI, register a callback and an error callback, subscribe to a
command topic, then publish and handle messages in a loop with `wait_msg()`. The client
publishes to its own echo topic, so it receives what it sends. It stops after MESSAGES
round trips (QoS 1), or with status 1 if a message does not come back.

Run it against a local broker (mosquitto on port 1883):

    usocket-run --strict-map --map mqtt.example.com:1883=127.0.0.1:1883 examples/device_mqtt.py
"""

# Device firmware of 2021 (MicroPython 1.13) has no f-strings: keep %-formatting.
# ruff: noqa: UP031

import checkNet
import modem
import usys
import utime
from umqtt import MQTTClient

SERVER = "mqtt.example.com"
PORT = 1883
TOPIC = "device/demo/echo"
MESSAGES = 3

received = []


def on_message(topic, msg):
    print("received %s %s" % (topic, msg))
    received.append(msg)


def on_error(err):
    print("mqtt error: %s" % err)


stage, state = checkNet.waitNetworkReady(30)
if (stage, state) != (3, 1):
    print("network not ready: %s %s" % (stage, state))
    usys.exit(1)

client = MQTTClient("demo-%s" % modem.getDevImei(), SERVER, PORT, keepalive=30)
client.set_callback(on_message)
client.error_register_cb(on_error)
client.connect()
client.subscribe(TOPIC, qos=1)
print("connected, state %d" % client.get_mqttsta())

for i in range(MESSAGES):
    message = "hello %d" % i
    if not client.publish(TOPIC, message, qos=1):
        print("publish failed")
        usys.exit(1)
    deadline = utime.ticks_add(utime.ticks_ms(), 5000)
    while len(received) <= i:
        if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
            print("no echo for %r" % message)
            usys.exit(1)
        client.check_msg()
        utime.sleep_ms(10)

client.disconnect()
print("done")
