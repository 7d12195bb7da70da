#!/usr/bin/env bash
# Makes Vendor/swift-log/Sources/Logging (and its LICENSE/NOTICE) from apple/swift-log 1.16.2, for
# toolchains older than Swift 6.2 (Debian 13's swiftlang 6.0.3), which cannot read upstream's
# tools-6.2 manifest. Nothing of swift-log is committed: the sources are fetched from the package
# source (the same https://github.com/apple/swift-log.git that Swift >= 6.2 resolves, through the
# machine's git configuration) and edited mechanically as Vendor/swift-log/PATCHES.md says.
# Vendor/swift-log/Package.swift (ours) builds them. Idempotent; scripts/build-arm64.sh and
# scripts/test-trixie.sh run it before building. Usage: scripts/vendor-swift-log.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dest=Vendor/swift-log
version=1.16.2
if [ -f "$dest/Sources/Logging/.version" ] && [ "$(cat "$dest/Sources/Logging/.version")" = "$version" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --depth 1 --branch "$version" https://github.com/apple/swift-log.git "$tmp/swift-log" 2>/dev/null \
    || { echo "vendor-swift-log.sh: cannot fetch apple/swift-log $version" >&2; exit 1; }
rm -rf "$dest/Sources"
mkdir -p "$dest/Sources"
cp -R "$tmp/swift-log/Sources/Logging" "$dest/Sources/Logging"
rm -rf "$dest/Sources/Logging/Docs.docc" "$dest/Sources/Logging/CMakeLists.txt"
cp "$tmp/swift-log/LICENSE.txt" "$tmp/swift-log/NOTICE.txt" "$dest/"
src="$dest/Sources/Logging"
# 1. nonisolated(nonsending) (SE-0461, Swift 6.2) removed.
sed -i 's/nonisolated(nonsending) //g' "$src"/*.swift "$src"/Handlers/*.swift
# 2. #elseif _runtime(_multithreaded) (Swift 6.1) -> #elseif !os(WASI).
sed -i 's/#elseif _runtime(_multithreaded)/#elseif !os(WASI)/' "$src/Locks.swift"
# 3. Trailing commas before ")" in parameter lists (SE-0439, Swift 6.1): the two in StreamLogHandler.
perl -0pi -e 's/error: event\.error,(\s*\))/error: event.error$1/; s/error: \(any Error\)\?,(\s*\))/error: (any Error)?$1/' "$src/Handlers/StreamLogHandler.swift"
echo "$version" > "$src/.version"
