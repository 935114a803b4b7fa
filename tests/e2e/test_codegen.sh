#!/bin/sh
# Code generation from the command line: output files, the C API's
# macros against --summary, dependency files, --cflags/--libs from the
# build tree and from an install, the standalone predictor, and the
# 3.3M-parameter fashion model with its weights baked in (generated and,
# but under the sanitizers, compiled; its time is printed, not judged:
# no test fails on a time).
#   test_codegen.sh CNNGEN SOURCE_DIR BUILD_DIR [EXTRA_CFLAGS]
set -u
cnngen=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
build=$(cd "$3" && pwd)
extra=${4:-}          # the sanitizer flags when the runtime was built with them
oracle=$src/tests/reference/cnnref.py
pass=0 fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# OUT.c and OUT.h, from -o OUT.c or -o OUT; -o - writes one file to stdout.
cd "$work"
"$cnngen" "$src/examples/lenet.cnn" -o net.c && [ -f net.c ] && [ -f net.h ] && ok || bad "-o net.c"
"$cnngen" "$src/examples/lenet.cnn" -o other && [ -f other.c ] && [ -f other.h ] && ok || bad "-o other"
"$cnngen" "$src/examples/lenet.cnn" -o - >stdout.c && grep -q '#define LENET_INPUT_SIZE 784' stdout.c \
    && ! grep -q "#include \"lenet.h\"" stdout.c && ok || bad "-o - has the header inline"
cmp -s net.c "$(printf 'net.c')" && "$cnngen" "$src/examples/lenet.cnn" -o net2.c \
    && sed 1,3d net.c >a && sed 1,3d net2.c | sed 's/net2\.h/net.h/' >b && cmp -s a b \
    && ok || bad "the same input gives the same output"

# The header's sizes are the ones --summary reports.
for model in "$src"/examples/*.cnn; do
    name=$(basename "$model" .cnn)
    "$cnngen" "$model" --no-train -o "$name.c" 2>/dev/null || { bad "$name: cnngen"; continue; }
    P=$(echo "$name" | tr a-z A-Z)
    json=$("$cnngen" "$model" --summary --json 2>/dev/null)
    arena=$(sed -n "s/^#define ${P}_ARENA_FLOATS \([0-9]*\).*/\1/p" "$name.h")
    params=$(sed -n "s/^#define ${P}_PARAM_COUNT \([0-9]*\).*/\1/p" "$name.h")
    want_arena=$(echo "$json" | sed -n 's/.*"activation_bytes": \([0-9]*\).*/\1/p')
    want_params=$(echo "$json" | sed -n 's/.*"param_bytes": \([0-9]*\).*/\1/p')
    if [ "$((arena * 4))" = "$want_arena" ] && [ "$((params * 4))" = "$want_params" ]; then
        ok
    else
        bad "$name: header arena $arena floats / $params params, --summary $want_arena / $want_params bytes"
    fi
done

# -MD: a make-style dependency file beside the output, or at -MF.
"$cnngen" "$src/examples/lenet.cnn" -o dep.c -MD && grep -q "^dep.c: $src/examples/lenet.cnn" dep.d \
    && ok || bad "-MD writes dep.d"
"$cnngen" "$src/examples/lenet.cnn" -o dep.c -MD -MF custom.d && grep -q "lenet.cnn" custom.d \
    && ok || bad "-MF names the file"

# --cflags/--libs build generated code, from the build tree and installed.
"$cnngen" "$src/examples/lenet.cnn" --main --no-train -o main.c   # (training code: minutes under the sanitizers)
cc $extra main.c $("$cnngen" --cflags) $("$cnngen" --libs) -o prog && ok || bad "--cflags/--libs (build tree)"
cmake --install "$build" --prefix "$work/inst" >/dev/null 2>&1 || bad "cmake --install"
"$work/inst/bin/cnngen" --cflags | grep -q -- "-I$work/inst/include" && ok || bad "installed --cflags"
cc $extra main.c $("$work/inst/bin/cnngen" --cflags) $("$work/inst/bin/cnngen" --libs) -o prog2 \
    && ok || bad "--cflags/--libs (installed)"

# The standalone predictor: baked weights, only libm.
/usr/bin/python3 "$oracle" init "$src/examples/series_filters.cnn" --out sf.safetensors
"$cnngen" "$src/examples/series_filters.cnn" --weights sf.safetensors --no-train --main -o sf.c \
    && cc $extra sf.c -lm -o sf && ok || bad "standalone predictor builds with cc p.c -lm"
out=$(printf '8 12 10 12 10 12 8\n' | ./sf predict)
[ "$out" = "3.33333325,1.33333337,-0.666666687,0.666666687,-1.33333337" ] && ok \
    || bad "series_filters predicts '$out'"
printf '1 2 x 4 5 6 7\n' | ./sf predict 2>err.txt; [ $? -eq 1 ] \
    && grep -q "<stdin>:1:5: error: 'x' is not a number" err.txt && ok || bad "a bad sample line: $(cat err.txt)"

# A weights file that does not fit is an error naming the first mismatch.
/usr/bin/python3 "$oracle" init "$src/examples/seed42.cnn" --out s42.safetensors
"$cnngen" "$src/examples/lenet.cnn" --weights s42.safetensors -o x.c 2>err.txt; [ $? -eq 1 ] \
    && grep -q "s42.safetensors: error: tensor 'conv2d_1.kernel' \[3, 3, 1, 8\] is missing" err.txt \
    && ok || bad "wrong weights: $(cat err.txt)"
"$cnngen" "$src/examples/lenet.cnn" --weights missing.safetensors -o x.c 2>/dev/null; [ $? -eq 2 ] \
    && ok || bad "unreadable weights exit 2"

# Weights read and written again are the reference's file, byte for byte.
/usr/bin/python3 "$oracle" init "$src/examples/residual.cnn" --out r0.safetensors
"$cnngen" "$src/examples/residual.cnn" --no-train -o res.c 2>/dev/null
cat >copy.c <<'CEOF'
#include <string.h>
#include "cnnrt.h"
#include "res.h"
int main(void)
{
    char error[256];
    cnnrt_tensor_spec specs[RESIDUAL_TENSOR_COUNT];
    if (residual_load_weights("r0.safetensors", error, sizeof error))
        return 1;
    for (int i = 0; i < RESIDUAL_TENSOR_COUNT; i++) {
        specs[i].name = residual_tensors[i].name;
        specs[i].rank = residual_tensors[i].rank;
        memcpy(specs[i].shape, residual_tensors[i].shape, sizeof specs[i].shape);
        specs[i].offset = residual_tensors[i].offset;
    }
    return cnnrt_save_safetensors("r1.safetensors", specs, RESIDUAL_TENSOR_COUNT,
                                  residual_params_data(), error, sizeof error) != 0;
}
CEOF
cc $extra copy.c res.c $("$cnngen" --cflags) $("$cnngen" --libs) -o copy && ./copy \
    && cmp -s r0.safetensors r1.safetensors && ok || bad "safetensors written back differ from the reference's"

# The 3.3M-parameter fashion model with baked weights: generated (cnngen's
# weight printing under the sanitizers too) and compiled with gcc -O2
# (not under the sanitizers: that is gcc's time, and no cnngen code).
/usr/bin/python3 "$oracle" init "$src/examples/fashion.cnn" --out fashion.safetensors
start=$(date +%s.%N)
"$cnngen" "$src/examples/fashion.cnn" --weights fashion.safetensors --no-train -o fashion.c \
    && { [ -n "$extra" ] || gcc -O2 -c fashion.c -o fashion.o; } && ok || bad "fashion with baked weights"
end=$(date +%s.%N)
what="generated and compiled"
[ -n "$extra" ] && what="generated (not compiled under the sanitizers)"
echo "fashion: $what with baked weights in $(awk "BEGIN { print $end - $start }") s"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
