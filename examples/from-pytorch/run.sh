#!/bin/sh
# From PyTorch to a standalone C predictor: a small CNN trained in PyTorch
# (model.py) is exported to ONNX, imported by cnngen, checked against
# PyTorch's accuracy, fine-tuned by cnngen's own trainer on all 60,000
# Fashion-MNIST training images, and baked into a predictor that needs
# nothing but libm.
#   run.sh CNNGEN RUNTIME_INCLUDE LIBCNNRT.a WORK_DIR
set -eu
cnngen=$1 include=$2 lib=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] ||
    { echo "run.sh: $data is missing: apt-get install dataset-fashion-mnist" >&2; exit 2; }
mkdir -p "$work"

echo "== 1. PyTorch: train briefly, export to ONNX"
/usr/bin/python3 "$here/model.py" "$work"

echo "== 2. cnngen import"
"$cnngen" import "$work/classifier.onnx" -o "$work/classifier.cnn"
grep -v '^#' "$work/classifier.cnn"

echo "== 3. the imported model in cnngen's program, before any training"
# A train block for the fine-tuning: ONNX carries the model, not how it
# was trained.
cat >>"$work/classifier.cnn" <<'CNN'

train {
  optimizer = adam(lr=5e-4)
  batch     = 64
  epochs    = 1
  metrics   = [accuracy]
}
CNN
"$cnngen" "$work/classifier.cnn" --main -o "$work/classifier.c"
cc -O2 "$work/classifier.c" -I "$include" "$lib" -lz -lm -o "$work/classifier"
printf 'test images, as imported: '
"$work/classifier" eval --data "idx:$data/t10k" --weights "$work/classifier.safetensors"

echo "== 4. fine-tuned by cnngen's trainer (one epoch over all 60,000 images)"
"$work/classifier" train --data "idx:$data/train" --init "$work/classifier.safetensors" \
    --save "$work/tuned.safetensors"
printf 'test images, fine-tuned: '
"$work/classifier" eval --data "idx:$data/t10k" --weights "$work/tuned.safetensors"

echo "== 5. deployed: the tuned weights baked into a predictor (libm only)"
"$cnngen" "$work/classifier.cnn" --weights "$work/tuned.safetensors" --no-train --main \
    -o "$work/predictor.c"
cc -O2 "$work/predictor.c" -lm -o "$work/predictor"
sh "$here/../fashion/classify_six.sh" "$work/predictor" "$work"
