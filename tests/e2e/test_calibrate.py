#!/usr/bin/python3
"""PROG calibrate against the reference (tests/reference/cnnref_quant.py):
the same model, weights and data give the same range for every tensor.

    test_calibrate.py --cnngen BIN --oracle cnnref_quant.py --runtime-include DIR
                      --runtime-lib DIR [--sanitize] [--min N] [--series MODEL.cnn]
                      [--generated N SEED] MODEL.cnn|DIR ...

Each model gets random weights (the reference's init) and random rows of
training data (a CSV; --series models also a series:FILE:COLUMN:N), and
both programs calibrate twice: min and max, which must agree to 1e-5
relative plus 1e-6, and --percentile 99.9, whose ends are edges of a
2048-bin histogram: the same edge, or the next where a value within
rounding of an edge falls on the other side of it.  Then the command's
errors, word for word.

Then the int8 plan that cnngen --summary --json --quantize makes of our
ranges against the reference's (summary --json --quantize): every
node's form, scale and zero point, and the int8 parameter bytes, exactly;
or, for a model that has no int8 form, the same error.  And a few such
models made for it.

Then the int8 predictor itself (cnngen --weights --quantize --main, a
standalone C file, and the LLVM backend's object where it is built in):
on inputs that reach past the calibrated range, its predict --raw
integers (int8 outputs, or a float head's int32 sums) equal the
reference's predict --quantize --raw bit for bit, and its float outputs
the reference's to 1e-5.  The C file runs once per instruction-set clone
(CNNGEN_ISA: the VNNI and AVX2 kernels, the plain loops), whatever the
CPU would pick; a clone this CPU cannot run is reported as skipped.
"""

import argparse
import concurrent.futures
import json
import math
import os
import random
import shlex
import struct
import sys
import tempfile

from e2e_common import (WARNINGS, add_build_arguments, build_with_runtime, has_llvm, int8_clones,
                        model_files, oracle_batch, read_safetensors, run, sanitizer_flags,
                        write_safetensors, write_train_data)

PERCENTILE = 99.9
BINS = 2048


def write_series(path, window, rng):
    """A one-column series with a header, long enough for 3 batches of windows."""
    with open(path, 'w') as f:
        f.write('value\n')
        for _ in range(window + 90):
            f.write('%.6g\n' % rng.uniform(-1, 1))


def compare_ranges(ours, ref, full=None):
    """What differs between two RANGES files; for percentiles, `full` is
    our min-max run, whose ranges give each tensor's bin width."""
    problems = []
    if list(ours) != list(ref):
        return [f'the tensors differ: {list(ours)} against {list(ref)}']
    for name, (lo, hi) in ours.items():
        rlo, rhi = ref[name]
        if full:
            full_lo, full_hi = full[name]
            tolerance = 1.01 * (full_hi - full_lo) / BINS + 1e-5 * max(abs(full_lo), abs(full_hi))
        for mine, theirs, end in ((lo, rlo, 'min'), (hi, rhi, 'max')):
            if not full:
                tolerance = 1e-5 * abs(theirs) + 1e-6
            if not abs(mine - theirs) <= tolerance:
                problems.append(f'{name} {end}: {mine!r} against the reference\'s {theirs!r} '
                                f'(tolerance {tolerance:.3g})')
    return problems


def calibrate_ours(args, d, data):
    """Build and calibrate both ways: (problems, min-max ranges, percentile ranges)."""
    prog = os.path.join(d, 'prog')
    failed = build_with_runtime(args, os.path.join(d, 'model.cnn'), prog + '.c', prog)
    if failed:
        return [failed], None, None
    found = []
    for name, extra in (('ours', []), ('ours_p', ['--percentile', str(PERCENTILE)])):
        r = run([prog, 'calibrate', '--data', data, '--weights', os.path.join(d, 'w0.safetensors'),
                 '--save', os.path.join(d, name + '.safetensors')] + extra)
        if r.returncode != 0:
            return [f'calibrate {" ".join(extra)} failed ({r.returncode}):\n{r.stderr}'], None, None
        found.append(read_safetensors(os.path.join(d, name + '.safetensors')))
    return [], found[0], found[1]


def compare_plans(args, d, ref_code):
    """cnngen's int8 plan of our ranges against the reference's (its
    output in d/plan.out, or its error in d/plan.err)."""
    ours = run([args.cnngen, os.path.join(d, 'model.cnn'), '--summary', '--json', '--quantize',
                os.path.join(d, 'ours.safetensors')])
    if ref_code != '0':
        with open(os.path.join(d, 'plan.err')) as f:
            theirs = f.read().splitlines()[:1]
        mine = ours.stderr.splitlines()[:1]
        if ours.returncode != 1 or mine != theirs:
            return [f'--quantize: exit {ours.returncode}, said {mine}; the reference said {theirs}']
        return []
    if ours.returncode != 0:
        return [f'--quantize failed ({ours.returncode}):\n{ours.stderr}']
    with open(os.path.join(d, 'plan.out')) as f:
        theirs = json.load(f)['int8']
    mine = json.loads(ours.stdout)['int8']
    mine.pop('activation_bytes')
    if mine != theirs:
        return [f'the int8 plan differs:\n  ours   {mine}\n  theirs {theirs}']
    return []


def float32_step(x, up):
    """The float32 next to x (a nonzero float32) upward or downward."""
    bits = struct.unpack('<i', struct.pack('<f', x))[0]
    bits += 1 if (x > 0) == up else -1
    return struct.unpack('<f', struct.pack('<i', bits))[0]


def write_inputs(path, size, rng, scale, rows=6):
    """Samples for predict, a few reaching past the calibrated [-1, 1]
    (the input's clamps); then two of values at and next to halves of the
    input's scale, (k + 1/2) * scale as a float and the floats either
    side, where rounding x / scale is decided in its last bits (the
    vector clones multiply by 1 / scale and must divide there)."""
    with open(path, 'w') as f:
        for _ in range(rows):
            f.write(','.join('%.6g' % rng.uniform(-1.25, 1.25) for _ in range(size)) + '\n')
        for _ in range(2):
            values = []
            for _ in range(size):
                half = struct.unpack('<f', struct.pack('<f', (rng.randint(-140, 140) + 0.5) * scale))[0]
                values.append(rng.choice([half, float32_step(half, True),
                                          float32_step(half, False)]))
            f.write(','.join('%.9g' % v for v in values) + '\n')


def int8_build(args, d, backend):
    """Our int8 predictor of d's model, from the C backend (a standalone
    file) or the LLVM backend (an object, linked with the runtime for its
    main): (problems, the program)."""
    q = os.path.join(d, 'q_' + backend)
    out = q + ('.c' if backend == 'c' else '.o')
    gen = run([args.cnngen, os.path.join(d, 'model.cnn'), '--weights',
               os.path.join(d, 'w0.safetensors'), '--quantize',
               os.path.join(d, 'ours.safetensors'), '--main', '-o', out] +
              ([] if backend == 'c' else ['--emit=obj']))
    if gen.returncode != 0:
        return [f'cnngen --quantize ({backend}) failed ({gen.returncode}):\n{gen.stderr}'], None
    if backend == 'c':
        cc = run([args.cc] + WARNINGS + shlex.split(args.cflags) + sanitizer_flags(args) +
                 [out, '-lm', '-o', q])
    else:
        cc = run([args.cc, out, os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm',
                  '-o', q])
    if cc.returncode != 0:
        return [f'the int8 {backend} does not build cleanly:\n{cc.stderr[:3000]}'], None
    return [], q


def int8_predict(args, d):
    """Build our int8 predictors of d's model (C, and the LLVM object where
    cnngen has the backend) and run them on d/x.txt, raw and in floats:
    (problems, [(backend, raw text, float text)])."""
    results = []
    for backend in args.int8_backends:
        problems, q = int8_build(args, d, backend)
        if problems:
            return problems, results
        for clone in args.int8_clones if backend == 'c' else [None]:
            env = dict(os.environ, CNNGEN_ISA=clone) if clone else None
            name = f'{backend} ({clone})' if clone else backend
            outputs = []
            for extra in (['--raw'], []):
                r = run([q, 'predict'] + extra + [os.path.join(d, 'x.txt')], env=env)
                if r.returncode != 0:
                    return [f'{name}: predict {" ".join(extra)} failed ({r.returncode}):\n'
                            f'{r.stderr}'], results
                outputs.append(r.stdout)
            results.append((name, outputs[0], outputs[1]))
    return [], results


def compare_int8(d, raw, floats):
    """Our int8 predictor's outputs against the reference's."""
    with open(os.path.join(d, 'qraw.out')) as f:
        ref_raw = f.read()
    if raw != ref_raw:
        for k, (mine, theirs) in enumerate(zip(raw.splitlines(), ref_raw.splitlines())):
            if mine != theirs:
                return [f'predict --raw, sample {k + 1}: {mine[:200]}\n  the reference: '
                        f'{theirs[:200]}']
        return [f'predict --raw: {len(raw.splitlines())} lines, the reference '
                f'{len(ref_raw.splitlines())}']
    with open(os.path.join(d, 'qfloat.out')) as f:
        ref_floats = f.read()
    for k, (mine, theirs) in enumerate(zip(floats.splitlines(), ref_floats.splitlines())):
        for a, b in zip(mine.split(','), theirs.split(',')):
            if not abs(float(a) - float(b)) <= 1e-5 * abs(float(b)) + 1e-6:
                return [f'predict, sample {k + 1}: {a} against the reference\'s {b}']
    return []


def expect(problems, what, result, status, message):
    if result.returncode != status or result.stderr != message:
        problems.append(f'{what}: exit {result.returncode}, said {result.stderr!r}; expected exit '
                        f'{status}, {message!r}')


def error_checks(args, work):
    """The command's usage errors, a predict-only program, and weights that
    make a layer's values not finite."""
    model = os.path.join(work, 'errors.cnn')
    with open(model, 'w') as f:
        f.write('model errors\ninput [4]\ndense(3, activation=relu)\ndense(2)\n'
                'train {\n  loss = mse\n  batch = 4\n}\n')
    prog, only = os.path.join(work, 'errors'), os.path.join(work, 'errors_only')
    problems = [p for p in (build_with_runtime(args, model, prog + '.c', prog),
                            build_with_runtime(args, model, only + '.c', only, ['--no-train'])) if p]
    if problems:
        return problems
    data, weights = os.path.join(work, 'errors.csv'), os.path.join(work, 'huge.safetensors')
    with open(data, 'w') as f:
        f.write('0.5,-1,2,0.25,1,0\n1e30,1e30,1,1,0,1\n')
    # (finite weights and data, whose products are not)
    write_safetensors(weights, [('dense_1.kernel', [4, 3], [1e30] * 12),
                                ('dense_1.bias', [3], [0.0] * 3),
                                ('dense_2.kernel', [3, 2], [0.5] * 6),
                                ('dense_2.bias', [2], [0.0] * 2)])
    usage = (f'usage: {prog} calibrate --data DATA --weights W.safetensors '
             '[--save RANGES.safetensors] [--percentile P]\n')
    cases = [
        ('no --weights', [prog, 'calibrate', '--data', data], 2,
         usage + f'{prog} calibrate: error: the following arguments are required: --weights\n'),
        ('--percentile 50', [prog, 'calibrate', '--data', data, '--weights', weights,
                             '--percentile', '50'], 2,
         usage + f"{prog} calibrate: error: argument --percentile: '50' is not a number above "
                 '50 and at most 100\n'),
        ('--save without a value', [prog, 'calibrate', '--data', data, '--save'], 2,
         usage + f'{prog} calibrate: error: argument --save: expected one argument\n'),
        ('not finite', [prog, 'calibrate', '--data', data, '--weights', weights, '--save',
                        os.path.join(work, 'never.safetensors')], 1,
         f"{prog} calibrate: error: 'dense_1' has values that are not finite on this data: "
         'the weights or the data are spoiled\n'),
        ('predict only', [only, 'calibrate', '--data', data, '--weights', weights], 2,
         f"{only}: error: 'calibrate' is not built into this program (it predicts only)\n"),
    ]
    ranges = os.path.join(work, 'errors.ranges.safetensors')
    write_safetensors(ranges, [(name, [2], [-1.0, 1.0]) for name in ('input', 'dense_1', 'dense_2')])
    cases.append(('--quantize without --weights', [args.cnngen, model, '--quantize', ranges,
                                                   '-o', os.path.join(work, 'q.c')], 2,
                  'cnngen: error: --quantize needs --weights: the int8 kernels are made from '
                  'them and baked in\n(cnngen --help lists the options)\n'))
    for what, cmd, status, message in cases:
        expect(problems, what, run(cmd), status, message)
    if os.path.exists(os.path.join(work, 'never.safetensors')):
        problems.append('not finite: the ranges were saved all the same')
    return problems


def main():
    ap = argparse.ArgumentParser()
    add_build_arguments(ap, '-O1')
    ap.add_argument('--series', action='append', default=[], metavar='MODEL.cnn',
                    help='also calibrate this model (input [N, 1]) on a series:FILE:value:N')
    ap.add_argument('--generated', nargs=2, type=int, metavar=('N', 'SEED'),
                    help='also N models of gen_models.py valid N SEED (those with no int8 '
                         'form: the same error as the reference\'s)')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('paths', nargs='*')
    args = ap.parse_args()
    args.cnngen = os.path.abspath(args.cnngen)
    # the LLVM backend's int8 objects too, where it is built in (not under
    # the sanitizers: the objects are not instrumented)
    args.int8_backends = ['c'] + (['llvm'] if has_llvm(args.cnngen) and not args.sanitize else [])
    args.int8_clones, skipped_clones = int8_clones()
    files = model_files(args.paths)
    rng = random.Random(2468)
    q = shlex.quote
    with tempfile.TemporaryDirectory() as work:
        if args.generated:
            generated = os.path.join(work, 'generated')
            run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              'gen_models.py'), 'valid',
                 str(args.generated[0]), str(args.generated[1]), generated])
            files += model_files([generated])
        cases, lines = [], []
        for i, source in enumerate(files + args.series):
            d = os.path.join(work, str(i))
            os.makedirs(d)
            with open(source) as f:
                text = f.read()
            model = os.path.join(d, 'model.cnn')
            with open(model, 'w') as f:
                f.write(text)
            s = run([args.cnngen, '--summary', '--json', model])
            if s.returncode != 0:
                print(f'FAIL {source}: cnngen --summary:\n{s.stderr}')
                return 1
            summary = json.loads(s.stdout)
            if i < len(files):
                data = os.path.join(d, 'data.csv')
                write_train_data(data, summary, rng)
            else:
                series = os.path.join(d, 'series.csv')
                write_series(series, summary['input'][0], rng)
                data = f'series:{series}:value:{summary["input"][0]}'
            cases.append((source, d, data))
            lines.append(f'{q(d)}/init.out {q(d)}/init.err init {q(model)} --seed {i + 1} '
                         f'--out {q(d)}/w0.safetensors')
            for name, extra in (('ref', ''), ('ref_p', f' --percentile {PERCENTILE}')):
                lines.append(f'{q(d)}/{name}.out {q(d)}/{name}.err calibrate {q(model)} '
                             f'--data {q(data)} --weights {q(d)}/w0.safetensors '
                             f'--save {q(d)}/{name}.safetensors{extra}')
        codes = oracle_batch(args.oracle, lines, dict(os.environ, CNNREF_THREADS='1'))
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda c: calibrate_ours(args, c[1], c[2]), cases))
        failed, tensors = set(), 0

        def report(source, problems):
            if problems:
                failed.add(source)
                print(f'FAIL {source}')
                for p in problems:
                    print('  ' + p.replace('\n', '\n  '))

        for k, ((source, d, _), (problems, minmax, pct)) in enumerate(zip(cases, results)):
            if codes[3 * k:3 * k + 3] != ['0', '0', '0']:
                with open(os.path.join(d, 'ref.err')) as f:
                    problems = problems + [f'the reference failed: {f.read()[:500]}']
            elif minmax is not None:
                problems = problems + compare_ranges(minmax, read_safetensors(
                    os.path.join(d, 'ref.safetensors')))
                problems += ['--percentile: ' + p for p in compare_ranges(
                    pct, read_safetensors(os.path.join(d, 'ref_p.safetensors')), minmax)]
                tensors += len(minmax)
            report(source, problems)
        plan_lines = [f'{q(d)}/plan.out {q(d)}/plan.err summary --json --quantize '
                      f'{q(d)}/ours.safetensors {q(d)}/model.cnn' for _, d, _ in cases]
        plan_codes = oracle_batch(args.oracle, plan_lines)
        quantized, int8_cases = 0, []
        for (source, d, _), (_, minmax, _), code in zip(cases, results, plan_codes):
            if minmax is not None:
                problems = compare_plans(args, d, code)
                report(source, problems)
                quantized += code == '0'
                if code == '0' and not problems:
                    int8_cases.append((source, d))
        int8_lines = []
        for source, d in int8_cases:
            with open(os.path.join(d, 'plan.out')) as f:
                plan = json.load(f)
            scale = next(n['scale'] for n in plan['int8']['nodes'] if n['name'] == 'input')
            write_inputs(os.path.join(d, 'x.txt'), math.prod(plan['input']), rng, scale)
            common = (f'--weights {q(d)}/w0.safetensors --quantize {q(d)}/ours.safetensors '
                      f'{q(d)}/model.cnn {q(d)}/x.txt')
            int8_lines += [f'{q(d)}/qraw.out {q(d)}/qraw.err predict --raw {common}',
                           f'{q(d)}/qfloat.out {q(d)}/qfloat.err predict {common}']
        int8_codes = oracle_batch(args.oracle, int8_lines)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            built = list(pool.map(lambda c: int8_predict(args, c[1]), int8_cases))
        predictors = 0
        for k, ((source, d), (problems, results)) in enumerate(zip(int8_cases, built)):
            if int8_codes[2 * k:2 * k + 2] != ['0', '0']:
                problems = problems + ['the reference\'s int8 predict failed']
            for backend, raw, floats in results:
                problems += [f'{backend}: {p}' for p in compare_int8(d, raw, floats)]
            predictors += not problems
            report(source, problems)
        failures = len(failed)
        errors = error_checks(args, work)
        for p in errors:
            print('FAIL ' + p.replace('\n', '\n  '))
    backends = ' and '.join(f'c ({", ".join(args.int8_clones)})' if b == 'c' else b
                            for b in args.int8_backends)
    if skipped_clones:
        print(f'SKIPPED the int8 clones this CPU cannot run: {", ".join(skipped_clones)}')
    print(f'{len(cases)} models calibrated, {tensors} tensors; {quantized} int8 plans, the '
          f'others the same errors; {predictors} int8 predictors ({backends}) bit for bit the '
          f'reference\'s; the command\'s errors: '
          f'{"all as expected" if not errors else f"{len(errors)} wrong"}')
    if len(cases) - failures < args.min:
        print(f'too few models agree: {len(cases) - failures} < {args.min}')
    print(f'{len(cases) - failures} passed, {failures} failed')
    return 0 if failures == 0 and not errors and len(cases) >= args.min else 1


if __name__ == '__main__':
    sys.exit(main())
