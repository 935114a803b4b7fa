#!/bin/sh
# The first six Fashion-MNIST test images through a standalone predictor,
# each with the class it gives, its probability and the truth.
#   classify_six.sh PREDICTOR WORK_DIR
set -eu
predictor=$1 work=$2
data=/usr/share/datasets/fashion-mnist
python3 - "$data" "$work" <<'PY'
import gzip, sys
data, work = sys.argv[1], sys.argv[2]
images = gzip.open(f'{data}/t10k-images-idx3-ubyte.gz').read()[16:]
labels = gzip.open(f'{data}/t10k-labels-idx1-ubyte.gz').read()[8:]
with open(f'{work}/six.txt', 'w') as f, open(f'{work}/six.labels', 'w') as g:
    for k in range(6):
        f.write(' '.join('%.6g' % (b / 255) for b in images[784 * k:784 * (k + 1)]) + '\n')
        g.write(f'{labels[k]}\n')
PY
"$predictor" predict "$work/six.txt" >"$work/six.out"
echo "six test images through the standalone predictor ($(wc -c <"$predictor") bytes):"
awk -F, -v labels="$work/six.labels" '
    BEGIN { split("T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Ankle-boot", names, " ") }
    { best = 1; for (i = 2; i <= NF; i++) if ($i + 0 > $best + 0) best = i
      getline truth <labels
      printf "  image %d: %-12s (p = %.3f)   truth: %s\n", NR, names[best], $best, names[truth + 1] }' \
    "$work/six.out"
