#!/bin/sh
# make demo: the course's models through cnngen, end to end: shapes and
# parameter counts, a predictor with hand-made filters that needs only
# libm, training on real data (tomorrow's temperature from the last 10
# days; a CNN on Fashion-MNIST, then its weights baked into a standalone
# predictor that classifies test images), pictures of a network, a
# training run and its filters, and what a mistake looks like.
set -eu
build=${1:-build}
cd "$(dirname "$0")/.."
cnngen=$(pwd)/$build/cnngen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || true; }

step "$cnngen" examples/seed42.cnn --summary
step "$cnngen" examples/seed42_dense.cnn --summary
step "$cnngen" examples/filters100.cnn --summary

# The first difference and a 3-day moving average, as fixed filters: no
# weights file, and the program needs nothing but libm.
step "$cnngen" examples/series_filters.cnn --main -o "$work/sf.c"
step cc -O2 "$work/sf.c" $("$cnngen" --cflags) $("$cnngen" --libs) -o "$work/series_filters"
printf '\n\033[1m$ echo 8 12 10 12 10 12 8 | series_filters predict\033[0m\n'
echo 8 12 10 12 10 12 8 | "$work/series_filters" predict

# A LeNet for 28x28 images: specialised C, weights by the init rules.
step "$cnngen" examples/lenet.cnn --main -o "$work/lenet.c"
step cc -O2 "$work/lenet.c" $("$cnngen" --cflags) $("$cnngen" --libs) -o "$work/lenet"
awk 'BEGIN { for (s = 0; s < 2; s++) { for (i = 0; i < 784; i++)
      printf "%s%.3f", i ? "," : "", ((i * 7 + s * 13) % 17) / 17; print "" } }' >"$work/two.txt"
printf '\n\033[1m$ lenet predict two-images.txt\033[0m\n'
"$work/lenet" predict "$work/two.txt"

# The same LeNet through the LLVM backend: an object from cnngen itself,
# no C compiler run on the model (multiply-adds fused where this CPU has
# FMA, so the last digits may differ from the C build's).
if "$cnngen" --version | grep -q 'LLVM backend: LLVM'; then
    step "$cnngen" examples/lenet.cnn --main --emit=obj -o "$work/lenet_llvm.o"
    step cc "$work/lenet_llvm.o" $("$cnngen" --libs) -o "$work/lenet_llvm"
    printf '\n\033[1m$ lenet_llvm predict two-images.txt\033[0m\n'
    "$work/lenet_llvm" predict "$work/two.txt"
fi

# Real data: Seattle's daily maximum temperature, trained on 80% of the
# days, tested on the rest against persistence.
printf '\n\033[1m$ examples/temperature/run.sh  # 10 days -> tomorrow, Seattle 2012-2015\033[0m\n'
sh examples/temperature/run.sh "$cnngen" runtime/include "$build/libcnnrt.a" "$work/temperature"

# Fashion-MNIST: 60,000 images, 3 epochs of a small CNN (about a minute).
printf '\n\033[1m$ examples/fashion/run.sh examples/fashion/quick.cnn\033[0m\n'
sh examples/fashion/run.sh "$cnngen" runtime/include "$build/libcnnrt.a" examples/fashion/quick.cnn \
    "$work/fashion"

# Pictures, kept in $build/pictures: the network as Graphviz draws it,
# the training curves of the Fashion-MNIST run (gnuplot), the course's
# hand-made edge filters and the first filters the CNN learned (libpng).
pics=$(pwd)/$build/pictures
mkdir -p "$pics"
step "$cnngen" examples/residual.cnn --emit=svg -o "$pics/residual.svg"
step "$cnngen" examples/fashion/quick.cnn --emit=png -o "$pics/fashion-quick.png"
step "$work/fashion/quick" plot --log "$work/fashion/quick.csv" -o "$pics/fashion-curves.png"
step "$cnngen" examples/edges.cnn --emit=filters -o "$pics/edges-filters"
step "$cnngen" examples/fashion/quick.cnn --weights "$work/fashion/quick.safetensors" \
    --emit=filters -o "$pics/fashion-filters"
printf '\npictures: %s\n' "$pics"
ls -R "$pics" | sed 's/^/  /'

printf 'model oops\ninput [5, 5, 1]\nconv2d(10, 7, bias=false)\ndense(4, activaton=relu)\n' \
    >"$work/oops.cnn"
step "$cnngen" "$work/oops.cnn" --check
