# Shared by scripts/demo.sh and scripts/cluster-demo.sh (sourced, not run): the checks
# before starting, the wait for a socklab's ready file, and the tutorial device.
# The sourcing script sets DEMO_NAME (used in messages), SOCKLAB and PY first.

die() {
    echo "$DEMO_NAME: $*" >&2
    exit 1
}

# Fails clearly when socklab or the venv's Python (with usocket) is missing.
check_tools() {
    [[ -x "$SOCKLAB" ]] || die "$SOCKLAB not found; build it first (make build)"
    [[ -x "$PY" ]] || die "$PY not found; set up the venv first (make setup)"
    "$PY" -c "import usocket" 2>/dev/null || die "usocket is not installed in $PY (make build)"
}

# ports_free HINT tcp:PORT|udp:PORT ...: refuses early, and clearly, when one is taken on
# 127.0.0.1 (an earlier demo still running, say); HINT says how to pick others.
ports_free() {
    local hint=$1
    shift
    "$PY" - "$DEMO_NAME" "$hint" "$@" <<'PYEOF'
import socket
import sys

name, hint, *wanted = sys.argv[1:]
busy = []
for item in wanted:
    kind, port = item.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    if kind == "tcp":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError as err:
        busy.append(f"{kind.upper()} 127.0.0.1:{port} ({err.strerror})")
    finally:
        s.close()
if busy:
    print(f"{name}: port(s) busy: " + ", ".join(busy), file=sys.stderr)
    print(f"{name}: {hint}", file=sys.stderr)
    sys.exit(1)
PYEOF
}

# wait_ready PID READY_FILE LOG WHAT: waits up to 10 s for a socklab's ready file; shows
# its log and stops the demo if it exits first or never gets ready.
wait_ready() {
    local pid=$1 ready=$2 log=$3 what=$4
    for _ in $(seq 200); do
        [[ -s "$ready" ]] && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$what did not start"; }
        sleep 0.05
    done
    die "$what not ready after 10 s (see $log)"
}

# run_device PORT: the tutorial's device (examples/use_socket.py) against 127.0.0.1:PORT.
run_device() {
    timeout 60 "$PY" examples/use_socket.py 127.0.0.1 "$1" 2>&1 | sed 's/^/   device | /'
}
