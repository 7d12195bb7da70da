#!/usr/bin/env bash
# The GPIO driver tests on Debian 13 (libgpiod 2.2): the libgpiod v2 backend and its stubs
# (Tests/GPIODStubs/stubs_v2.c), in the Debian 13 amd64 builder chroot of scripts/build-arm64.sh.
# Not part of scripts/test.sh or CI (needs root and the chroot; a few minutes).
#
#   scripts/test-trixie.sh                 DriversTests (all GPIO backends, the Modbus bus)
#   scripts/test-trixie.sh --filter REGEX  other tests
#
# The products build with Debian 13's Swift 6.0.3 (scripts/build-arm64.sh --only amd64 checks
# that, warnings included). The tests need Swift >= 6.1: they use Swift Testing's
# `#expect(throws:)` that returns the error, which 6.0's swift-testing does not have. So they
# are built and run here with this machine's toolchain (/opt/swift, 6.3; it runs on Debian 13),
# against Debian 13's libraries and headers: the manifest finds libgpiod 2.2 with pkg-config
# and builds the v2 backend and stubs (GPIOD_V2).
set -euo pipefail
cd "$(dirname "$0")/.."
# Swift < 6.2 builds swift-log 1.16.2 from Vendor/swift-log, made here from the package source (nothing of it committed).
bash scripts/vendor-swift-log.sh
REPO="$(pwd)"
# shellcheck source=lib/debian-roots.sh
. scripts/lib/debian-roots.sh

FILTER="DriversTests"
TOOLCHAIN="${SWIFT_TOOLCHAIN:-/opt/swift}"
while [ $# -gt 0 ]; do
    case "$1" in
        --filter) FILTER="${2:?--filter needs a regex}"; shift ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (chroot, bind mounts)"
[ -x "$TOOLCHAIN/usr/bin/swift" ] || die "no Swift toolchain at $TOOLCHAIN (SWIFT_TOOLCHAIN=...)"

ensure_host_tools
ensure_root trixie-amd64 amd64
BUILDER="$(root_dir trixie-amd64)"
trap unmount_all EXIT
prepare_root "$BUILDER" "$REPO"
mount_bind "$TOOLCHAIN" "$BUILDER" /opt/host-swift

in_root "$BUILDER" "pkg-config --modversion libgpiod | sed 's/^/libgpiod in the chroot: /' >&2"
t0=$SECONDS
in_root "$BUILDER" "/opt/host-swift/usr/bin/swift build --build-tests -j 2 --scratch-path .build-trixie-amd64-tests >&2"
log "test build: $((SECONDS - t0)) s"
in_root "$BUILDER" "/opt/host-swift/usr/bin/swift test --skip-build --no-parallel --scratch-path .build-trixie-amd64-tests --filter '$FILTER'"
