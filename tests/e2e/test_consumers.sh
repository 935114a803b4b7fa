#!/bin/sh
# Other people's builds: a CMake project that finds an installed cnngen,
# one that pulls in its sources (add_subdirectory), a plain Makefile with
# a pattern rule, pkg-config, and the Debian package (as root only).
#   test_consumers.sh SOURCE_DIR BUILD_DIR
set -u
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
pass=0 fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expected="3.33333325,1.33333337,-0.666666687,0.666666687,-1.33333337"
quiet() { "$@" >"$work/log" 2>&1 || { cat "$work/log"; return 1; }; }

stage=$work/stage
quiet cmake --install "$build" --prefix "$stage" && ok || bad "cmake --install"

# find_package(cnngen) against the staged install, with Ninja.
cp -r "$src/examples/cmake-consumer" "$work/c1"
if quiet cmake -S "$work/c1" -B "$work/c1/build" -G Ninja -DCMAKE_PREFIX_PATH="$stage" &&
   quiet cmake --build "$work/c1/build"; then
    [ "$("$work/c1/build/consumer")" = "$expected" ] && ok || bad "cmake consumer output"
    # Nothing touched: nothing to do.
    ninja -C "$work/c1/build" -n | grep -q "no work to do" && ok || bad "a second build has work to do"
    # The model touched: cnngen runs again, and nothing else (same code out).
    sleep 1
    touch "$work/c1/filters.cnn"
    ninja -C "$work/c1/build" >"$work/log" 2>&1
    grep -q "cnngen filters" "$work/log" && ! grep -q "main.c" "$work/log" && ok \
        || { bad "touching the model rebuilt:"; cat "$work/log"; }
    # The model changed: its code is rebuilt, main.c (same header) is not.
    sed -i 's/weights=\[1\/3, 1\/3, 1\/3\]/weights=[1\/2, 1\/2, 0]/' "$work/c1/filters.cnn"
    ninja -C "$work/c1/build" >"$work/log" 2>&1
    grep -q "filters.c" "$work/log" && ! grep -q "main.c" "$work/log" && ok \
        || { bad "changing the model rebuilt:"; cat "$work/log"; }
    [ "$("$work/c1/build/consumer")" = "6,1,0,0,0" ] && ok || bad "changed model output"
else
    bad "the cmake consumer does not build"
fi

# The same project with EMIT obj, where cnngen has the LLVM backend: the
# model is an object from cnngen, no C compiled for it.
if "$stage/bin/cnngen" --version | grep -q 'LLVM backend: LLVM'; then
    cp -r "$src/examples/cmake-consumer" "$work/c2"
    sed -i 's/NO_TRAIN)/NO_TRAIN EMIT obj)/' "$work/c2/CMakeLists.txt"
    if quiet cmake -S "$work/c2" -B "$work/c2/build" -G Ninja -DCMAKE_PREFIX_PATH="$stage" &&
       quiet cmake --build "$work/c2/build"; then
        [ -f "$work/c2/build/filters/filters.o" ] && [ ! -e "$work/c2/build/filters/filters.c" ] &&
            [ "$("$work/c2/build/consumer")" = "$expected" ] && ok || bad "EMIT obj consumer output"
    else
        bad "the EMIT obj consumer does not build"
    fi
fi

# add_subdirectory: cnngen's sources built inside the consumer's build.
cp -r "$src/examples/cmake-subdirectory" "$work/sub"
mkdir -p "$work/sub-examples" 2>/dev/null
if quiet cmake -S "$src/examples/cmake-subdirectory" -B "$work/sub/build" -G Ninja &&
   quiet cmake --build "$work/sub/build" --target consumer; then
    [ "$("$work/sub/build/consumer")" = "$expected" ] && ok || bad "add_subdirectory consumer output"
else
    bad "the add_subdirectory consumer does not build"
fi

# A plain Makefile: pattern rule with -MD; up to date after a build.
cp -r "$src/examples/make-consumer" "$work/mc"
if quiet make -C "$work/mc" CNNGEN="$stage/bin/cnngen"; then
    [ "$("$work/mc/consumer")" = "$expected" ] && ok || bad "make consumer output"
    make -C "$work/mc" -q CNNGEN="$stage/bin/cnngen" consumer && ok || bad "make -q after a build"
    sleep 1
    touch "$work/mc/filters.cnn"
    if make -C "$work/mc" -q CNNGEN="$stage/bin/cnngen" consumer; then
        bad "make -q after touching the model"
    else
        ok
    fi
else
    bad "the make consumer does not build"
fi

# pkg-config and cnngen --cflags/--libs of the install.
"$stage/bin/cnngen" "$src/examples/series_filters.cnn" --main -o "$work/p.c" 2>/dev/null
PKG_CONFIG_PATH=$stage/lib/pkgconfig
export PKG_CONFIG_PATH
if cc "$work/p.c" $(pkg-config --cflags --libs cnnrt) -o "$work/p1" 2>"$work/log"; then
    out=$(printf '8 12 10 12 10 12 8\n' | LD_LIBRARY_PATH=$stage/lib "$work/p1" predict)
    [ "$out" = "$expected" ] && ok || bad "pkg-config build predicts '$out'"
else
    bad "pkg-config --cflags --libs cnnrt: $(cat "$work/log")"
fi

# examples/cortex-m, as its README says: the Makefile trains seed42 on the
# host, runs its predictor on the M4F board and trains it on the board;
# then CMake builds the same predictor under the cross toolchain file
# (cnngen_add_model, find_package of the install) and the board predicts
# the same numbers.
if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null; then
    echo "skipped: examples/cortex-m needs arm-none-eabi-gcc and qemu-system-arm (install-deps)"
else
    cm=$work/cortex-m
    if quiet make -C "$src/examples/cortex-m" OUT="$cm" CNNGEN="$stage/bin/cnngen" \
            RUNTIME="$src/runtime" "$cm/mps2-an386/predict.elf" "$cm/mps2-an386/train.elf"; then
        make -s -C "$src/examples/cortex-m" OUT="$cm" CNNGEN="$stage/bin/cnngen" run \
            >"$cm/run.txt" 2>&1
        grep -q '^stack: [0-9]* bytes' "$cm/run.txt" && [ "$(grep -c '^[0-9.-]*$' "$cm/run.txt")" = 3 ] &&
            ok || bad "examples/cortex-m: make run: $(cat "$cm/run.txt")"
        make -s -C "$src/examples/cortex-m" OUT="$cm" CNNGEN="$stage/bin/cnngen" \
            RUNTIME="$src/runtime" train-run >"$cm/train.txt" 2>&1
        grep -q '^epoch 200/200 - loss: ' "$cm/train.txt" && grep -q '^dense_2.kernel ' "$cm/train.txt" &&
            ok || bad "examples/cortex-m: make train-run: $(tail -5 "$cm/train.txt")"
        if quiet cmake -S "$src/examples/cortex-m" -B "$cm/cmake" -G Ninja -Wno-dev \
                -DCMAKE_TOOLCHAIN_FILE="$src/examples/cortex-m/arm-none-eabi.cmake" \
                -DCMAKE_PREFIX_PATH="$stage" -DWEIGHTS="$cm/seed42.safetensors" \
                -DSAMPLES="$cm/samples.txt" && quiet cmake --build "$cm/cmake"; then
            cmake --build "$cm/cmake" --target run 2>&1 | grep '^[0-9.-]*$' >"$cm/cmake.txt"
            grep '^[0-9.-]*$' "$cm/run.txt" | paste -d' ' - "$cm/cmake.txt" |
                awk '{ d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2;
                       if (d > 1e-5 * m + 1e-7) bad = 1 } END { exit NR != 3 || bad }' &&
                ok || bad "examples/cortex-m by CMake predicts $(cat "$cm/cmake.txt")"
        else
            bad "examples/cortex-m does not build with CMake under its toolchain file"
        fi
    else
        bad "examples/cortex-m: make does not build"
    fi
fi

# The Debian package: build it, install it, build the consumer against it.
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then
    echo "skipped: the Debian package test needs root and dpkg"
elif dpkg -s cnngen >/dev/null 2>&1; then
    echo "skipped: a cnngen package is installed already; not replacing it"
else
    rm -f "$build"/cnngen_*.deb
    if (cd "$build" && quiet cpack -G DEB) && quiet dpkg -i "$build"/cnngen_*.deb; then
        ok
        cp -r "$src/examples/cmake-consumer" "$work/deb"
        if quiet cmake -S "$work/deb" -B "$work/deb/build" -G Ninja &&
           quiet cmake --build "$work/deb/build"; then
            [ "$("$work/deb/build/consumer")" = "$expected" ] && ok || bad "deb consumer output"
        else
            bad "the consumer does not build against the Debian package"
        fi
        [ "$(/usr/bin/cnngen --version | cut -d' ' -f1)" = cnngen ] && ok || bad "/usr/bin/cnngen"
        quiet dpkg -r cnngen || bad "dpkg -r cnngen"
    else
        bad "cpack -G DEB / dpkg -i"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
