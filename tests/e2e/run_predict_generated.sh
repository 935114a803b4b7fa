#!/bin/sh
# N generated models through predict, against the reference.
#   run_predict_generated.sh CNNGEN ORACLE RUNTIME_INCLUDE RUNTIME_LIB N SEED [compare_predict options]
set -eu
cnngen=$1 oracle=$2 include=$3 lib=$4 count=$5 seed=$6
shift 6
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/gen_models.py" valid "$count" "$seed" "$work"
/usr/bin/python3 "$here/compare_predict.py" --cnngen "$cnngen" --oracle "$oracle" \
    --runtime-include "$include" --runtime-lib "$lib" --min "$count" "$@" "$work"
