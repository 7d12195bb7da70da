#!/usr/bin/env bash
# ThreadSanitizer over the in-process suites (everything but SystemTests, whose processes are
# not instrumented). Separate build folder; prints the report count and exits 1 on any report.
# Known: TSan on this toolchain does not see Synchronization.Mutex's lock, so a report whose
# stacks hold only Mutex-guarded accesses is false; Sources use EdgeRuntime's Lock/Locked
# (pthread, which TSan sees).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
swift build --build-tests --sanitize=thread --build-path .build-tsan 2>&1 | grep -E "error:" && exit 1
log=.build-tsan/tsan.log
TSAN_OPTIONS="halt_on_error=0 ${TSAN_OPTIONS:-}" swift test --skip-build --no-parallel --sanitize=thread --build-path .build-tsan \
    --filter 'EdgeAgentTests|DriversTests|ProtocolsTests|SimulatorTests|ConfigToolkitTests' >"$log" 2>&1
rc=$?
reports=$(grep -c "WARNING: ThreadSanitizer" "$log")
echo "tsan: $(grep -E '^.* Test run with' "$log" | tail -1)"
echo "tsan: $reports reports (log: $log)"
[ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]
