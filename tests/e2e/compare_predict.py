#!/usr/bin/python3
"""Generated predictors against the reference: the same model, weights and
inputs must give the same outputs within float tolerance.

    compare_predict.py --cnngen BIN --oracle cnnref.py --runtime-include DIR
                       --runtime-lib DIR [--cc gcc] [--cflags "-O1"] [--samples 4]
                       [--standalone-every K] [--sanitize] [--min N] [--with-train]
                       MODEL.cnn|DIR ...

For every model the reference writes random initial weights (`init`, a
different seed per model) and predicts random inputs; cnngen's program,
built with `--main --no-train` against the runtime (with --with-train, its
training code too), predicts the same inputs with
`--weights`.  Every output must agree to 1e-5 relative plus 1e-6
absolute.  Every K-th model is also built standalone (`--weights W
--no-train --main`, compiled with libm alone) and must print exactly what
the runtime build prints.  Generated C is compiled with -std=c99 -Wall
-Wextra -pedantic -Werror: a warning fails the test.
"""

import argparse
import concurrent.futures
import math
import os
import random
import shlex
import sys
import tempfile

from e2e_common import (WARNINGS, add_build_arguments, build_object_with_runtime,
                        build_with_runtime, has_llvm, isa_cflags, model_files, oracle_batch, run,
                        sanitizer_flags, skip_unless_cpu_runs)




def write_inputs(path, size, samples, rng):
    with open(path, 'w') as f:
        for _ in range(samples):
            f.write(','.join('%.6g' % rng.uniform(-1, 1) for _ in range(size)) + '\n')



def build_and_predict(args, index, model, work):
    """Returns (problems, runtime output text, the object's output or None)."""
    d = os.path.join(work, str(index))
    w0, inp = os.path.join(d, 'w0.safetensors'), os.path.join(d, 'in.txt')
    problems = []
    failed = build_with_runtime(args, model, os.path.join(d, 'm.c'), os.path.join(d, 'prog'),
                                [] if args.with_train else ['--no-train'])
    if failed:
        return [failed], None, None
    extra = sanitizer_flags(args)
    out = run([os.path.join(d, 'prog'), 'predict', '--weights', w0, inp])
    if out.returncode != 0:
        return [f'predict failed ({out.returncode}):\n{out.stderr}'], None, None
    if args.standalone_every and index % args.standalone_every == 0:
        gen = run([args.cnngen, model, '--weights', w0, '--no-train', '--main', '-o',
                   os.path.join(d, 's.c')])
        cc = run([args.cc] + WARNINGS + shlex.split(args.cflags) + isa_cflags(args) + extra +
                 [os.path.join(d, 's.c'), '-lm', '-o', os.path.join(d, 'standalone')])
        if gen.returncode != 0 or cc.returncode != 0:
            problems.append(f'the standalone predictor does not build:\n{gen.stderr}{cc.stderr[:3000]}')
        else:
            alone = run([os.path.join(d, 'standalone'), 'predict', inp])
            if alone.returncode != 0 or alone.stdout != out.stdout:
                problems.append('the standalone predictor prints something else:\n' +
                                alone.stdout[:500] + alone.stderr[:500])
    fused = None
    if args.obj:
        more, fused = objects_agree(args, model, d, w0, inp, out.stdout)
        problems += more
        if args.standalone_every and index % args.standalone_every == 0:
            problems += baked_object_agrees(args, model, d, w0, inp, out.stdout)
    return problems, out.stdout, fused


# Through the LLVM backend (--emit=obj), twice: without fused
# multiply-adds it must print what the C build prints (the same loop IR,
# the same operations: 1e-6 relative); as users get it (fused where the
# CPU has FMA) it is compared with the reference as the C build is.
OBJECT_REL, OBJECT_ABS = 1e-6, 1e-9
object_worst = [0.0]


def object_predicts(args, model, d, w0, inp, name, options, baked=False):
    """(problems, output) of an object build."""
    exe = os.path.join(d, name)
    failed = build_object_with_runtime(args, model, exe + '.o', exe, options)
    if failed:
        return [failed], None
    out = run([exe, 'predict', inp] if baked else [exe, 'predict', '--weights', w0, inp])
    if out.returncode != 0:
        return [f'the object\'s predict failed ({out.returncode}):\n{out.stderr}'], None
    return [], out.stdout


def baked_object_agrees(args, model, d, w0, inp, c_output):
    """--weights baked into an object (its main() is the runtime's predict
    command): exactly what the C build prints."""
    problems, out = object_predicts(args, model, d, w0, inp, 'baked',
                                    ['--weights', w0, '--no-train', '--fp-contract=off'], baked=True)
    if out is not None and out != c_output:
        problems.append('the object with baked weights prints something else:\n' + out[:500])
    return problems


def objects_agree(args, model, d, w0, inp, c_output):
    # predictors: the training code (in the C build, and tested with the
    # objects' by the training comparisons) doubled their build time
    problems, exact = object_predicts(args, model, d, w0, inp, 'exact',
                                      ['--fp-contract=off', '--no-train'])
    if exact is not None:
        diffs, worst = compare(exact, c_output, OBJECT_REL, OBJECT_ABS)
        object_worst[0] = max(object_worst[0], worst)
        problems += ['--emit=obj --fp-contract=off against the C build: ' + p for p in diffs]
    more, fused = object_predicts(args, model, d, w0, inp, 'fused', ['--no-train'])
    return problems + more, fused


def compare(ours, ref, rel, abs_):
    a, b = ours.strip().split('\n'), ref.strip().split('\n')
    if len(a) != len(b):
        return [f'{len(a)} output lines, the reference {len(b)}'], 0.0
    worst = 0.0
    problems = []
    for n, (la, lb) in enumerate(zip(a, b), 1):
        va, vb = [float(v) for v in la.split(',')], [float(v) for v in lb.split(',')]
        if len(va) != len(vb):
            return [f'line {n}: {len(va)} values, the reference {len(vb)}'], 0.0
        for k, (x, y) in enumerate(zip(va, vb)):
            if math.isnan(x) and math.isnan(y):
                continue
            err = abs(x - y)
            if math.isinf(y) or math.isinf(x):
                ok = x == y
            else:
                ok = err <= rel * abs(y) + abs_
            if not math.isinf(y):
                worst = max(worst, err / (abs(y) + abs_ / rel))
            if not ok and len(problems) < 3:
                problems.append(f'line {n} value {k}: cnngen {x!r}, reference {y!r}')
    return problems, worst


def main():
    ap = argparse.ArgumentParser()
    add_build_arguments(ap, '-O1')
    ap.add_argument('--samples', type=int, default=4)
    ap.add_argument('--standalone-every', type=int, default=0)
    ap.add_argument('--with-train', action='store_true',
                    help='build the programs with their training code (compiled, never run '
                         'here: four fifths of a big model\'s compile time)')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('paths', nargs='+')
    args = ap.parse_args()
    skip_unless_cpu_runs(args)
    args.cnngen = os.path.abspath(args.cnngen)
    if args.obj and not has_llvm(args.cnngen):
        print('(no LLVM backend in this cnngen: --obj skipped)')
        args.obj = False
    files = model_files(args.paths)
    rng = random.Random(1234)
    with tempfile.TemporaryDirectory() as work:
        lines = []
        for i, model in enumerate(files):
            d = os.path.join(work, str(i))
            os.makedirs(d)
            q = shlex.quote
            lines.append(f'{q(d)}/init.out {q(d)}/init.err init {q(model)} --seed {i + 1} '
                         f'--out {q(d)}/w0.safetensors')
            lines.append(f'{q(d)}/sum.out {q(d)}/sum.err summary --json {q(model)}')
        env = dict(os.environ, CNNREF_THREADS='1')
        codes = oracle_batch(args.oracle, lines, env)
        valid = []
        for i, model in enumerate(files):
            if codes[2 * i] != '0':
                continue
            import json
            with open(os.path.join(work, str(i), 'sum.out')) as f:
                summary = json.load(f)
            size = 1
            for dim in summary['input']:
                size *= dim
            write_inputs(os.path.join(work, str(i), 'in.txt'), size, args.samples, rng)
            valid.append(i)
        lines = [f'{shlex.quote(os.path.join(work, str(i), "ref.txt"))} '
                 f'{shlex.quote(os.path.join(work, str(i), "ref.err"))} predict '
                 f'{shlex.quote(files[i])} --weights {shlex.quote(os.path.join(work, str(i), "w0.safetensors"))} '
                 f'{shlex.quote(os.path.join(work, str(i), "in.txt"))}' for i in valid]
        codes = oracle_batch(args.oracle, lines, env)
        failures, worst = 0, 0.0
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda i: build_and_predict(args, i, files[i], work), valid))
        for i, code, (problems, ours, fused) in zip(valid, codes, results):
            with open(os.path.join(work, str(i), 'ref.txt')) as f:
                ref = f.read()
            if code != '0':
                problems = problems + ['the reference failed to predict']
            elif ours is not None:
                diffs, w = compare(ours, ref, 1e-5, 1e-6)
                problems += diffs
                worst = max(worst, w)
                if fused is not None:
                    diffs, w = compare(fused, ref, 1e-5, 1e-6)
                    problems += ['--emit=obj against the reference: ' + p for p in diffs]
                    worst = max(worst, w)
            if problems:
                failures += 1
                print(f'FAIL {files[i]}')
                for p in problems:
                    print('  ' + p.replace('\n', '\n  '))
    print(f'{len(valid)} models predicted, worst relative difference {worst:.2e}')
    if args.obj:
        print(f'--emit=obj --fp-contract=off: worst relative difference from the C build '
              f'{object_worst[0]:.2e}; --emit=obj (fused) is in the worst above')
    ok = failures == 0 and len(valid) >= args.min
    if len(valid) < args.min:
        print(f'too few models: {len(valid)} < {args.min}')
    print(f'{len(valid) - failures} passed, {failures} failed')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
