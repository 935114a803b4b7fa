#!/bin/sh
# Killing the trainer while it saves leaves the previous weights intact:
# the weights go to a temporary file that is renamed over the old one.
# The fashion example (13 MB of weights) trains for 0 epochs and saves,
# killed with SIGKILL after 0 to 60 ms, 30 times; after every kill the
# file must load (predict --weights) and be the old weights or the new.
#   test_kill_save.sh CNNGEN SOURCE_DIR BUILD_DIR
set -eu
cnngen=$1 src=$2 build=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cnngen" "$src/examples/fashion.cnn" --main -o "$work/f.c" 2>/dev/null
cc -O1 "$work/f.c" -I "$src/runtime/include" "$build/libcnnrt.a" -lz -lm -o "$work/f"
python3 -c "print(','.join(['0.5'] * 784 + ['3']))" >"$work/d.csv"
python3 -c "print(' '.join(['0.5'] * 784))" >"$work/x.txt"
"$work/f" train --data "$work/d.csv" --epochs 0 --seed 1 --quiet --save "$work/w.safetensors"
cp "$work/w.safetensors" "$work/old.safetensors"
"$work/f" train --data "$work/d.csv" --epochs 0 --seed 2 --quiet --save "$work/new.safetensors"
fail=0 i=0
while [ $i -lt 30 ]; do
    delay=$(python3 -c "print($i * 0.002)")
    "$work/f" train --data "$work/d.csv" --epochs 0 --seed 2 --quiet --save "$work/w.safetensors" &
    pid=$!
    sleep "$delay"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    if ! "$work/f" predict --weights "$work/w.safetensors" "$work/x.txt" >/dev/null 2>&1; then
        echo "FAIL: after a kill at ${delay}s the weights file does not load"
        fail=1
    elif ! cmp -s "$work/w.safetensors" "$work/old.safetensors" &&
         ! cmp -s "$work/w.safetensors" "$work/new.safetensors"; then
        echo "FAIL: after a kill at ${delay}s the weights file is neither the old nor the new"
        fail=1
    fi
    cp "$work/old.safetensors" "$work/w.safetensors"
    i=$((i + 1))
done
[ $fail -eq 0 ] && echo "30 kills during training and saving: the weights file was always whole"
exit $fail
