#!/usr/bin/env bash
# Runs every edge-agent benchmark and prints one table of figures and ratios, each measured
# side by side with its peer in this run (see Benchmarks/README.md).
#
#   Benchmarks/run.sh                     # everything (about 30 min with the 10 min soak)
#   Benchmarks/run.sh --soak 1m --messages 200000 --only loop,latency
#   Benchmarks/run.sh --write-results     # also update Benchmarks/RESULTS.md
#
# Own flags: --no-build (use what is built), --no-dynamic (skip the second, dynamically linked
# build used for the footprint comparison). Every other flag goes to Benchmarks/bench.py
# (--help lists them). Builds: `swift build -c release --static-swift-stdlib` (the shipped
# configuration, scripts/package-deb.sh) in .build-bench-static, plain `swift build -c release`
# in .build-bench, and the C peers (gcc, libmodbus, libmosquitto) in .build-bench/peers.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

build=1
dynamic=1
pass=()
for a in "$@"; do
    case "$a" in
        --no-build) build=0 ;;
        --no-dynamic) dynamic=0 ;;
        *) pass+=("$a") ;;
    esac
done

need() { command -v "$1" >/dev/null 2>&1 || { echo "run.sh: $1 is missing (${2:-install it})" >&2; exit 1; }; }
need swift "Swift 6 at /opt/swift/usr/bin"
need gcc "apt-get install gcc"
need pkg-config "apt-get install pkg-config"
need mosquitto "apt-get install mosquitto"
need cyclictest "apt-get install rt-tests"
need stress-ng "apt-get install stress-ng"
need mbpoll "apt-get install mbpoll"
need valgrind "apt-get install valgrind (the stepcost section)"
need objcopy "apt-get install binutils"
need python3
python3 -c 'import pymodbus' 2>/dev/null || { echo "run.sh: pymodbus is missing (pip install pymodbus==3.16.*)" >&2; exit 1; }

STATIC=.build-bench-static
DYNAMIC=.build-bench
PEERS=$DYNAMIC/peers
if [ "$build" = 1 ]; then
    echo "run.sh: building release products (static Swift runtime, as shipped)" >&2
    swift build -c release --static-swift-stdlib --scratch-path "$STATIC" >&2
    if [ "$dynamic" = 1 ]; then
        echo "run.sh: building release products (dynamic Swift runtime)" >&2
        swift build -c release --scratch-path "$DYNAMIC" >&2
    fi
    mkdir -p "$PEERS"
    CFLAGS=(-O2 -Wall -Wextra -Werror)
    gcc "${CFLAGS[@]}" -o "$PEERS/mbserver" Benchmarks/peers/mbserver.c $(pkg-config --cflags --libs libmodbus)
    gcc "${CFLAGS[@]}" -o "$PEERS/mbloop" Benchmarks/peers/mbloop.c $(pkg-config --cflags --libs libmodbus)
    gcc "${CFLAGS[@]}" -o "$PEERS/mbtap" Benchmarks/peers/mbtap.c
    gcc "${CFLAGS[@]}" -o "$PEERS/rtuline" Benchmarks/peers/rtuline.c
    gcc "${CFLAGS[@]}" -o "$PEERS/mqttloop" Benchmarks/peers/mqttloop.c $(pkg-config --cflags --libs libmosquitto) -lpthread
    gcc "${CFLAGS[@]}" -o "$PEERS/wakeloop" Benchmarks/peers/wakeloop.c -lpthread
    gcc "${CFLAGS[@]}" -shared -fPIC -Wl,--version-script=Benchmarks/peers/loopprobe.map -o "$PEERS/loopprobe.so" Benchmarks/peers/loopprobe.c -ldl
fi

args=(--bin "$STATIC/release" --label "static runtime (shipped)" --peers "$PEERS")
if [ "$dynamic" = 1 ] && [ -x "$DYNAMIC/release/edge-agent" ]; then
    args+=(--bin-alt "$DYNAMIC/release" --label-alt "dynamic runtime")
fi
export BENCH_COMMAND="Benchmarks/run.sh $*"
exec python3 Benchmarks/bench.py "${args[@]}" "${pass[@]}"
