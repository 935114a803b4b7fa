#!/bin/sh
# examples/from-pytorch end to end: the imported model must have PyTorch's
# test accuracy (both print it to four places), and cnngen's fine-tuning
# must raise it.
#   test_from_pytorch.sh CNNGEN RUNTIME_INCLUDE LIBCNNRT.a SOURCE_DIR
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sh "$4/examples/from-pytorch/run.sh" "$1" "$2" "$3" "$work" >"$work/log" 2>&1 ||
    { cat "$work/log"; exit 1; }
grep -v 'Warning\|warn\|_C\._jit' "$work/log"
pytorch=$(sed -n 's/^PyTorch.*test accuracy \([0-9.]*\)$/\1/p' "$work/log")
imported=$(sed -n 's/^test images, as imported: .*accuracy: \([0-9.]*\)$/\1/p' "$work/log")
tuned=$(sed -n 's/^test images, fine-tuned: .*accuracy: \([0-9.]*\)$/\1/p' "$work/log")
awk -v p="$pytorch" -v i="$imported" -v t="$tuned" 'BEGIN {
    if (p == "" || i == "" || t == "") { print "FAIL: an accuracy is missing"; exit 1 }
    if (sprintf("%.4f", p) != sprintf("%.4f", i)) {
        printf "FAIL: imported %s, PyTorch %s\n", i, p; exit 1 }
    if (t + 0 <= i + 0) { printf "FAIL: fine-tuning took %s to %s\n", i, t; exit 1 }
    printf "PASS: PyTorch %s = imported %s; fine-tuned %s\n", p, i, t }'
