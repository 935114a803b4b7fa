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

# same_on_threads NAME ROWS FEATURES CLASSES SEED: trains $work/NAME.cnn on
# ROWS random rows (FEATURES values and a class below CLASSES, from SEED)
# on 1, 2 and 3 threads, and compares the saved weights byte for byte.
same_on_threads() {
    python3 -c "
import random
r = random.Random($5)
for _ in range($2):
    print(','.join('%.4f' % r.uniform(-1, 1) for _ in range($3)) + ',' + str(r.randrange($4)))
" >"$work/$1.csv"
    "$cnngen" "$work/$1.cnn" --main -o "$work/$1.c"
    cc -std=c99 -O2 -fopenmp -Wall -Wextra -pedantic -Werror "$work/$1.c" -I "$src/runtime/include" \
        "$lib/libcnnrt.a" -lz -lm -o "$work/$1"
    for t in 1 2 3; do
        OMP_NUM_THREADS=$t "$work/$1" train --data "$work/$1.csv" --quiet --save "$work/$1_$t.safetensors"
    done
    cmp "$work/$1_1.safetensors" "$work/$1_2.safetensors"
    cmp "$work/$1_1.safetensors" "$work/$1_3.safetensors"
}

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
same_on_threads m 50 288 5 9

cat >"$work/v.cnn" <<'M'
model clips
input [4, 5, 5, 3]
conv3d(8, 3, activation=relu)
dense(3, activation=softmax)
train { optimizer = sgd(lr=1e-2, momentum=0.9); batch = 16; epochs = 2; seed = 5 }
M
same_on_threads v 40 300 3 3

# both took the collapsed loops (a use of the macro, not its definition)
grep -q '^ *[A-Z_]*_PARALLEL_FOR2$' "$work/m.c" && grep -q '^ *[A-Z_]*_PARALLEL_FOR2$' "$work/v.c"
echo "the same weights on 1, 2 and 3 threads"
