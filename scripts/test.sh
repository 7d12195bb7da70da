#!/usr/bin/env bash
# The whole test suite from a clean clone: install what is missing, build everything, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
bash scripts/setup.sh
# Warnings are errors: the package builds clean.
swift build --build-tests -Xswiftc -warnings-as-errors
swift test --skip-build
