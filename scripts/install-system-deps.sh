#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need: headless Chromium for the dashboard
# tests, mosquitto (an MQTT broker), nats-server (the cluster transport) and tshark (reads
# exported captures back).
# Idempotent: does nothing when they are already there.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v nats-server >/dev/null || missing+=(nats-server)
command -v tshark >/dev/null || missing+=(tshark)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
