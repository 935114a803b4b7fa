#!/bin/sh
# Built with OpenMP, training gives the same weights on 1, 2 and 3
# threads, byte for byte (sums over the batch stay in sample order;
# dropout masks depend on the element, not the thread).  The convolutions
# of few input channels share their kernel's gradient over the threads by
# two loops at once (2-D: taps and vectors of 32 output channels; 3-D: two
# tap axes), the others by one.
#   test_threads.sh CNNGEN SOURCE_DIR RUNTIME_LIB_DIR
set -eu
cnngen=$1 src=$2 lib=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/m.cnn" <<'M'
model threads
input [12, 12, 2]
stem: conv2d(32, 3, padding=same, activation=relu)
batchnorm
dropout(0.3)
conv2d(32, 3, padding=same)
add(stem)
maxpool2d(2)
dense(32, activation=relu)
dense(5, activation=softmax)
train { optimizer = adam(lr=1e-2); batch = 16; epochs = 3; seed = 4 }
M
python3 -c "
import random
r = random.Random(9)
for _ in range(50):
    print(','.join('%.4f' % r.uniform(-1, 1) for _ in range(288)) + ',' + str(r.randrange(5)))
" >"$work/d.csv"
"$cnngen" "$work/m.cnn" --main -o "$work/m.c"
cc -std=c99 -O2 -fopenmp -Wall -Wextra -pedantic -Werror "$work/m.c" -I "$src/runtime/include" \
    "$lib/libcnnrt.a" -lz -lm -o "$work/m"
for t in 1 2 3; do
    OMP_NUM_THREADS=$t "$work/m" train --data "$work/d.csv" --quiet --save "$work/w$t.safetensors"
done
cmp "$work/w1.safetensors" "$work/w2.safetensors" && cmp "$work/w1.safetensors" "$work/w3.safetensors"

cat >"$work/v.cnn" <<'M'
model clips
input [4, 5, 5, 3]
conv3d(8, 3, activation=relu)
dense(3, activation=softmax)
train { optimizer = sgd(lr=1e-2, momentum=0.9); batch = 16; epochs = 2; seed = 5 }
M
python3 -c "
import random
r = random.Random(3)
for _ in range(40):
    print(','.join('%.4f' % r.uniform(-1, 1) for _ in range(300)) + ',' + str(r.randrange(3)))
" >"$work/v.csv"
"$cnngen" "$work/v.cnn" --main -o "$work/v.c"
cc -std=c99 -O2 -fopenmp -Wall -Wextra -pedantic -Werror "$work/v.c" -I "$src/runtime/include" \
    "$lib/libcnnrt.a" -lz -lm -o "$work/v"
for t in 1 2 3; do
    OMP_NUM_THREADS=$t "$work/v" train --data "$work/v.csv" --quiet --save "$work/v$t.safetensors"
done
grep -q '^ *[A-Z_]*_PARALLEL_FOR2$' "$work/m.c" && grep -q '^ *[A-Z_]*_PARALLEL_FOR2$' "$work/v.c"
cmp "$work/v1.safetensors" "$work/v2.safetensors" && cmp "$work/v1.safetensors" "$work/v3.safetensors"
echo "the same weights on 1, 2 and 3 threads"
