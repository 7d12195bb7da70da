#!/usr/bin/env bash
# Debian 13 ("trixie") packages of edge-agent, arm64 and amd64, made on this amd64 machine from
# Debian's own packages, plus the Debian 12 amd64 package as scripts/package-deb.sh makes it.
#
#   scripts/build-arm64.sh            all three: dist/trixie/edge-agent_<v>_arm64.deb,
#                                     dist/trixie/edge-agent_<v>_amd64.deb, dist/edge-agent_<v>_amd64.deb
#   scripts/build-arm64.sh --only arm64|amd64|bookworm   one of them
#
# Debian 13 builds use Debian 13's Swift (swiftlang 6.0.3) and libraries (libgpiod 2.2: the
# GPIO backend's v2 wrapper; libmodbus 3.1.11; libmosquitto 2.0.21; libyaml 0.2.5). swiftlang has no static
# Swift runtime, so these packages depend on libswiftlang (package-deb.sh --shared-swift-runtime).
#
# arm64 is cross-compiled: Debian 13's amd64 swiftc (in the trixie-amd64 chroot) with a Swift SDK
# (artifact bundle: swift-sdk.json + toolset.json, written below) whose sysroot is an arm64
# Debian 13 root made from Debian packages (swiftlang's arm64 runtime and modules, the -dev
# libraries). pkg-config reads the sysroot's .pc files (PKG_CONFIG_LIBDIR/SYSROOT_DIR), which
# is also how Package.swift picks the libgpiod API. The .deb is then assembled in the arm64
# sysroot itself under qemu-user-static: `edge-agent --version` runs, and dpkg-shlibdeps
# computes the arm64 Depends from the arm64 libraries.
#
# Chroots and the sysroot live in $EDGE_BUILD_CACHE (default /var/cache/edge-agent-build), made
# once and reused (scripts/lib/debian-roots.sh). Needs root (chroot, mounts), network access to
# Debian's archive the first time, ~6 GB of disk in the cache.
#
# Options:
#   --only WHICH    arm64, amd64 (Debian 13) or bookworm (Debian 12, this machine's toolchain)
#   --out DIR       Debian 13 packages go to DIR (default dist/trixie); Debian 12's to dist/
#   --jobs N        build jobs (default 2)
#   --debug         debug builds (faster; the packages are for layout checks only)
set -euo pipefail
cd "$(dirname "$0")/.."
# Swift < 6.2 builds swift-log 1.16.2 from Vendor/swift-log, made here from the package source (nothing of it committed).
bash scripts/vendor-swift-log.sh
REPO="$(pwd)"
# shellcheck source=lib/debian-roots.sh
. scripts/lib/debian-roots.sh

ONLY=""
OUT="dist/trixie"
JOBS=2
CONFIG=release
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="${2:?--only needs arm64, amd64 or bookworm}"; shift ;;
        --out) OUT="${2:?--out needs a folder}"; shift ;;
        --jobs) JOBS="${2:?--jobs needs a number}"; shift ;;
        --debug) CONFIG=debug ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$ONLY" in ""|arm64|amd64|bookworm) ;; *) die "--only must be arm64, amd64 or bookworm" ;; esac
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
[ "$(id -u)" -eq 0 ] || die "run as root (chroots, bind mounts)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "this script runs on an amd64 host"
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac
OUT_IN_ROOT="/src/${OUT#"$REPO"/}"
[ "${OUT#"$REPO"/}" != "$OUT" ] || die "--out must be inside the repository (it is mounted at /src in the chroots)"
mkdir -p "$OUT"
trap unmount_all EXIT

SUMMARY=()
timed() {  # timed LABEL CMD...: runs CMD, records its wall time
    local label="$1" t0=$SECONDS; shift
    "$@"
    SUMMARY+=("$label: $((SECONDS - t0)) s")
    log "$label: $((SECONDS - t0)) s"
}

BUILDER="$(root_dir trixie-amd64)"
SYSROOT="$(root_dir sysroot-trixie-arm64)"
TRIPLE=aarch64-unknown-linux-gnu
SDK_ID=edge-agent-trixie-arm64

if want arm64 || want amd64; then
    ensure_host_tools
    timed "builder chroot (trixie amd64)" ensure_root trixie-amd64 amd64
    prepare_root "$BUILDER" "$REPO"
fi
if want arm64; then
    timed "arm64 sysroot (trixie arm64)" ensure_root sysroot-trixie-arm64 arm64
    prepare_root "$SYSROOT" "$REPO"
    mount_bind "$SYSROOT" "$BUILDER" /sysroot
fi

# --- the Swift SDK for arm64 (paths as seen inside the builder chroot) -----------------------
write_sdk() {
    local bundle="$BUILDER/opt/edge-agent-sdk/$SDK_ID.artifactbundle"
    # What swift-sdk-generator puts in a Linux sysroot: without it the driver warns on every job.
    cat >"$SYSROOT/SDKSettings.json" <<EOF
{ "Version": "13.0", "CanonicalName": "debian-$DEBIAN_SUITE-arm64" }
EOF
    rm -rf "$BUILDER/opt/edge-agent-sdk"
    mkdir -p "$bundle/trixie-arm64"
    cat >"$bundle/info.json" <<EOF
{
  "schemaVersion": "1.0",
  "artifacts": {
    "$SDK_ID": {
      "type": "swiftSDK",
      "version": "$DEBIAN_SUITE",
      "variants": [{ "path": "trixie-arm64" }]
    }
  }
}
EOF
    # Debian's runtime is /usr/libexec/swift/lib/swift/linux on the gateway: the binaries'
    # RUNPATH says so, not the sysroot path the driver would add.
    cat >"$bundle/trixie-arm64/swift-sdk.json" <<EOF
{
  "schemaVersion": "4.0",
  "targetTriples": {
    "$TRIPLE": {
      "sdkRootPath": "/sysroot",
      "swiftResourcesPath": "/sysroot/usr/libexec/swift/lib/swift",
      "includeSearchPaths": ["/sysroot/usr/include"],
      "librarySearchPaths": ["/sysroot/usr/lib/aarch64-linux-gnu", "/sysroot/usr/libexec/swift/lib/swift/linux"],
      "toolsetPaths": ["toolset.json"]
    }
  }
}
EOF
    cat >"$bundle/trixie-arm64/toolset.json" <<EOF
{
  "schemaVersion": "1.0",
  "rootPath": "/usr/libexec/swift/bin",
  "swiftCompiler": {
    "extraCLIOptions": ["-use-ld=lld", "-no-toolchain-stdlib-rpath",
                        "-Xlinker", "-rpath", "-Xlinker", "/usr/libexec/swift/lib/swift/linux"]
  },
  "linker": { "path": "ld.lld" }
}
EOF
}

# --- arm64: cross-compile, then package in the arm64 sysroot under qemu ---------------------
build_arm64() {
    write_sdk
    mkdir -p .build-trixie-arm64
    local env="PKG_CONFIG_SYSROOT_DIR=/sysroot PKG_CONFIG_LIBDIR=/sysroot/usr/lib/aarch64-linux-gnu/pkgconfig:/sysroot/usr/share/pkgconfig"
    timed "arm64 cross build ($CONFIG, swiftlang 6.0.3, -j $JOBS)" in_root "$BUILDER" \
        "$env swift build -c $CONFIG -j $JOBS --scratch-path .build-trixie-arm64 --swift-sdks-path /opt/edge-agent-sdk --swift-sdk $SDK_ID 2>&1 | tee .build-trixie-arm64/build.log >&2; exit \${PIPESTATUS[0]}"
    ! grep -E 'warning:' .build-trixie-arm64/build.log >&2 || die "the arm64 build has warnings (.build-trixie-arm64/build.log)"
    local bin=".build-trixie-arm64/$TRIPLE/$CONFIG"
    [ -x "$bin/edge-agent" ] || bin="$(in_root "$BUILDER" "$env swift build -c $CONFIG --scratch-path .build-trixie-arm64 --swift-sdks-path /opt/edge-agent-sdk --swift-sdk $SDK_ID --show-bin-path" | sed 's|^/src/||')"
    file "$bin/edge-agent" "$bin/edgectl" "$bin/edge-sim" >&2
    file "$bin/edge-agent" | grep -q 'ARM aarch64' || die "$bin/edge-agent is not an aarch64 ELF"
    echo "$bin" >.build-trixie-arm64/bin-path
    local extra=""
    [ "$CONFIG" = release ] || extra="--allow-shared-swift"
    timed "arm64 package (in the arm64 sysroot, under qemu)" in_root "$SYSROOT" \
        "scripts/package-deb.sh --bin-dir '$bin' --shared-swift-runtime --out '$OUT_IN_ROOT' $extra" >/dev/null
}

# --- amd64 for Debian 13: native build in the builder chroot ---------------------------------
build_amd64() {
    mkdir -p .build-trixie-amd64-release
    local extra=()
    [ "$CONFIG" = release ] || extra=(--bin-dir ".build-trixie-amd64/debug" --allow-shared-swift)
    if [ "$CONFIG" = debug ]; then
        in_root "$BUILDER" "swift build -j $JOBS --scratch-path .build-trixie-amd64"
    fi
    timed "amd64 build and package (Debian 13, swiftlang 6.0.3, -j $JOBS)" in_root "$BUILDER" \
        "scripts/package-deb.sh --shared-swift-runtime --scratch-path .build-trixie-amd64-release --out '$OUT_IN_ROOT' ${extra[*]} 2>&1 | tee .build-trixie-amd64-release/build.log >&2; exit \${PIPESTATUS[0]}" >/dev/null
    ! grep -E 'warning:' .build-trixie-amd64-release/build.log >&2 || die "the Debian 13 amd64 build has warnings (.build-trixie-amd64-release/build.log)"
}

# --- Debian 12 amd64, as today ---------------------------------------------------------------
build_bookworm() {
    timed "amd64 build and package (Debian 12, this machine's Swift)" scripts/package-deb.sh >/dev/null
}

want arm64 && build_arm64
want amd64 && build_amd64
want bookworm && build_bookworm

VERSION="$(sed -n 's/^ *public static let version = "\([^"]*\)".*/\1/p' Sources/EdgeAgent/Agent/Agent.swift | head -n 1)"
echo
for line in "${SUMMARY[@]}"; do echo "time  $line"; done
for deb in "$OUT/edge-agent_${VERSION}_arm64.deb" "$OUT/edge-agent_${VERSION}_amd64.deb" "dist/edge-agent_${VERSION}_amd64.deb"; do
    [ -f "$deb" ] || continue
    echo "deb   $deb ($(du -k "$deb" | cut -f1) kB)"
    dpkg-deb -f "$deb" Depends | sed 's/^/      Depends: /'
done
