#!/usr/bin/env bash
# Runs the arm64 Debian 13 package on this amd64 machine under qemu-user-static, and prints
# each check with its result and time. Not part of scripts/test.sh or CI (minutes, needs root).
#
#   scripts/build-arm64.sh --only arm64     first: dist/trixie/edge-agent_<v>_arm64.deb
#   scripts/run-arm64.sh                    then this
#
# 1. The .deb is installed with apt into a Debian 13 arm64 root (run-trixie-arm64, made once in
#    $EDGE_BUILD_CACHE): its computed Depends must pull everything the binaries need.
# 2. In that root, under qemu: `edge-agent --version`; `systemd-analyze verify` of the unit; the
#    agent started as the unit would (user edge-agent, /run/edge-agent, /var/lib/edge-agent) on
#    the simulated board, until `edgectl status` answers on the control socket; SIGTERM, exit 0.
# 3. `edgectl config check` of every example, arm64 against the amd64 build's verdict.
# 4. The whole-process scenarios: the amd64 test suite's own system tests, with the processes
#    they start (edge-agent, edgectl, edge-sim) being the arm64 builds under qemu
#    (EDGE_BIN_DIR; QEMU_LD_PREFIX = the arm64 root, so they load its libraries), against
#    mosquitto on loopback: lighting on presence, a bollard cycle with an obstruction, a bus
#    priority request, signed commands (one accepted, the refused ones), uplink seq continuity
#    across a broker outage and an agent SIGKILL.
#
# Options: --skip-scenarios (steps 1-3 only)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
# shellcheck source=lib/debian-roots.sh
. scripts/lib/debian-roots.sh
export PATH="$PATH:/opt/swift/usr/bin"

SCENARIOS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-scenarios) SCENARIOS=0 ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (chroot)"
VERSION="$(sed -n 's/^ *public static let version = "\([^"]*\)".*/\1/p' Sources/EdgeAgent/Agent/Agent.swift | head -n 1)"
DEB="$REPO/dist/trixie/edge-agent_${VERSION}_arm64.deb"
[ -f "$DEB" ] || die "no $DEB: run scripts/build-arm64.sh --only arm64 first"
[ -f .build-trixie-arm64/bin-path ] || die "no .build-trixie-arm64/bin-path (the cross build's folder, for edge-sim): run scripts/build-arm64.sh --only arm64"
ARM_BUILD="$REPO/$(cat .build-trixie-arm64/bin-path)"

ensure_host_tools
ensure_root run-trixie-arm64 arm64
RUN="$(root_dir run-trixie-arm64)"
trap 'unmount_all' EXIT

RESULTS=()
FAILED=0
check() {  # check NAME CMD...: runs CMD, records PASS/FAIL and its time
    local name="$1" t0=$SECONDS rc=0; shift
    log "check: $name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then RESULTS+=("PASS  $name ($((SECONDS - t0)) s)")
    else RESULTS+=("FAIL  $name ($((SECONDS - t0)) s, exit $rc)"); FAILED=1; fi
}

# --- 1. install with apt ----------------------------------------------------------------------
install_deb() {
    cp "$DEB" "$RUN/tmp/edge-agent.deb"
    mount -t proc proc "$RUN/proc" && MOUNTED+=("$RUN/proc")
    mount_bind /dev "$RUN" /dev
    cp -L /etc/resolv.conf "$RUN/etc/resolv.conf" 2>/dev/null || true
    chroot "$RUN" apt-get update -qq
    chroot "$RUN" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall /tmp/edge-agent.deb >&2
    chroot "$RUN" dpkg -s edge-agent | grep -E '^(Version|Depends):' >&2
}
check "apt install of $(basename "$DEB") into Debian 13 arm64 (Depends resolved by apt)" install_deb

# --- 2. in the Debian 13 arm64 root, under qemu ----------------------------------------------
check "file: aarch64 ELF" bash -c "file '$RUN/usr/bin/edge-agent' '$RUN/usr/bin/edgectl' >&2 && file '$RUN/usr/bin/edge-agent' | grep -q 'ARM aarch64'"
check "edge-agent --version (arm64, qemu)" bash -c "v=\$(chroot '$RUN' /usr/bin/edge-agent --version); echo \"\$v\" >&2; [ \"\$v\" = 'edge-agent $VERSION' ]"
check "edgectl --help (arm64, qemu)" bash -c "chroot '$RUN' /usr/bin/edgectl --help >/dev/null"
check "systemd-analyze verify edge-agent.service (Debian 13 arm64 root)" \
    chroot "$RUN" systemd-analyze verify /usr/lib/systemd/system/edge-agent.service

start_in_root() {
    # As the unit runs it: user edge-agent, its state and runtime folders, the shipped board
    # and profile files; the simulated board (no GPIO chips or serial ports here).
    install -d -o root -g root "$RUN/etc/edge-agent"
    sed -e 's|^  state_dir: .*|  state_dir: /var/lib/edge-agent|' \
        -e 's|^  control_socket: .*|  control_socket: /run/edge-agent/control.sock|' \
        -e 's|^board: .*|board: Boards/sim.yaml|' \
        "$RUN/usr/share/doc/edge-agent/examples/agent-sim.yaml" >"$RUN/etc/edge-agent/qemu-check.yaml"
    chroot "$RUN" install -d -o edge-agent -g edge-agent -m 0755 /run/edge-agent
    chroot "$RUN" systemd-tmpfiles --create edge-agent.conf
    rm -f "$RUN/run/edge-agent/control.sock"
    chroot --userspec=edge-agent:edge-agent "$RUN" /usr/bin/edge-agent --config /etc/edge-agent/qemu-check.yaml \
        >"$EDGE_BUILD_CACHE/logs/qemu-agent.log" 2>&1 &
    local pid=$! ok=1 i
    for i in $(seq 1 120); do
        if chroot "$RUN" /usr/bin/edgectl --socket /run/edge-agent/control.sock status >"$EDGE_BUILD_CACHE/logs/qemu-status.txt" 2>&1; then ok=0; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    head -5 "$EDGE_BUILD_CACHE/logs/qemu-status.txt" >&2 || true
    kill -TERM "$pid" 2>/dev/null || true
    local rc=0
    wait "$pid" || rc=$?
    log "edge-agent exited $rc after SIGTERM"
    [ "$ok" -eq 0 ] || { tail -20 "$EDGE_BUILD_CACHE/logs/qemu-agent.log" >&2; return 1; }
    [ "$rc" -eq 0 ]
}
check "agent started in the root as the unit would, control socket answers, SIGTERM exits 0" start_in_root

# --- 3. config check of the examples, arm64 vs amd64 -----------------------------------------
AMD_BIN="$(swift build --show-bin-path 2>/dev/null || true)"
config_checks() {
    # arm64: in the Debian 13 root, on the examples the package ships (as on a gateway); amd64:
    # this machine's build, on the repository's. Same verdict, and every problem arm64 names is
    # one amd64 names too (amd64 may name more: the package's /usr/share/edge-agent/Boards,
    # where a relative board is also looked up, exists only in the root). examples/agent.yaml
    # is a gateway's config: its TLS files under /etc/edge-agent do not exist, so both refuse it.
    local f name out_arm out_amd rc_arm rc_amd fail=0 line
    [ -x "$AMD_BIN/edgectl" ] || { log "no amd64 edgectl in $AMD_BIN (swift build first)"; return 1; }
    for f in examples/*.yaml; do
        name="$(basename "$f")"
        rc_arm=0; out_arm="$(chroot "$RUN" /usr/bin/edgectl config check "/usr/share/doc/edge-agent/examples/$name" 2>&1)" || rc_arm=$?
        rc_amd=0; out_amd="$("$AMD_BIN/edgectl" config check "$f" 2>&1)" || rc_amd=$?
        out_arm="${out_arm//\/usr\/share\/doc\/edge-agent\/examples\//examples/}"
        log "  $name: arm64 exit $rc_arm, amd64 exit $rc_amd"
        printf '%s\n' "$out_arm" | sed 's/^/    arm64: /' >&2
        [ "$rc_arm" -eq "$rc_amd" ] || fail=1
        while IFS= read -r line; do
            case "$line" in *": ok "*|*" problems"|*" problem"|"") continue ;; esac
            grep -qxF -- "$line" <<<"$out_amd" || { log "    not said by amd64: $line"; fail=1; }
        done <<<"$out_arm"
    done
    return $fail
}
check "edgectl config check of the shipped examples: arm64 (qemu) agrees with amd64" config_checks

# --- 4. scenarios: the system tests driving arm64 processes ----------------------------------
if [ "$SCENARIOS" -eq 1 ]; then
    BIN="$EDGE_BUILD_CACHE/arm64-bin"
    rm -rf "$BIN" && mkdir -p "$BIN"
    ln -s "$RUN/usr/bin/edge-agent" "$BIN/edge-agent"
    ln -s "$RUN/usr/bin/edgectl" "$BIN/edgectl"
    ln -s "$ARM_BUILD/edge-sim" "$BIN/edge-sim"
    log "building the amd64 test suite (incremental after CI)"
    swift build --build-tests >/dev/null
    scenario() {
        EDGE_BIN_DIR="$BIN" QEMU_LD_PREFIX="$RUN" swift test --skip-build --no-parallel --filter "$1" \
            >"$EDGE_BUILD_CACHE/logs/scenario-$1.log" 2>&1 || { tail -30 "$EDGE_BUILD_CACHE/logs/scenario-$1.log" >&2; return 1; }
        grep -E 'passed|failed' "$EDGE_BUILD_CACHE/logs/scenario-$1.log" | tail -2 >&2
        ! grep -q 'with 0 tests' "$EDGE_BUILD_CACHE/logs/scenario-$1.log"
    }
    check "lighting on presence (boost, hold, back to base)" scenario presenceBoostsTheLuminaireAndHoldExpiresBackToBase
    check "lighting on a GPIO presence line" scenario gpioPresenceSensorBoostsToo
    check "bollard cycle with an obstruction (reverses down, then raises fully)" scenario obstructionWhileRaisingReversesToDownWithoutAnySafetyViolation
    check "bus priority request (check-in sets the request coil, check-out clears it)" scenario busCheckInSetsTheRequestCoilAndCheckOutClearsIt
    check "signed commands: ping accepted, every refusal replied, nothing actuated" scenario everyRefusalOfTheContractIsRepliedAndActuatesNothing
    check "uplink seq continuity across a broker outage and an agent SIGKILL" scenario brokerOutageAndAgentSigkillLoseNoSeq
fi

echo
for r in "${RESULTS[@]}"; do echo "$r"; done
echo "total: $SECONDS s"
exit $FAILED
