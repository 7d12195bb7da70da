#!/usr/bin/env bash
# The whole test suite from a clean clone: install what is missing, build everything, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
bash scripts/setup.sh
mkdir -p .build
# The package builds without warnings: any warning in our own Sources/ or Tests/ fails the run
# (dependencies' warnings are theirs).
swift build --build-tests 2>&1 | tee .build/build.log
if grep -E "^$PWD/(Sources|Tests)/.*: warning:" .build/build.log; then
    echo "test.sh: the build has warnings (above); fix them" >&2
    exit 1
fi
# Serially: many tests block on real processes and sockets; on a 2-core machine running them
# side by side starves the cooperative pool and turns timeouts into flakes.
swift test --skip-build --no-parallel
