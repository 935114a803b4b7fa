#!/bin/sh
# The command line: exit statuses, messages, and --summary goldens.
#   test_cli.sh CNNGEN SOURCE_DIR [--update]
set -u
cnngen=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd) update=${3:-}
pass=0 fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# expect STATUS PATTERN -- ARGS...: exit status and a pattern in stderr+stdout
expect() {
    want=$1 pattern=$2
    shift 3
    "$cnngen" "$@" >"$work/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -- "$pattern" "$work/out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: cnngen $*: exit $got (want $want), output:"
        sed 's/^/  /' "$work/out"
        echo "  (wanted /$pattern/)"
    fi
}

m=$src/examples/seed42.cnn
printf 'model m\ninput [4]\ndense(0)\n' >"$work/bad.cnn"
expect 2 'no model file given' -- 
expect 2 "unknown option '--frobnicate'" -- "$m" --frobnicate
expect 2 "cannot read '$work/missing.cnn'" -- "$work/missing.cnn" --summary
expect 2 'one model file at a time' -- "$m" "$m" --summary
expect 2 'nothing to do' -- "$m"
expect 2 "--emit takes c, llvm, obj, dot, svg, png, filters or onnx, not 'wasm'" -- "$m" --emit=wasm -o "$work/x.c"
if "$cnngen" --version | grep -q 'LLVM backend: LLVM'; then
    expect 0 '^cnngen [0-9.]* (LLVM backend: LLVM 1[0-9]' -- --version
    expect 0 '' -- "$m" --emit=llvm -o "$work/x.ll"
    [ -s "$work/x.ll" ] && [ -s "$work/x.h" ] && grep -q '^define void @seed42_predict(' "$work/x.ll" \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --emit=llvm wrote no x.ll, x.h"; }
    expect 0 '' -- "$m" --emit obj -o "$work/y"
    [ -s "$work/y.o" ] && [ -s "$work/y.h" ] && [ ! -e "$work/y.c" ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --emit obj -o y wrote no y.o, y.h"; }
    # another target: an AArch64 ELF object (e_machine 183 at byte 18)
    expect 0 '' -- "$m" --emit=obj --target aarch64-linux-gnu -o "$work/arm.o"
    [ "$(od -An -tu2 -j18 -N2 "$work/arm.o" | tr -d ' ')" = 183 ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --target aarch64 is no AArch64 object"; }
    expect 2 'unknown target' -- "$m" --emit=obj --target nosuch-cpu-os -o "$work/z.o"
    expect 2 '--fp-contract takes on or off' -- "$m" --emit=obj --fp-contract=fast -o "$work/z.o"
    # The backend is a module (compiler/llvm_plugin.h): a cnngen copied
    # away from it still compiles to C, and says what it cannot load.
    mkdir -p "$work/moved/bin" && cp "$cnngen" "$work/moved/bin/cnngen"
    "$work/moved/bin/cnngen" "$m" -o "$work/moved/m.c" && [ -s "$work/moved/m.c" ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a moved cnngen writes no C"; }
    "$work/moved/bin/cnngen" "$m" --emit=obj -o "$work/moved/m.o" >"$work/out" 2>&1
    [ $? -eq 2 ] && [ ! -e "$work/moved/m.o" ] &&
        grep -q "^cnngen: error: cannot load the LLVM backend $work/moved/lib[a-z0-9_-]*/cnngen/cnngen-llvm.so: .*No such file" "$work/out" \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a moved cnngen's --emit=obj:"; cat "$work/out"; }
else
    expect 0 '^cnngen [0-9.]* (LLVM backend: not built in;' -- --version
    expect 2 'built without LLVM' -- "$m" --emit=llvm -o "$work/x.ll"
    expect 2 'built without LLVM' -- "$m" --emit obj -o "$work/x.o"
fi
# ONNX (docs/onnx.md): optional like LLVM
if "$cnngen" --version | grep -q 'ONNX: import and export'; then
    expect 0 '' -- "$m" --emit=onnx -o "$work/m"
    [ -s "$work/m.onnx" ] && [ ! -e "$work/m.c" ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --emit=onnx -o m wrote no m.onnx"; }
    "$cnngen" import "$work/m.onnx" -o "$work/back.cnn" && [ -s "$work/back.cnn" ] &&
        [ -s "$work/back.safetensors" ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: import wrote no back.cnn"; }
    expect 0 '^Total params: 42$' -- "$work/back.cnn" --summary
    expect 2 "cannot read '$work/none.onnx'" -- import "$work/none.onnx"
    expect 1 'not an ONNX model' -- import "$m" -o "$work/not.cnn"
else
    expect 0 'ONNX: not built in)' -- --version
    expect 2 'built without it' -- "$m" --emit=onnx -o "$work/m"
    expect 2 'import needs ONNX support' -- import "$work/m.onnx"
fi
expect 2 'import needs an ONNX model' -- import
expect 2 "import takes MODEL.onnx, -o OUT.cnn and --input-layout, not '--frobnicate'" -- import --frobnicate
expect 2 '--input-layout takes nchw' -- import x.onnx --input-layout nhcw
expect 2 '--target goes with --emit=llvm' -- "$m" --target x86_64-linux-gnu -o "$work/x.c"
expect 2 '--cpu goes with --target' -- "$m" --cpu cortex-m7 -o "$work/x.c"
expect 2 '--fp-contract goes with --emit=llvm' -- "$m" --fp-contract=off -o "$work/x.c"
expect 2 '--prefix takes a C identifier' -- "$m" --prefix 9lives -o "$work/x.c"
expect 0 'warning: .conv1d_1. has a linear activation' -- "$m" -o "$work/x.c"
expect 0 '^-I/' -- --cflags
expect 0 'libcnnrt.a -lz -lm$' -- --libs
expect 2 '--vector-width takes auto, 0, 4, 8 or 16' -- "$m" --vector-width=3 -o "$work/x.c"
expect 2 '-o needs a file name' -- "$m" -o
expect 0 'usage: cnngen MODEL.cnn -o OUT.c' -- --help
expect 0 '^cnngen [0-9]' -- --version
expect 1 'units must be at least 1, got 0' -- "$work/bad.cnn" --summary
expect 1 'units must be at least 1, got 0' -- "$work/bad.cnn" -o "$work/x.c"
expect 0 '^Total params: 42$' -- "$m" --summary
expect 0 '"params": 42' -- "$m" --summary --json
expect 2 '--json goes with --summary' -- "$m" --json

# --summary ends with the three totals lines, as Keras prints them.
"$cnngen" "$src/examples/filters100.cnn" --summary 2>/dev/null | tail -n 3 >"$work/tail"
printf 'Total params: 490\nTrainable params: 490\nFixed params: 0\n' | cmp -s - "$work/tail" \
    && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: totals lines"; cat "$work/tail"; }

# Goldens of every example: its whole --summary, and its diagram
# (--emit=dot); compare_golden NAME EXT WHAT: $work/out against
# tests/golden/NAME.EXT (or written there with --update).
compare_golden() {
    golden=$src/tests/golden/$1.$2
    if [ "$update" = "--update" ]; then
        cp "$work/out" "$golden"
    elif cmp -s "$golden" "$work/out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $3 of $1.cnn differs from tests/golden/$1.$2:"
        diff "$golden" "$work/out" | sed 's/^/  /'
    fi
}
for model in "$src"/examples/*.cnn; do
    name=$(basename "$model" .cnn)
    (cd "$src/examples" && "$cnngen" "$name.cnn" --summary 2>&1) >"$work/out"
    compare_golden "$name" summary --summary
    (cd "$src/examples" && "$cnngen" "$name.cnn" --emit=dot -o - 2>/dev/null) >"$work/out"
    compare_golden "$name" dot --emit=dot
done
expect 2 '--target goes with --emit=llvm' -- "$m" --emit=svg --target aarch64-linux-gnu -o "$work/x"
# without Graphviz's dot program: a message, nothing written
PATH=/nonexistent "$cnngen" "$m" --emit=svg -o "$work/nodot.svg" 2>"$work/err"
if [ $? -eq 2 ] && grep -q "needs Graphviz's dot program" "$work/err" && [ ! -e "$work/nodot.svg" ]; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "FAIL: --emit=svg without dot: $(cat "$work/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
