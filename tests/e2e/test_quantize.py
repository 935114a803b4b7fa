#!/usr/bin/python3
"""An int8 predictor's input quantization, clone by clone, against the
reference's rounding (tests/e2e/int8_quantize_check.c).

    test_quantize.py --cnngen BIN --oracle cnnref_quant.py [--cc CC]

The vector clones multiply by 1 / scale (AVX-512 in float) where the
reference divides in double, and divide again only where |v| + 1/2 is
within their error of an integer: on 2.1 million inputs at, next to and
between halves of a scale made awkward on purpose (a range of
[-1.37, 2.91]), past the range and NaN, each clone this CPU runs gives
the reference's int8 values; a clone it cannot run is reported skipped.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from e2e_common import int8_clones, run, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--cc', default='cc')
    ap.add_argument('--rounds', type=int, default=12500)
    args = ap.parse_args()
    model = os.path.join(os.path.dirname(HERE), 'int8', 'quantize_input.cnn')
    with tempfile.TemporaryDirectory() as work:
        weights, ranges = os.path.join(work, 'w.safetensors'), os.path.join(work, 'r.safetensors')
        r = run(['/usr/bin/python3', args.oracle, 'init', model, '--out', weights])
        if r.returncode != 0:
            print(f'FAIL the reference\'s init:\n{r.stderr}')
            return 1
        write_safetensors(ranges, [('input', [2], [-1.37, 2.91]), ('dense_1', [2], [-3.1, 4.7])])
        src = os.path.join(work, 'q.c')
        r = run([args.cnngen, model, '--weights', weights, '--quantize', ranges, '--prefix', 'q',
                 '-o', src])
        if r.returncode != 0:
            print(f'FAIL cnngen --quantize:\n{r.stderr}')
            return 1
        exe = os.path.join(work, 'check')
        r = run([args.cc, '-O2', '-Wall', '-Wextra', '-Werror', '-I', work, src,
                 os.path.join(HERE, 'int8_quantize_check.c'), '-lm', '-o', exe])
        if r.returncode != 0:
            print(f'FAIL the check does not build:\n{r.stderr}')
            return 1
        runs, lacks = int8_clones()
        for clone, missing in lacks.items():
            print(f'SKIPPED {clone}: this CPU has no {", ".join(missing)}')
        failures = 0
        for clone in runs:
            r = run([exe, str(args.rounds)], env=dict(os.environ, CNNGEN_ISA=clone))
            ran = r.stdout.split(':')[0]
            if ran != clone:
                print(f'FAIL {clone}: the {ran or "no"} clone ran')
                failures += 1
            elif r.returncode != 0:
                print(f'FAIL {r.stdout.strip()}\n{r.stderr}')
                failures += 1
            else:
                print(f'ok   {r.stdout.strip()}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
