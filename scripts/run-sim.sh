#!/usr/bin/env bash
# The agent's main job on the simulated board: mosquitto on loopback, edge-sim serving the
# reference devices, edge-agent on Boards/sim.yaml, and a live view (edgectl watch).
# A scripted street scene (pedestrians, a bus, a delivery van at the bollard) runs in the
# background so the view changes. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
bash scripts/setup.sh
swift build -c release --product edge-agent >&2
swift build -c release --product edgectl >&2
swift build -c release --product edge-sim >&2
BIN="$(swift build -c release --show-bin-path)"

RUN=/tmp/edge-agent-sim
mkdir -p "$RUN/state"
LOGS="$RUN/logs"; mkdir -p "$LOGS"
pids=()
cleanup() {
    trap - INT TERM EXIT
    echo; echo "stopping..." >&2
    for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "stopped; logs in $LOGS" >&2
}
trap cleanup INT TERM EXIT

cat > "$RUN/mosquitto.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
CONF
mosquitto -c "$RUN/mosquitto.conf" >"$LOGS/mosquitto.log" 2>&1 & pids+=($!)
"$BIN/edge-sim" --config Boards/sim-field.yaml >"$LOGS/edge-sim.out" 2>"$LOGS/edge-sim.log" & pids+=($!)
for _ in $(seq 50); do grep -q "edge-sim ready" "$LOGS/edge-sim.out" 2>/dev/null && break; sleep 0.1; done
"$BIN/edge-agent" --config examples/agent-sim.yaml 2>"$LOGS/edge-agent.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$RUN/control.sock" ] && break; sleep 0.1; done

# The street scene.
scene() {
    local ctl=("$BIN/edge-sim" ctl --control /tmp/edge-sim.sock)
    while sleep 4; do
        "${ctl[@]}" set pir-01 presence 1 >/dev/null; sleep 2; "${ctl[@]}" set pir-01 presence 0 >/dev/null
        "${ctl[@]}" gpio bus-detect-north 1 >/dev/null; sleep 0.3; "${ctl[@]}" gpio bus-detect-north 0 >/dev/null
        sleep 5
        "${ctl[@]}" gpio stopline-north 1 >/dev/null; sleep 0.3; "${ctl[@]}" gpio stopline-north 0 >/dev/null
        "$BIN/edgectl" --socket "$RUN/control.sock" bollard raise bollard-1 >/dev/null 2>&1 || true
        sleep 8
        "${ctl[@]}" set bollard-1 loop 1 >/dev/null
        "$BIN/edgectl" --socket "$RUN/control.sock" bollard lower bollard-1 >/dev/null 2>&1 || true
        sleep 5; "${ctl[@]}" set bollard-1 loop 0 >/dev/null
    done
}
scene >/dev/null 2>&1 & pids+=($!)

echo "edge-agent running on the simulated board (logs in $LOGS). Ctrl-C to stop." >&2
"$BIN/edgectl" --socket "$RUN/control.sock" watch --every 1s || true
