#!/bin/sh
# N generated models (every loss and optimizer, batchnorm, merges, every
# layer kind) trained for 2 epochs against the reference, with the
# examples and benchmark models.  At least MIN must be compared (a few are
# skipped where PyTorch itself fails on a shape).
#   run_train_generated.sh CNNGEN ORACLE RUNTIME_INCLUDE RUNTIME_LIB N SEED MIN [MODEL|DIR ...] [-- options]
set -eu
cnngen=$1 oracle=$2 include=$3 lib=$4 count=$5 seed=$6 min=$7
shift 7
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/gen_models.py" train "$count" "$seed" "$work"
/usr/bin/python3 "$here/compare_train.py" --cnngen "$cnngen" --oracle "$oracle" \
    --runtime-include "$include" --runtime-lib "$lib" --min "$min" "$@" "$work"
