#!/bin/sh
# cnngen configured without its optional parts, CNNGEN_LLVM=OFF and
# CNNGEN_ONNX=OFF: it builds, says so in --version, and the command-line
# test (which then expects --emit=llvm|obj|onnx and import to fail with
# exit 2 and a clear message) passes.
#   test_without_llvm.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
cmake -S "$src" -B "$build" -DCNNGEN_LLVM=OFF -DCNNGEN_ONNX=OFF -DCNNGEN_TESTS=OFF >"$build.log" 2>&1 ||
    { cat "$build.log"; exit 1; }
cmake --build "$build" --target cnngen -j 2 >>"$build.log" 2>&1 || { cat "$build.log"; exit 1; }
"$build/cnngen" --version | grep -q 'LLVM backend: not built in; ONNX: not built in'
sh "$src/tests/e2e/test_cli.sh" "$build/cnngen" "$src"
