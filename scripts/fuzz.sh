#!/usr/bin/env bash
# Fuzzes edge-agent's parsers with libFuzzer + AddressSanitizer (docs/reliability/fuzzing.md).
# Not part of the test suite. Targets (Fuzz/Sources/<target>):
#   FuzzConfig           agent.yaml (ConfigLoader with its board and profiles) and ConfigSyntax
#   FuzzCommand          signed centre commands (CommandVerifier, CommandAction.parse)
#   FuzzControlProtocol  control-socket byte streams (readLine, ControlProtocol, the control core)
#   FuzzProfile          device profiles and boards (ProfileLoader, BoardLoader, PointCodec)
#   FuzzFieldData        random register blocks through PointCodec.decode and the control step
#
# Usage: scripts/fuzz.sh [--seconds N] [--only NAME] [--max-len BYTES]
#   --seconds N   fuzzing time per target (default 120)
#   --only NAME   one target: FuzzConfig, Config, config ... (default: all four, one after the other)
#   --max-len B   longest input libFuzzer makes (default: libFuzzer's guess from the corpus)
#
# Files: Fuzz/corpus/<target>/   seed corpus, regenerated from the examples by the real code (commit it)
#        Fuzz/.build/corpus/<target>/   what libFuzzer adds (kept between runs, not committed)
#        Fuzz/artifacts/<target>/  crash-*, timeout-*, oom-* inputs (not committed)
#        Fuzz/.build/logs/<target>.log, Fuzz/.build/fuzz-summary.tsv
# Reproduce an artifact: Fuzz/.build/debug/<target> Fuzz/artifacts/<target>/crash-...
#   (EDGE_FUZZ_EXPLAIN=1 makes the target say what became of each input).
# Exit status: 0 no crash, 1 a target crashed (its artifacts are listed), 2 usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

seconds=120
only=""
max_len=""
all_targets=(FuzzConfig FuzzCommand FuzzControlProtocol FuzzProfile FuzzFieldData)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) [ $# -ge 2 ] || usage; seconds="$2"; shift 2 ;;
        --only) [ $# -ge 2 ] || usage; only="$2"; shift 2 ;;
        --max-len) [ $# -ge 2 ] || usage; max_len="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "fuzz.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "fuzz.sh: --seconds needs a positive whole number" >&2; exit 2; }

targets=("${all_targets[@]}")
if [ -n "$only" ]; then
    targets=()
    want=$(echo "$only" | tr 'A-Z' 'a-z' | sed 's/^fuzz//')
    for t in "${all_targets[@]}"; do
        [ "$(echo "${t#Fuzz}" | tr 'A-Z' 'a-z')" = "$want" ] && targets=("$t")
    done
    [ ${#targets[@]} -eq 1 ] || { echo "fuzz.sh: no target '$only' (use one of: ${all_targets[*]})" >&2; exit 2; }
fi

mkdir -p Fuzz/.build/logs Fuzz/artifacts
build_log=Fuzz/.build/logs/build.log
echo "fuzz.sh: building the fuzz targets (debug, -sanitize=fuzzer,address); log: $build_log"
# One product at a time: building the whole graph would build the root package's executables,
# whose top-level code -parse-as-library refuses. gold warns about every ASan register-check
# helper; that is noise, not our code.
: >"$build_log"
for t in "${targets[@]}"; do
    set +e
    swift build -c debug --package-path Fuzz --product "$t" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
        | grep -v "Cannot export local symbol '__asan" >>"$build_log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        grep -E "error:" "$build_log" | head -20 >&2 || true
        echo "fuzz.sh: build of $t failed (see $build_log)" >&2
        exit 2
    fi
done
if grep -E "^$PWD/(Fuzz/Sources|Sources)/.*: warning:" "$build_log"; then
    echo "fuzz.sh: the build has warnings in our sources (above)" >&2
    exit 2
fi

# The Swift backtracer would run on every crash; libFuzzer reports it itself.
export SWIFT_BACKTRACE=enable=no
summary=Fuzz/.build/fuzz-summary.tsv
printf "target\tseconds\texecs\texec_per_s\tcorpus_files\tcorpus_bytes\tcov\tft\tcrashes\n" >"$summary"
failed=0
child=""
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 130' INT TERM

for t in "${targets[@]}"; do
    bin=Fuzz/.build/debug/$t
    seeds=Fuzz/corpus/$t
    work=Fuzz/.build/corpus/$t
    artifacts=Fuzz/artifacts/$t
    log=Fuzz/.build/logs/$t.log
    mkdir -p "$work" "$artifacts"
    EDGE_FUZZ_WRITE_SEEDS="$seeds" "$bin" 2>/dev/null
    before=$(ls "$artifacts" | wc -l)
    : >"$log"
    echo "fuzz.sh: $t for ${seconds}s (seeds: $(ls "$seeds" | wc -l) files in $seeds)"
    # libFuzzer stops at the first crash: start again (the corpus is kept) until the time is used.
    remaining=$seconds
    execs=0
    rounds=0
    start=$(date +%s)
    while [ "$remaining" -gt 0 ] && [ "$rounds" -lt 10 ]; do
        rounds=$((rounds + 1))
        args=("$work" "$seeds" -max_total_time="$remaining" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$artifacts/" -dict="Fuzz/dict/$t.dict" -close_fd_mask=1)
        [ -n "$max_len" ] && args+=(-max_len="$max_len")
        set +e
        "$bin" "${args[@]}" </dev/null >>"$log" 2>&1 &
        child=$!
        wait "$child"
        rc=$?
        child=""
        set -e
        n=$(grep -a "^stat::number_of_executed_units:" "$log" | tail -1 | awk '{print $2}')
        execs=$((execs + ${n:-0}))
        remaining=$((seconds - ($(date +%s) - start)))
        [ "$rc" -eq 0 ] && break
    done
    elapsed=$(($(date +%s) - start))
    last=$(grep -a -E "^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)" "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/\([0-9A-Za-z]*\).*/\1 \2/p')
    crashes=$(($(ls "$artifacts" | wc -l) - before))
    rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$t" "$elapsed" "$execs" "$rate" "${corp% *}" "${corp#* }" "${cov:-?}" "${ft:-?}" "$crashes" >>"$summary"
    if [ "$crashes" -gt 0 ]; then
        failed=1
        echo "fuzz.sh: $t: $crashes new artifact(s):" >&2
        ls -t "$artifacts" | head -"$crashes" | sed "s|^|  $artifacts/|" >&2
        grep -a -E "INVARIANT BROKEN|ERROR: AddressSanitizer|Fatal error|SUMMARY:" "$log" | sort -u | head -5 | sed 's/^/  /' >&2
    fi
done

echo
column -t -s "$(printf '\t')" "$summary"
exit $failed
