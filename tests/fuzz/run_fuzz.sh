#!/bin/sh
# Run the front-end fuzzer for SECONDS, seeded with the examples and the
# error corpus.  Exits non-zero on any finding (crash, leak, UB, timeout).
#   run_fuzz.sh FUZZER SECONDS
set -eu
fuzzer=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
seconds=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
mkdir -p "$corpus"
cp "$here"/../../examples/*.cnn "$here"/../errors/*.cnn "$corpus"/
cd "$here"
"$fuzzer" -max_total_time="$seconds" -timeout=5 -max_len=8192 -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus"
echo "fuzz: no finding in $seconds s"
