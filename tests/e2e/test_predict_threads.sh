#!/bin/sh
# Reentrant and threaded inference (tests/helpers/threads_predict.c): 8
# threads predicting at once through their own workspaces under
# ThreadSanitizer, and predict_batch on 1, 2 and 3 OpenMP threads, each
# bit for bit what predict gives sample by sample; for the C backend's
# default output and for an object from the LLVM backend.  dense_blocks
# has dense layers that predict_batch computes a block of samples at a
# time (graph_plan_blocks): there each instruction-set clone is forced
# in turn (CNNGEN_ISA; one this CPU cannot run is reported as skipped),
# built with gcc and with clang, the plain loops (-DCNNGEN_PORTABLE), and
# the LLVM backend's multiversioned object (--target x86_64-pc-linux-gnu:
# its AVX-512, AVX2 and SSE clones, forced the same way).  seed42 and
# small_lanes are small models: their own version and, built without FMA,
# their AVX2 one (a batch runs eight samples at once in vector lanes),
# each forced the same way, with gcc and with clang; and a batch large
# enough for OpenMP's threads (40,000 samples, in runs of 1024).
#   test_predict_threads.sh CNNGEN SOURCE_DIR RUNTIME_LIB_DIR
set -eu
cnngen=$1 src=$2 lib=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
driver="$src/tests/helpers/threads_predict.c"
inc="-I $work -I $src/runtime/include"
libs="$lib/libcnnrt.a -lz -lm -lpthread"
fail=0
check() { # label, command...
    label=$1
    shift
    if out=$("$@" 2>&1); then
        echo "ok   $label: $out"
    else
        echo "FAIL $label:"
        echo "$out" | sed 's/^/  /'
        fail=$((fail + 1))
    fi
}
tsan=yes
printf 'int main(void){return 0;}\n' >"$work/t.c"
cc -fsanitize=thread "$work/t.c" -o "$work/t" 2>/dev/null && "$work/t" 2>/dev/null || tsan=no
# every clone of a build: what built it, the program, its thread counts
# (default: the OpenMP build, on 1 and 3 threads) and the clones' names
# (default: the C's clones; a small model's are inline and inline_avx2)
clones() {
    prog=${2:-$work/omp}
    for isa in ${4:-avx512 avx2 generic}; do
        for t in ${3:-1 3}; do
            out=$(CNNGEN_ISA=$isa OMP_NUM_THREADS=$t "$prog" 2 2>&1) || true
            case $out in
            "$isa:"*) check "$name ($1): $isa, OMP_NUM_THREADS=$t" \
                env CNNGEN_ISA=$isa OMP_NUM_THREADS=$t "$prog" 2 ;;
            *) echo "SKIPPED $name ($1): $isa: this CPU does not run it (ran ${out%%:*})" ;;
            esac
        done
    done
}
# clang with OpenMP, or nothing
with_clang() {
    if clang -fopenmp "$work/t.c" -o "$work/t" 2>/dev/null; then
        # shellcheck disable=SC2086
        clang -std=c99 -O2 -fopenmp $inc "$driver" "$work/m.c" $libs -o "$work/omp"
        "$@"
    else
        echo "SKIPPED $name (clang): no clang with OpenMP here"
    fi
}
for model in bench/lenet.cnn bench/seed42.cnn examples/residual.cnn examples/series_filters.cnn \
    tests/models/small_lanes.cnn tests/models/dense_blocks.cnn; do
    name=$(basename "$model" .cnn)
    "$cnngen" "$src/$model" --prefix m -o "$work/m.c"
    if [ $tsan = yes ]; then
        # shellcheck disable=SC2086
        cc -std=c99 -O1 -g -fsanitize=thread $inc "$driver" "$work/m.c" $libs -o "$work/tsan"
        check "$name: ThreadSanitizer, 8 threads" env TSAN_OPTIONS=halt_on_error=1 "$work/tsan" 8
    else
        echo "SKIPPED $name: ThreadSanitizer does not run here"
    fi
    # shellcheck disable=SC2086
    cc -std=c99 -O2 -fopenmp $inc "$driver" "$work/m.c" $libs -o "$work/omp"
    for t in 1 2 3; do
        check "$name: -fopenmp, OMP_NUM_THREADS=$t" env OMP_NUM_THREADS=$t "$work/omp" 8
    done
    if [ "$name" = seed42 ] || [ "$name" = small_lanes ]; then
        clones gcc "$work/omp" "1 3" "inline inline_avx2"
        with_clang clones clang "$work/omp" "1 3" "inline inline_avx2"
        # shellcheck disable=SC2086
        cc -std=c99 -O2 -fopenmp -DSAMPLES=40000 $inc "$driver" "$work/m.c" $libs -o "$work/big"
        clones "gcc, 40,000 samples" "$work/big" 2 "inline inline_avx2"
    fi
    if [ "$name" = dense_blocks ]; then
        clones gcc
        with_clang clones clang
        # shellcheck disable=SC2086
        cc -std=c99 -O2 -fopenmp -DCNNGEN_PORTABLE $inc "$driver" "$work/m.c" $libs -o "$work/omp"
        check "$name: plain loops, OMP_NUM_THREADS=2" env OMP_NUM_THREADS=2 "$work/omp" 2
    fi
    if "$cnngen" --version | grep -q 'LLVM backend: LLVM'; then
        "$cnngen" "$src/$model" --prefix m --emit=obj -o "$work/m.o"
        # shellcheck disable=SC2086
        cc -std=c99 -O1 $inc "$driver" "$work/m.o" $libs -o "$work/obj"
        check "$name: --emit=obj, 8 threads" "$work/obj" 8
        if [ "$name" = dense_blocks ] && [ "$(uname -m)" = x86_64 ]; then
            "$cnngen" "$src/$model" --prefix m --emit=obj --target x86_64-pc-linux-gnu \
                -o "$work/m.o"
            # shellcheck disable=SC2086
            cc -std=c99 -O1 $inc "$driver" "$work/m.o" $libs -o "$work/multi"
            check "$name: multiversioned object, 8 threads" "$work/multi" 8
            clones "multiversioned object" "$work/multi" 1
        elif [ "$name" = dense_blocks ]; then
            echo "SKIPPED $name: the multiversioned object is for x86-64 ($(uname -m) here)"
        fi
    fi
done
[ "$fail" -eq 0 ]
