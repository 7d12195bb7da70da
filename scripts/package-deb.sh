#!/usr/bin/env bash
# Builds the edge-agent Debian package: a release build with the Swift runtime linked
# statically (or Debian's, --shared-swift-runtime), the install layout, and a .deb made with
# dpkg-deb. Prints the .deb's path last.
#
#   scripts/package-deb.sh                      release build (minutes), then dist/edge-agent_<version>_<arch>.deb
#   scripts/package-deb.sh --check              preflight only: tools, input files, version; builds nothing
#   scripts/package-deb.sh --bin-dir DIR        package already-built edge-agent and edgectl from DIR (no build)
#
# Options:
#   --out DIR              where the .deb goes (default: dist/)
#   --scratch-path DIR     swift build scratch folder (default: .build-release)
#   --arch ARCH            Debian architecture of the binaries (default: this machine's); with
#                          --swift-sdk for a cross build, e.g. --arch arm64 --swift-sdk <id>
#   --swift-sdk ID         cross-compilation Swift SDK passed to swift build (see docs/DEPLOYMENT.md)
#   --depends LIST         Depends: libraries instead of computing them with dpkg-shlibdeps
#                          (needed for cross builds whose libraries live in an SDK sysroot)
#   --compress xz|gzip|none  dpkg-deb compression (default xz)
#   --allow-shared-swift   accept binaries linked to the Swift runtime's shared libraries (debug
#                          builds; for tests of the layout only: such a package does not run
#                          on a gateway without a Swift toolchain)
#   --shared-swift-runtime link the Swift runtime dynamically, from the distribution's package
#                          (Debian 13: swiftlang's libswiftlang, which has no static runtime):
#                          builds without --static-swift-stdlib, and Depends: gets the package
#                          owning each runtime library the binaries load (dpkg -S), pinned to its
#                          upstream version (the Swift runtime has no ABI stability on Linux).
#                          Run it on (or in a chroot of) the target Debian release and
#                          architecture: scripts/build-arm64.sh does that for Debian 13.
#
# The version has one source: `public static let version = "X.Y.Z"` in Sources/EdgeAgent/Agent/Agent.swift
# (what the agent reports in status and over MQTT). The built edge-agent must print the same
# with --version, or packaging stops.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

die() { echo "package-deb: $*" >&2; exit 1; }
note() { echo "package-deb: $*" >&2; }

OUT="dist"
SCRATCH=".build-release"
ARCH=""
SWIFT_SDK=""
DEPENDS=""
COMPRESS="xz"
BIN_DIR=""
CHECK=0
ALLOW_SHARED=0
SHARED_RUNTIME=0
while [ $# -gt 0 ]; do
    case "$1" in
        --check) CHECK=1 ;;
        --bin-dir) BIN_DIR="${2:?--bin-dir needs a folder}"; shift ;;
        --out) OUT="${2:?--out needs a folder}"; shift ;;
        --scratch-path) SCRATCH="${2:?--scratch-path needs a folder}"; shift ;;
        --arch) ARCH="${2:?--arch needs a Debian architecture}"; shift ;;
        --swift-sdk) SWIFT_SDK="${2:?--swift-sdk needs an SDK id}"; shift ;;
        --depends) DEPENDS="${2:?--depends needs a list}"; shift ;;
        --compress) COMPRESS="${2:?--compress needs xz, gzip or none}"; shift ;;
        --allow-shared-swift) ALLOW_SHARED=1 ;;
        --shared-swift-runtime) SHARED_RUNTIME=1 ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$COMPRESS" in xz|gzip|none) ;; *) die "--compress must be xz, gzip or none, not $COMPRESS" ;; esac

# --- the version, from its single place --------------------------------------------------
VERSION_SOURCE="Sources/EdgeAgent/Agent/Agent.swift"
VERSION="$(sed -n 's/^ *public static let version = "\([^"]*\)".*/\1/p' "$VERSION_SOURCE" | head -n 1)"
[ -n "$VERSION" ] || die "no 'public static let version = \"...\"' in $VERSION_SOURCE"
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "version '$VERSION' in $VERSION_SOURCE is not a Debian version"

# --- the architecture ---------------------------------------------------------------------
NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo unknown)"
[ -n "$ARCH" ] || ARCH="$NATIVE_ARCH"
case "$ARCH" in
    amd64) ELF_MACHINE="X86-64" ;;
    arm64) ELF_MACHINE="AArch64" ;;
    armhf) ELF_MACHINE="ARM" ;;
    *) die "unsupported architecture $ARCH (amd64, arm64, armhf)" ;;
esac
if [ "$ARCH" != "$NATIVE_ARCH" ] && [ -z "$SWIFT_SDK" ] && [ -z "$BIN_DIR" ] && [ "$CHECK" -eq 0 ]; then
    die "building for $ARCH on $NATIVE_ARCH needs --swift-sdk (or --bin-dir with binaries built elsewhere)"
fi

# --- what goes into the package -----------------------------------------------------------
UNIT_FILES=(systemd/edge-agent.service systemd/edge-agent.sysusers systemd/edge-agent.tmpfiles systemd/60-edge-agent-gpio.rules)
CONFIG_FILE="examples/agent.yaml"
# Boards/sim-field.yaml is edge-sim's own file (the simulator is not shipped).
BOARD_FILES=()
for f in Boards/*.yaml; do [ "$(basename "$f")" = "sim-field.yaml" ] || BOARD_FILES+=("$f"); done
PROFILE_FILES=(Profiles/*.yaml)
DOC_FILES=(README.md docs/DEPLOYMENT.md)

preflight() {
    local missing=()
    for t in dpkg-deb readelf sed find du md5sum; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ -z "$DEPENDS" ]; then command -v dpkg-shlibdeps >/dev/null || missing+=("dpkg-shlibdeps (apt install dpkg-dev, or pass --depends)"); fi
    if [ -z "$BIN_DIR" ]; then command -v swift >/dev/null || missing+=("swift (Swift 6 toolchain on PATH or in /opt/swift/usr/bin)"); fi
    [ "${#missing[@]}" -eq 0 ] || die "missing tools: ${missing[*]}"
    for f in "${UNIT_FILES[@]}" "$CONFIG_FILE" "${BOARD_FILES[@]}" "${PROFILE_FILES[@]}" "${DOC_FILES[@]}"; do
        [ -f "$f" ] || die "missing input file $f"
    done
    [ "${#BOARD_FILES[@]}" -gt 0 ] || die "no board files in Boards/"
    [ -f "${PROFILE_FILES[0]}" ] || die "no device profiles in Profiles/"
    grep -q '^Type=notify$' systemd/edge-agent.service || die "systemd/edge-agent.service is not Type=notify"
    grep -q '^ExecStart=/usr/bin/edge-agent ' systemd/edge-agent.service || die "systemd/edge-agent.service does not start /usr/bin/edge-agent"
}

preflight
DEB_NAME="edge-agent_${VERSION}_${ARCH}.deb"
if [ "$CHECK" -eq 1 ]; then
    echo "package-deb: ok: edge-agent $VERSION for $ARCH ($DEB_NAME); inputs: ${#BOARD_FILES[@]} boards, ${#PROFILE_FILES[@]} profiles, $(basename "$CONFIG_FILE") as /etc/edge-agent/agent.yaml"
    exit 0
fi

# --- the binaries -------------------------------------------------------------------------
if [ -z "$BIN_DIR" ]; then
    build=(swift build -c release --scratch-path "$SCRATCH")
    if [ "$SHARED_RUNTIME" -eq 0 ]; then build+=(--static-swift-stdlib); runtime_kind="static"; else runtime_kind="shared"; fi
    [ -z "$SWIFT_SDK" ] || build+=(--swift-sdk "$SWIFT_SDK")
    for product in edge-agent edgectl; do
        note "building $product ($VERSION, $ARCH, release, $runtime_kind Swift runtime)"
        "${build[@]}" --product "$product" >&2
    done
    BIN_DIR="$("${build[@]}" --show-bin-path)"
fi
for exe in edge-agent edgectl; do
    [ -x "$BIN_DIR/$exe" ] || die "no executable $BIN_DIR/$exe"
    machine="$(readelf -h "$BIN_DIR/$exe" | sed -n 's/^ *Machine: *//p')"
    case "$machine" in *"$ELF_MACHINE"*) ;; *) die "$BIN_DIR/$exe is built for '$machine', not $ARCH" ;; esac
    shared_swift="$(readelf -d "$BIN_DIR/$exe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' \
        | grep -E '^lib(swift|Foundation|dispatch|BlocksRuntime|_FoundationICU)' || true)"
    if [ -n "$shared_swift" ] && [ "$ALLOW_SHARED" -eq 0 ] && [ "$SHARED_RUNTIME" -eq 0 ]; then
        die "$BIN_DIR/$exe needs the Swift runtime's shared libraries ($(echo $shared_swift)); build with --static-swift-stdlib"
    fi
done
if [ "$ARCH" = "$NATIVE_ARCH" ]; then
    reported="$("$BIN_DIR/edge-agent" --version 2>/dev/null || true)"
    [ "$reported" = "edge-agent $VERSION" ] || die "$BIN_DIR/edge-agent --version says '$reported', $VERSION_SOURCE says $VERSION: rebuild, or make them agree"
fi

# --- the tree -----------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-deb.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
PKG="$WORK/edge-agent"
install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/etc/edge-agent" \
    "$PKG/usr/share/edge-agent/Boards" "$PKG/usr/share/edge-agent/Profiles" \
    "$PKG/usr/lib/systemd/system" "$PKG/usr/lib/sysusers.d" "$PKG/usr/lib/tmpfiles.d" "$PKG/usr/lib/udev/rules.d" \
    "$PKG/usr/share/doc/edge-agent/examples"

if command -v strip >/dev/null && [ "$ARCH" = "$NATIVE_ARCH" ]; then STRIP=(strip --strip-unneeded)
elif command -v llvm-objcopy >/dev/null; then STRIP=(llvm-objcopy --strip-unneeded)
else STRIP=(true); note "no strip tool: binaries keep their symbols"; fi
for exe in edge-agent edgectl; do
    install -m 0755 "$BIN_DIR/$exe" "$PKG/usr/bin/$exe"
    "${STRIP[@]}" "$PKG/usr/bin/$exe"
done
install -m 0644 "$CONFIG_FILE" "$PKG/etc/edge-agent/agent.yaml"
install -m 0644 "${BOARD_FILES[@]}" "$PKG/usr/share/edge-agent/Boards/"
install -m 0644 "${PROFILE_FILES[@]}" "$PKG/usr/share/edge-agent/Profiles/"
install -m 0644 systemd/edge-agent.service "$PKG/usr/lib/systemd/system/edge-agent.service"
install -m 0644 systemd/edge-agent.sysusers "$PKG/usr/lib/sysusers.d/edge-agent.conf"
install -m 0644 systemd/edge-agent.tmpfiles "$PKG/usr/lib/tmpfiles.d/edge-agent.conf"
install -m 0644 systemd/60-edge-agent-gpio.rules "$PKG/usr/lib/udev/rules.d/60-edge-agent-gpio.rules"
install -m 0644 "${DOC_FILES[@]}" "$PKG/usr/share/doc/edge-agent/"
install -m 0644 examples/*.yaml "$PKG/usr/share/doc/edge-agent/examples/"
cat > "$PKG/usr/share/doc/edge-agent/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edge-agent
Comment: The executables link the Swift runtime and Foundation
 (Apache-2.0 with Runtime Library Exception, https://swift.org/LICENSE.txt),
 statically or from the distribution's package, and swift-log and
 swift-argument-parser (Apache-2.0).

Files: *
Copyright: the edge-agent authors
License: see the project repository
EOF

# --- dependencies -------------------------------------------------------------------------
if [ -z "$DEPENDS" ]; then
    mkdir -p "$WORK/shlibs/debian"
    printf 'Source: edge-agent\n\nPackage: edge-agent\nArchitecture: any\n' > "$WORK/shlibs/debian/control"
    shlibdeps=(dpkg-shlibdeps -O)
    if [ "$SHARED_RUNTIME" -eq 1 ]; then
        # The distribution's Swift runtime ships no shlibs/symbols file (Debian 13's
        # libswiftlang): dpkg-shlibdeps skips it, and the owning package is added below.
        runtime_lib_dirs=()
        for exe in edge-agent edgectl; do
            rp="$(readelf -d "$PKG/usr/bin/$exe" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p' | tr ':' '\n' | grep -v '^\$ORIGIN' || true)"
            for d in $rp; do runtime_lib_dirs+=("$d"); done
        done
        [ "${#runtime_lib_dirs[@]}" -gt 0 ] || die "--shared-swift-runtime: the binaries have no RUNPATH to the Swift runtime"
        for d in $(printf '%s\n' "${runtime_lib_dirs[@]}" | sort -u); do shlibdeps+=(-l"$d"); done
        shlibdeps+=(--ignore-missing-info)
    elif [ "$ALLOW_SHARED" -eq 1 ]; then
        # The toolchain's runtime is found but belongs to no package: no Depends for it.
        runtime="$(dirname "$(command -v swift)")/../lib/swift/linux"
        shlibdeps+=(-l"$runtime" --ignore-missing-info)
    fi
    line="$(cd "$WORK/shlibs" && DEB_HOST_ARCH="$ARCH" "${shlibdeps[@]}" -e"$PKG/usr/bin/edge-agent" -e"$PKG/usr/bin/edgectl" 2>"$WORK/shlibdeps.err")" \
        || die "dpkg-shlibdeps failed (for a cross build pass --depends): $(cat "$WORK/shlibdeps.err")"
    DEPENDS="${line#shlibs:Depends=}"
    if [ "$SHARED_RUNTIME" -eq 1 ]; then
        # The package owning each Swift runtime library the binaries load, at this upstream version.
        runtime_pkgs=()
        for exe in edge-agent edgectl; do
            for lib in $(readelf -d "$PKG/usr/bin/$exe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' \
                    | grep -E '^lib(swift|Foundation|dispatch|BlocksRuntime|_FoundationICU)' || true); do
                file=""
                for d in "${runtime_lib_dirs[@]}"; do [ -e "$d/$lib" ] && { file="$d/$lib"; break; }; done
                [ -n "$file" ] || die "--shared-swift-runtime: $lib (needed by $exe) not found in ${runtime_lib_dirs[*]}"
                owner="$(dpkg -S "$file" 2>/dev/null | head -n 1 | cut -d: -f1)" || true
                [ -n "$owner" ] || owner="$(dpkg -S "$(readlink -f "$file")" 2>/dev/null | head -n 1 | cut -d: -f1)" || true
                [ -n "$owner" ] || die "--shared-swift-runtime: $file (needed by $exe) belongs to no installed package"
                runtime_pkgs+=("$owner")
            done
        done
        for p in $(printf '%s\n' "${runtime_pkgs[@]}" | sort -u); do
            v="$(dpkg-query -W -f '${Version}' "$p")"
            upstream="${v#*:}"; upstream="${upstream%-*}"
            DEPENDS="$DEPENDS, $p (>= $v)"
            last="${upstream##*.}"
            if [ "$last" != "$upstream" ] && [[ "$last" =~ ^[0-9]+$ ]]; then
                DEPENDS="$DEPENDS, $p (<< ${upstream%.*}.$((last + 1))~)"
            fi
        done
    fi
fi
# systemd: sysusers/tmpfiles in postinst and the unit; procps: /bin/kill for ExecReload;
# tzdata: the zone files gateway.timezone names (read by ZoneRules).
DEPENDS="$DEPENDS, systemd, procps, tzdata"

INSTALLED_KB="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
cat > "$PKG/DEBIAN/control" <<EOF
Package: edge-agent
Version: $VERSION
Architecture: $ARCH
Maintainer: ${DEB_MAINTAINER:-edge-agent maintainers <edge-agent@localhost>}
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Section: net
Priority: optional
Description: street-cabinet gateway daemon (lighting, bus priority, bollards)
 edge-agent runs on the gateways in street cabinets and junction controllers:
 presence-based lamp dimming, bus-priority requests to the traffic controller
 and retractable bollards with safety interlocks, over Modbus (TCP, RTU) and
 GPIO, with an MQTT uplink to the control centre. Includes edgectl, the
 technician CLI, board and device profiles and the systemd unit.
EOF
echo "/etc/edge-agent/agent.yaml" > "$PKG/DEBIAN/conffiles"

# Maintainer scripts. DPKG_ROOT is set when dpkg installs into another root
# (dpkg --root DIR --force-script-chrootless): then only that root is touched, and no service
# manager or udev is called.
cat > "$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    systemd-sysusers ${DPKG_ROOT:+--root="$DPKG_ROOT"} edge-agent.conf
    systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create edge-agent.conf
    if [ -z "${DPKG_ROOT:-}" ]; then
        if [ -d /run/udev ] && command -v udevadm >/dev/null; then
            udevadm control --reload || true
            udevadm trigger --subsystem-match=gpio --action=add || true
        fi
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload || true
            # An upgrade restarts a running agent; a first install leaves it stopped until the
            # config is written: systemctl enable --now edge-agent
            if [ -n "$2" ]; then systemctl try-restart edge-agent.service || true; fi
        fi
    fi
fi
exit 0
EOF
cat > "$PKG/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl disable --now edge-agent.service || true
fi
exit 0
EOF
cat > "$PKG/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
    # The state folder holds the outbox: purging the package drops unsent messages.
    rm -rf "${DPKG_ROOT:-}/var/lib/edge-agent"
fi
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
exit 0
EOF
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/prerm" "$PKG/DEBIAN/postrm"
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) > "$PKG/DEBIAN/md5sums"

mkdir -p "$OUT"
case "$COMPRESS" in
    xz) z=(-Zxz) ;;
    gzip) z=(-Zgzip -z1) ;;
    none) z=(-Znone) ;;
esac
dpkg-deb --root-owner-group "${z[@]}" --build "$PKG" "$OUT/$DEB_NAME" >&2
note "built $OUT/$DEB_NAME (Depends: $DEPENDS)"
echo "$(cd "$OUT" && pwd)/$DEB_NAME"
