#!/bin/sh
# Run each fuzz target for SECONDS, seeded with its corpus (tests/fuzz/seeds,
# the regressions, and for the front end the examples and the error
# corpus), and print a line per target: runs, coverage (libFuzzer's edges
# and features), the corpus it grew.  Exits non-zero on any finding (a
# crash, a leak, undefined behaviour, a timeout, memory past 2 GB); the
# input is kept as BUILD/findings/TARGET-*, to be added to
# tests/fuzz/regressions/TARGET/ with the fix, where make check replays it.
#   run_fuzz.sh BUILD SECONDS [TARGET...]
set -eu
build=$(cd "$1" && pwd)
seconds=${2:-300}
shift 2 || true
targets=${*:-frontend safetensors data predict_lines program_args onnx}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/findings"
status=0
summary=""
for target in $targets; do
    corpus=$build/corpus/$target
    mkdir -p "$corpus"
    cp "$here/seeds/$target"/* "$corpus"/ 2>/dev/null || true
    cp "$here/regressions/$target"/* "$corpus"/ 2>/dev/null || true
    if [ "$target" = frontend ]; then
        cp "$here"/../../examples/*.cnn "$here"/../errors/*.cnn "$corpus"/
    fi
    log=$build/fuzz-$target.log
    echo "fuzz: $target for $seconds s (log: $log)"
    # close_fd_mask=3: the programs' own output is noise; libFuzzer's
    # reports still reach the log.
    if ! (cd "$build" && "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -max_len=65536 -close_fd_mask=3 -print_final_stats=1 \
            -artifact_prefix="$build/findings/$target-" "$corpus") >"$log" 2>&1; then
        status=1
        echo "fuzz: $target: a finding; the end of its log:" >&2
        tail -30 "$log" >&2
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    summary="$summary
$target: ${runs:-?} runs, $cov, corpus $(ls "$corpus" | wc -l) inputs"
done
echo "fuzz: $seconds s per target$summary"
[ $status -eq 0 ] && echo "fuzz: no finding"
exit $status
