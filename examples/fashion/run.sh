#!/bin/sh
# Fashion-MNIST end to end: train MODEL on the 60,000 training images of
# Debian's dataset-fashion-mnist, report the accuracy on the 10,000 test
# images, bake the trained weights into a standalone predictor (libm
# only) and classify a few test images with it.
#   run.sh CNNGEN RUNTIME_INCLUDE LIBCNNRT.a MODEL.cnn WORK_DIR [EPOCHS]
set -eu
cnngen=$1 include=$2 lib=$3 model=$4 work=$5 epochs=${6:-}
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] ||
    { echo "run.sh: $data is missing: apt-get install dataset-fashion-mnist" >&2; exit 2; }
mkdir -p "$work"
name=$(basename "$model" .cnn)
"$cnngen" "$model" --main -o "$work/$name.c"
# -fopenmp: training on every core (OMP_NUM_THREADS), the same weights on any number
cc -O3 -march=native -fopenmp "$work/$name.c" -I "$include" "$lib" -lz -lm -o "$work/$name"
start=$(date +%s)
"$work/$name" train --data "idx:$data/train" ${epochs:+--epochs "$epochs"} \
    --save "$work/$name.safetensors" --log "$work/$name.csv"
echo "trained in $(( $(date +%s) - start )) s"
printf 'test images: '
"$work/$name" eval --data "idx:$data/t10k" --weights "$work/$name.safetensors"

# The trained weights baked into a program that needs nothing but libm.
"$cnngen" "$model" --weights "$work/$name.safetensors" --no-train --main -o "$work/${name}_alone.c"
cc -O2 "$work/${name}_alone.c" -lm -o "$work/${name}_alone"
sh "$(dirname "$0")/classify_six.sh" "$work/${name}_alone" "$work"
