#!/bin/sh
# The line coverage each fuzz target's corpus reaches in the reader it is
# for: the replay programs built with clang's source coverage (COVBUILD)
# run over FUZZBUILD/corpus/TARGET, then llvm-cov's report on the reader's
# files.  Prints one line per target.
#   coverage.sh COVBUILD FUZZBUILD
set -eu
cov=$(cd "$1" && pwd)
fuzz=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata)
llvmcov=$(command -v llvm-cov-14 || command -v llvm-cov)
files_frontend="compiler/source.c compiler/diag.c compiler/ast.c compiler/sema.c compiler/args.c
    compiler/summary.c grammar/parser.y grammar/lexer.l"
files_safetensors="runtime/src/safetensors.c"
files_data="runtime/src/data.c"
files_predict_lines="runtime/src/predict_lines.c"
files_program_args="runtime/src/train.c runtime/src/predict_lines.c"
files_onnx="compiler/onnx_import.c"
for target in frontend safetensors data predict_lines program_args onnx; do
    rm -f "$cov"/*.profraw
    (cd "$cov" && LLVM_PROFILE_FILE="$cov/$target-%p.profraw" \
        "$cov/replay_$target" "$fuzz/corpus/$target" >/dev/null 2>&1) || true
    "$profdata" merge -sparse "$cov/$target"-*.profraw -o "$cov/$target.profdata"
    eval files=\$files_$target
    paths=""
    for f in $files; do
        paths="$paths $src/$f"
    done
    # shellcheck disable=SC2086
    "$llvmcov" report "$cov/replay_$target" -instr-profile="$cov/$target.profdata" $paths |
        awk -v t="$target" '$1 == "TOTAL" { print t ": " $10 " of " $8 " lines" }
            NF >= 10 && $1 ~ /\.(c|y|l)$/ { print "    " $1 ": " $10 " of " $8 " lines" }'
done
