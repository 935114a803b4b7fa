#!/bin/sh
# Train the temperature model on the first 80% of the days of
# seattle-weather.csv and report its MAE on the last 20% beside
# persistence (tomorrow's maximum = today's).
#   run.sh CNNGEN RUNTIME_INCLUDE LIBCNNRT.a [WORK_DIR] [EPOCHS]
set -eu
cnngen=$1 include=$2 lib=$3 work=${4:-$(mktemp -d)} epochs=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
csv=/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv
[ -r "$csv" ] || { echo "run.sh: $csv is missing: apt-get install python3-vega-datasets" >&2; exit 2; }
mkdir -p "$work"
# temp_max, split by day: the test windows start 10 days before the split
# so every test day is predicted once.
awk -F, 'NR > 1 { print $3 }' "$csv" >"$work/temp_max.txt"
days=$(wc -l <"$work/temp_max.txt")
split=$((days * 8 / 10))
{ echo temp_max; head -n "$split" "$work/temp_max.txt"; } >"$work/train.csv"
{ echo temp_max; tail -n "+$((split - 9))" "$work/temp_max.txt"; } >"$work/test.csv"
"$cnngen" "$here/temperature.cnn" --main -o "$work/temperature.c"
cc -O2 "$work/temperature.c" -I "$include" "$lib" -lz -lm -o "$work/temperature"
"$work/temperature" train --data "series:$work/train.csv:temp_max:10" \
    ${epochs:+--epochs "$epochs"} --save "$work/temperature.safetensors" >"$work/train.log"
# the last epoch line, and what validation and early stopping decided
grep '^epoch' "$work/train.log" | tail -n 1
grep -v '^epoch' "$work/train.log"
model=$("$work/temperature" eval --data "series:$work/test.csv:temp_max:10" \
        --weights "$work/temperature.safetensors" | sed 's/.*mae: \([^ ]*\).*/\1/')
persistence=$(awk 'NR > 11 { s += ($1 > prev ? $1 - prev : prev - $1); n++ } { prev = $1 }
                   END { printf "%.6g", s / n }' "$work/test.csv" | tail -n 1)
echo "test days: $((days - split)) (the last 20% of $days)"
echo "test MAE: model $model C, persistence $persistence C"
awk -v m="$model" -v p="$persistence" 'BEGIN { exit !(m < p) }' &&
    echo "the model beats persistence" || { echo "the model does not beat persistence"; exit 1; }
