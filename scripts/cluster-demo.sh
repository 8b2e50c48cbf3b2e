#!/usr/bin/env bash
# `make cluster-demo`: one nats-server and three socklab nodes on loopback, the "Use Socket"
# tutorial device run against two of them, and the cluster's view printed from the third.
#
#  1. nats-server starts on 127.0.0.1:$CLUSTER_NATS_PORT;
#  2. socklab nodes node1, node2, node3 join it (devices on ports 34201-34203, dashboards on
#     8081-8083), each with the tutorial's auto-reply and its own history in .cluster-demo/;
#  3. examples/use_socket.py runs as a device against node1, then against node2;
#  4. node3's API lists both sessions (global ids name the node) and their messages;
#  5. everything keeps running until Ctrl-C, which stops the nodes, then nats-server.
#
# Environment: CLUSTER_NATS_PORT (4222), CLUSTER_DEVICE_PORT (34201: node1, +1, +2),
# CLUSTER_HTTP_PORT (8081: node1, +1, +2), CLUSTER_DEMO_EXIT=1 (stop after step 4),
# SOCKLAB_BIN, PYTHON, NATS_SERVER.
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKLAB="${SOCKLAB_BIN:-target/release/socklab}"
PY="${PYTHON:-.venv/bin/python}"
NATS="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
NATS_PORT="${CLUSTER_NATS_PORT:-4222}"
DEVICE_PORT="${CLUSTER_DEVICE_PORT:-34201}"
HTTP_PORT="${CLUSTER_HTTP_PORT:-8081}"
DIR=.cluster-demo
RULE='exact:1234567890=>text:0123456789'
NODES=(node1 node2 node3)

DEMO_NAME=cluster-demo
# shellcheck source=scripts/demo-lib.sh
source scripts/demo-lib.sh
check_tools
[[ -x "$NATS" ]] || die "nats-server not found; install it (scripts/install-system-deps.sh)"
wanted=("tcp:$NATS_PORT")
for i in 0 1 2; do wanted+=("tcp:$((DEVICE_PORT + i))" "tcp:$((HTTP_PORT + i))"); done
ports_free "stop what holds them, or pick others: CLUSTER_NATS_PORT=4223 CLUSTER_DEVICE_PORT=34301 CLUSTER_HTTP_PORT=8181 make cluster-demo" \
    "${wanted[@]}"

mkdir -p "$DIR"
PIDS=()
NATS_PID=
stop_all() {
    trap - EXIT INT TERM
    echo
    echo "== stopping the nodes, then nats-server"
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "$NATS_PID" ]]; then
        kill -TERM "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
    fi
    echo "== stopped; histories in $DIR/node*.db"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

URL="nats://127.0.0.1:$NATS_PORT"
echo "== nats-server on $URL"
"$NATS" -a 127.0.0.1 -p "$NATS_PORT" >"$DIR/nats.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 100); do
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $NATS_PORT), 0.2)" \
        2>/dev/null && break
    kill -0 "$NATS_PID" 2>/dev/null || { cat "$DIR/nats.log" >&2; die "nats-server did not start"; }
    sleep 0.05
done

for i in 0 1 2; do
    name=${NODES[$i]}
    rm -f "$DIR/$name.json"
    "$SOCKLAB" --cluster "$URL" --node "$name" --tcp "127.0.0.1:$((DEVICE_PORT + i))" \
        --http "127.0.0.1:$((HTTP_PORT + i))" --db "$DIR/$name.db" --auto-reply "$RULE" \
        --quiet --ready-file "$DIR/$name.json" </dev/null >"$DIR/$name.log" 2>&1 &
    PIDS+=($!)
    echo "== socklab $name: devices tcp 127.0.0.1:$((DEVICE_PORT + i)), dashboard http://127.0.0.1:$((HTTP_PORT + i))/"
done
for i in 0 1 2; do
    name=${NODES[$i]}
    wait_ready "${PIDS[$i]}" "$DIR/$name.json" "$DIR/$name.log" "$name"
done

for i in 0 1; do
    echo
    echo "== device -> ${NODES[$i]}: $PY examples/use_socket.py 127.0.0.1 $((DEVICE_PORT + i))"
    run_device "$((DEVICE_PORT + i))"
done

echo
echo "== the cluster as node3 sees it (http://127.0.0.1:$((HTTP_PORT + 2))/api/sessions)"
"$PY" - "http://127.0.0.1:$((HTTP_PORT + 2))" <<'EOF'
import json
import sys
import time
import urllib.request

base = sys.argv[1]


def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as resp:
        return json.load(resp)


deadline = time.monotonic() + 10
listing = get("/api/sessions?state=all")
while time.monotonic() < deadline and (
    len(listing["sessions"]) < 2 or any(s["online"] for s in listing["sessions"])
):
    time.sleep(0.1)
    listing = get("/api/sessions?state=all")
print(f"   {listing['total']} sessions, missing nodes: {listing['missing_nodes'] or 'none'}")
for s in reversed(listing["sessions"]):
    print(f"   {s['id']:<10} {s['node']:<6} {s['peer']:<22} {s['end_reason'] or 'online'}")
    for m in get(f"/api/sessions/{s['id']}/messages")["messages"]:
        arrow = "up  " if m["direction"] == "up" else "down"
        print(f"      {m['ts'][11:23]} {arrow} {m['len']:>3} B {json.dumps(m['text'])}")
EOF

echo
echo "== cluster dashboard: http://127.0.0.1:$((HTTP_PORT + 2))/  (any node's dashboard shows all three)"
echo "   more devices: $PY examples/use_socket.py 127.0.0.1 $DEVICE_PORT  (or +1, +2)"
if [[ "${CLUSTER_DEMO_EXIT:-0}" == 1 ]]; then
    exit 0
fi
echo "   Ctrl-C stops everything"
wait "${PIDS[@]}"
