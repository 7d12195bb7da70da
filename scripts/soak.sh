#!/usr/bin/env bash
# Soak: edge-agent (release build) for a long time on the simulated board under a busy
# street scene (presence several times a second, buses checking in/out on three approaches,
# bollard cycles with vehicles, obstructions during the rise, emergencies), with a centre
# subscriber recording every seq. Samples memory, CPU, loop lateness and the simulator's
# safety-violation count every 10 s; prints a verdict and exits non-zero on a failure.
#
#   scripts/soak.sh [--duration 1h] [--report FILE] [--no-build] [other options of scripts/soak/soak.py]
#
# Everything binds 127.0.0.1 or unix sockets in a /tmp/edge-soak-* folder (kept: logs,
# samples.jsonl, centre.log, report.md). Ctrl-C once: finish early with a report; twice: stop
# at once. Every process started here is stopped by its pid, also if the driver dies.
# Needs: mosquitto, mosquitto-clients (mosquitto_sub), python3, setpriv (util-linux),
# rt-tests (cyclictest; --no-cyclictest without it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin:/usr/sbin"
SCRATCH="${SOAK_SCRATCH:-.build-soak}"

build=1
args=()
for a in "$@"; do
    case "$a" in
        --no-build) build=0 ;;
        -h|--help) exec python3 scripts/soak/soak.py --bin . --help ;;
        *) args+=("$a") ;;
    esac
done
for tool in mosquitto mosquitto_sub python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is missing (apt-get install mosquitto mosquitto-clients python3 util-linux)" >&2; exit 2; }
done
if [ "$build" = 1 ]; then
    swift build -c release --scratch-path "$SCRATCH" >&2
fi
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
for p in edge-agent edgectl edge-sim; do
    [ -x "$BIN/$p" ] || { echo "soak: $BIN/$p not built (run without --no-build)" >&2; exit 2; }
done
exec python3 scripts/soak/soak.py --bin "$BIN" "${args[@]}"
