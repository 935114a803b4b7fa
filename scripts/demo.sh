#!/bin/sh
# make demo: the course's models through cnngen, end to end as far as
# this version goes: shapes and parameter counts, then what a mistake
# looks like.
set -eu
build=${1:-build}
cnngen=$build/cnngen
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || true; }

step "$cnngen" examples/seed42.cnn --summary
step "$cnngen" examples/seed42_dense.cnn --summary
step "$cnngen" examples/filters100.cnn --summary
step "$cnngen" examples/fashion.cnn --summary
printf 'model oops\ninput [5, 5, 1]\nconv2d(10, 7, bias=false)\ndense(4, activaton=relu)\n' >/tmp/cnngen-demo-oops.cnn
step "$cnngen" /tmp/cnngen-demo-oops.cnn --check
rm -f /tmp/cnngen-demo-oops.cnn
