#!/bin/sh
# The LLVM backend's IR: for every example, benchmark and gradient-check
# model (inference and training code), cnngen --emit=llvm must write a
# module that `opt -verify` accepts; the benchmark models' loops must be
# vectorised (vector types in the optimised IR); and every example's
# object (with and without training code, with --main) must define the
# same global symbols, of the same kinds, as its C compiled by cc
# (not with --no-symbols: the sanitizer build, where the objects come from
# LLVM's own uninstrumented code generator anyway; nor for the two big
# examples, fashion and video3d, whose symbols the same code writes as
# every other model's, and whose objects took a third of the test).  The
# C is compiled as its plain loops at -O0: the clones are static, so the
# public symbols are the same, and all of them at -O1 took minutes
# (video3d's alone 40 s).
#   test_llvm_ir.sh CNNGEN OPT SOURCE_DIR RUNTIME_INCLUDE [--no-symbols]
set -u
cnngen=$1 opt=$2 src=$3 include=$4 symbol_models="$3/examples/*.cnn"
[ "${5:-}" = "--no-symbols" ] && symbol_models=""
pass=0 fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for model in "$src"/examples/*.cnn "$src"/examples/*/*.cnn "$src"/bench/*.cnn "$src"/tests/gradcheck/*.cnn; do
    name=$(basename "$model" .cnn)
    if ! "$cnngen" "$model" --main --emit=llvm -o "$work/$name.ll" 2>"$work/err"; then
        fail=$((fail + 1)); echo "FAIL: cnngen --emit=llvm $model:"; cat "$work/err"
    elif ! "$opt" -verify -disable-output "$work/$name.ll" 2>"$work/err"; then
        fail=$((fail + 1)); echo "FAIL: opt -verify rejects the IR of $model:"; head -20 "$work/err"
    else
        pass=$((pass + 1))
    fi
done
for name in lenet fashion video3d; do
    if grep -qE '<(4|8|16) x float>' "$work/$name.ll"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL: no vector code in the IR of bench/$name.cnn"
    fi
done
symbols() {
    nm -g --defined-only "$1" | awk '{print $2, $3}' | sort
}
# shellcheck disable=SC2086
for model in $symbol_models; do
    case "$model" in */fashion.cnn | */video3d.cnn) continue ;; esac
    for options in "--main" "--no-train"; do
        # shellcheck disable=SC2086
        "$cnngen" "$model" $options -o "$work/s.c" 2>/dev/null &&
            cc -O0 -DCNNGEN_PORTABLE -c "$work/s.c" -I "$include" -o "$work/s_c.o" &&
            "$cnngen" "$model" $options --emit=obj -o "$work/s.o" 2>/dev/null
        if [ -s "$work/s.o" ] && [ "$(symbols "$work/s_c.o")" = "$(symbols "$work/s.o")" ]; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1)); echo "FAIL: the symbols of $model ($options) differ from the C's:"
            symbols "$work/s_c.o" >"$work/c.sym"; symbols "$work/s.o" >"$work/o.sym"
            diff "$work/c.sym" "$work/o.sym"
        fi
        rm -f "$work"/s.*
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
