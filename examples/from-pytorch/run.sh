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
/usr/bin/python3 - "$data" "$work" <<'PY'
import gzip, sys
data, work = sys.argv[1], sys.argv[2]
images = gzip.open(f'{data}/t10k-images-idx3-ubyte.gz').read()[16:]
labels = gzip.open(f'{data}/t10k-labels-idx1-ubyte.gz').read()[8:]
with open(f'{work}/six.txt', 'w') as f, open(f'{work}/six.labels', 'w') as g:
    for k in range(6):
        f.write(' '.join('%.6g' % (b / 255) for b in images[784 * k:784 * (k + 1)]) + '\n')
        g.write(f'{labels[k]}\n')
PY
"$work/predictor" predict "$work/six.txt" >"$work/six.out"
echo "six test images through the predictor ($(wc -c <"$work/predictor") bytes):"
awk -F, -v labels="$work/six.labels" '
    BEGIN { split("T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Ankle-boot", names, " ") }
    { best = 1; for (i = 2; i <= NF; i++) if ($i + 0 > $best + 0) best = i
      getline truth <labels
      printf "  image %d: %-12s (p = %.3f)   truth: %s\n", NR, names[best], $best, names[truth + 1] }' \
    "$work/six.out"
