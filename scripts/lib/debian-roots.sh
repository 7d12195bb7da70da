# Debian roots for the Debian 13 builds (sourced by scripts/build-arm64.sh and scripts/run-arm64.sh).
#
# Every root is made once with mmdebstrap from Debian's archive and kept in $EDGE_BUILD_CACHE
# (default /var/cache/edge-agent-build, outside the repository); it is remade only when its
# package list changes (or after `rm -rf` of it). arm64 roots are made and used on amd64 through
# qemu-user-static (binfmt_misc with the F flag: the emulator works inside a chroot too).
#
#   trixie-amd64          the builder: Debian 13's amd64 swiftlang 6.0.3 (the compiler of both
#                         Debian 13 packages), the -dev libraries, dpkg-dev, libstdc++ headers
#                         (swift-crypto's C++ when scripts/test-trixie.sh builds with Swift 6.3)
#   sysroot-trixie-arm64  the arm64 sysroot: swiftlang's arm64 runtime, Swift modules and
#                         resource folder, the -dev libraries (libgpiod 2.2, libmodbus 3.1.11,
#                         libmosquitto 2.0.21, libssl, libsqlite3, libyaml), libc/libgcc/libstdc++ for the
#                         link, dpkg-dev for dpkg-shlibdeps (run under qemu when packaging)
#   run-trixie-arm64      a Debian 13 arm64 system with systemd, where the arm64 .deb is installed
#                         with apt (its Depends pull the rest) and run under qemu
# shellcheck shell=bash

EDGE_BUILD_CACHE="${EDGE_BUILD_CACHE:-/var/cache/edge-agent-build}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"

ROOT_PACKAGES_trixie_amd64="swiftlang,libstdc++-14-dev,libgpiod-dev,libmodbus-dev,libmosquitto-dev,libsqlite3-dev,libyaml-dev,libssl-dev,pkg-config,git,dpkg-dev,file,binutils-aarch64-linux-gnu,ca-certificates"
ROOT_PACKAGES_sysroot_trixie_arm64="swiftlang,libgpiod-dev,libmodbus-dev,libmosquitto-dev,libsqlite3-dev,libyaml-dev,libssl-dev,dpkg-dev,file"
ROOT_PACKAGES_run_trixie_arm64="systemd,procps,ca-certificates"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# Host tools: mmdebstrap, qemu-user-static with binfmt_misc registered for aarch64.
ensure_host_tools() {
    local need=()
    command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
    command -v file >/dev/null || need+=(file)
    if [ "${#need[@]}" -gt 0 ]; then
        log "installing ${need[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc (needed to run arm64 code under qemu)"
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || true
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || die "binfmt_misc has no enabled qemu-aarch64 entry"
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 binfmt entry lacks the F flag (needed inside chroots)"
}

root_dir() { echo "$EDGE_BUILD_CACHE/$1"; }

# ensure_root NAME ARCH: makes the root once (mmdebstrap), remade only if its package list changed.
ensure_root() {
    local name="$1" arch="$2" var packages dir stamp
    var="ROOT_PACKAGES_${name//-/_}"
    packages="${!var}"
    dir="$(root_dir "$name")"
    stamp="$dir/.edge-agent-root"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$DEBIAN_SUITE $arch $packages" ]; then
        return 0
    fi
    log "making $name ($DEBIAN_SUITE $arch, once; kept in $dir): $packages"
    unmount_root "$dir"
    # Never delete through a bind mount (the repository, a package mirror, a toolchain).
    if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 || index($2, d ".tmp/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        die "something is still mounted under $dir: unmount it first (grep $dir /proc/mounts)"
    fi
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$EDGE_BUILD_CACHE/logs"
    local t0=$SECONDS
    mmdebstrap --arch="$arch" --variant=apt --include="$packages" "$DEBIAN_SUITE" "$dir.tmp" "$DEBIAN_MIRROR" \
        >"$EDGE_BUILD_CACHE/logs/mmdebstrap-$name.log" 2>&1 \
        || die "mmdebstrap $name failed: see $EDGE_BUILD_CACHE/logs/mmdebstrap-$name.log"
    mv "$dir.tmp" "$dir"
    echo "$DEBIAN_SUITE $arch $packages" >"$stamp"
    log "$name made in $((SECONDS - t0)) s"
}

# Mounts (proc, dev, the repository at /src, the Swift package mirror if any) for chroot use;
# undone by unmount_all (trap). A bind mount of another root: mount_bind SRC ROOT TARGET.
MOUNTED=()
mount_bind() {
    local src="$1" root="$2" target="$3"
    mkdir -p "$root$target"
    mountpoint -q "$root$target" && return 0
    mount --bind "$src" "$root$target"
    MOUNTED+=("$root$target")
}
prepare_root() {
    local root="$1" repo="$2"
    if ! mountpoint -q "$root/proc"; then mount -t proc proc "$root/proc"; MOUNTED+=("$root/proc"); fi
    mount_bind /dev "$root" /dev
    mount_bind "$repo" "$root" /src
    if [ -d /opt/swift-packages ]; then mount_bind /opt/swift-packages "$root" /opt/swift-packages; fi
    # The host's git settings (URL rewrites to a package mirror, if any) and DNS.
    [ -f /etc/gitconfig ] && cp /etc/gitconfig "$root/etc/gitconfig"
    git config --file "$root/etc/gitconfig" --replace-all safe.directory '*'
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}
unmount_root() {
    local root="$1" m
    for m in proc dev src opt/swift-packages opt/host-swift sysroot; do
        mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
    done
    return 0
}
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
    MOUNTED=()
}

# in_root ROOT CMD...: runs CMD (bash -c) in the root, in /src, with a clean environment.
in_root() {
    local root="$1"; shift
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
        ${EXTRA_ENV:+$EXTRA_ENV} bash -c "cd /src && $*"
}
