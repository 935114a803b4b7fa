#!/bin/sh
# Generated models against the reference: N valid models (shapes, counts,
# warnings) and N broken ones (every diagnostic), from fixed seeds.
#   run_generated.sh CNNGEN ORACLE VALID BROKEN
set -eu
cnngen=$1 oracle=$2 valid=$3 broken=$4
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/gen_models.py" valid "$valid" 1 "$work/valid"
/usr/bin/python3 "$here/gen_models.py" broken "$broken" 2 "$work/broken"
/usr/bin/python3 "$here/compare_frontend.py" --cnngen "$cnngen" --oracle "$oracle" \
    --min-valid "$valid" "$work/valid"
/usr/bin/python3 "$here/compare_frontend.py" --cnngen "$cnngen" --oracle "$oracle" \
    --min-invalid $((broken * 9 / 10)) --ours-only "cannot read its own output" "$work/broken"
