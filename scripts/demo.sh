#!/usr/bin/env bash
# The README's main job (`make demo` runs it after the build): the "Use Socket" tutorial end
# to end against a local socklab.
#
#  1. socklab starts on the tutorial's port with an auto-reply, so the device receives
#     0123456789 after it uploads 1234567890\r\n;
#  2. examples/use_socket.py runs as the device (usocket on CPython);
#  3. both sides' transcripts are printed: the device's stdout, the server's session and
#     messages (from its HTTP API);
#  4. socklab keeps running in the foreground (console: type `help`) with the dashboard URL
#     shown, until Ctrl-C. The history stays in .demo/socklab.db.
#
# Environment: DEMO_PORT (34187), DEMO_HTTP_PORT (8080), SOCKLAB_BIN, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKLAB="${SOCKLAB_BIN:-target/release/socklab}"
PY="${PYTHON:-.venv/bin/python}"
PORT="${DEMO_PORT:-34187}"
HTTP_PORT="${DEMO_HTTP_PORT:-8080}"
DIR=.demo
DB="$DIR/socklab.db"
RULE='exact:1234567890=>text:0123456789'

DEMO_NAME=demo
# shellcheck source=scripts/demo-lib.sh
source scripts/demo-lib.sh
check_tools
ports_free "another socklab (or an earlier demo) may still be running; stop it, or pick other ports: DEMO_PORT=34188 DEMO_HTTP_PORT=8081 make demo" \
    "tcp:$PORT" "udp:$PORT" "tcp:$HTTP_PORT"

mkdir -p "$DIR"
rm -f "$DIR/ready.json"
FLAGS=(--tcp "127.0.0.1:$PORT" --udp "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP_PORT"
    --db "$DB" --auto-reply "$RULE")

echo "== socklab: starting on 127.0.0.1:$PORT (tcp+udp), auto-reply '$RULE'"
"$SOCKLAB" "${FLAGS[@]}" --quiet --ready-file "$DIR/ready.json" \
    </dev/null >"$DIR/socklab.log" 2>&1 &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
wait_ready $SERVER "$DIR/ready.json" "$DIR/socklab.log" socklab

echo
echo "== device: $PY examples/use_socket.py 127.0.0.1 $PORT"
run_device "$PORT"

echo
echo "== socklab: what the server saw (from its API, http://127.0.0.1:$HTTP_PORT)"
"$PY" - "http://127.0.0.1:$HTTP_PORT" <<'EOF'
import json
import sys
import time
import urllib.request

base = sys.argv[1]


def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as resp:
        return json.load(resp)


# The device has exited; wait until socklab has seen it go offline.
deadline = time.monotonic() + 10
session = get("/api/sessions?limit=1")["sessions"][0]
while session["online"] and time.monotonic() < deadline:
    time.sleep(0.05)
    session = get(f"/api/sessions/{session['id']}")


def show(ts, what):
    print(f"   socklab | {ts[11:23]} #{session['id']} {session['peer']} {what}")


def escaped(text):
    return json.dumps(text, ensure_ascii=True)


show(session["started_at"], f"online ({session['proto']} {session['local']})")
for m in get(f"/api/sessions/{session['id']}/messages")["messages"]:
    arrow = "up  " if m["direction"] == "up" else "down"
    show(m["ts"], f"{arrow} {m['len']:>3} B {escaped(m['text'])} [{m['hex']}]")
if session["online"]:
    show(session["started_at"], "still online")
else:
    show(session["ended_at"], f"offline: {session['end_reason']}")
EOF

# Hand over to a foreground socklab on the same database so the console takes commands.
kill -INT $SERVER
wait $SERVER || true
trap - EXIT
echo
echo "== socklab keeps running: dashboard http://127.0.0.1:$HTTP_PORT/  (Ctrl-C to stop)"
echo "   devices: tcp/udp 127.0.0.1:$PORT; try: $PY examples/use_socket.py 127.0.0.1 $PORT"
exec "$SOCKLAB" "${FLAGS[@]}"
