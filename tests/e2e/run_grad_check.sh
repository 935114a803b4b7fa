#!/bin/sh
# Every model of tests/gradcheck (together every layer kind and loss):
# its generated gradients against central finite differences (grad_check.c);
# with the LLVM backend, the object (--emit=obj) too.
#   run_grad_check.sh CNNGEN SOURCE_DIR RUNTIME_LIB_DIR [CFLAGS [CNNGEN_OPTIONS [EMITS]]]
# EMITS: c, or by default c and, with the LLVM backend, obj.
set -eu
cnngen=$1 src=$2 lib=$3 cflags=${4:-} options=${5:-} emits=${6:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$emits" ]; then
    emits=c
    "$cnngen" --version | grep -q 'LLVM backend: LLVM' && emits="c obj"
fi
fail=0 count=0
for model in "$src"/tests/gradcheck/*.cnn; do
    targets=$(sed -n 's/^# targets: //p' "$model")
    for emit in $emits; do
        rm -f "$work"/m.*
        ext=c
        [ "$emit" = obj ] && ext=o
        # shellcheck disable=SC2086
        "$cnngen" "$model" --prefix m --emit=$emit $options -o "$work/m.$ext" 2>/dev/null
        # shellcheck disable=SC2086
        cc -std=c99 -O1 $cflags -I "$work" -I "$src/runtime/include" "$src/tests/helpers/grad_check.c" \
            "$work/m.$ext" "$lib/libcnnrt.a" -lz -lm -o "$work/check"
        # shellcheck disable=SC2086
        if out=$("$work/check" $targets); then
            echo "ok   $(basename "$model") ($emit): $out"
        else
            echo "FAIL $(basename "$model") ($emit):"
            echo "$out" | sed 's/^/  /'
            fail=$((fail + 1))
        fi
        count=$((count + 1))
    done
done
echo "$count builds checked, $fail failed"
[ "$fail" -eq 0 ]
