#!/usr/bin/python3
"""An int8 predictor's input quantization, clone by clone, against the
reference's rounding (tests/e2e/int8_quantize_check.c).

    test_quantize.py --cnngen BIN --oracle cnnref_quant.py [--cc CC]

The clones multiply by 1 / scale (AVX-512, the plain loops and the DSP
clone in float) where the reference divides in double, and divide again
only where |v| + 1/2 is within their error of an integer: on 2.1 million
inputs at, next to and between halves of two scales made awkward on
purpose (ranges of [-1.37, 2.91] and [-1.37, 239]: at the second, a float
product lands on the wrong side of a half for 40 of 7,203 inputs at and
next to halves, so a check that moved too few of them would fail), past
the range and NaN, each clone this CPU runs gives the reference's int8
values; a clone it cannot run is reported skipped.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from e2e_common import int8_clones, run, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def check_scale(args, model, work, weights, ranges, top):
    """Every clone's quantize against the reference's at the input range
    [-1.37, top]: the number of clones that failed."""
    write_safetensors(ranges, [('input', [2], [-1.37, top]), ('dense_1', [2], [-3.1, 4.7])])
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
    failures = 0
    for clone in int8_clones()[0]:
        r = run([exe, str(args.rounds)], env=dict(os.environ, CNNGEN_ISA=clone))
        ran = r.stdout.split(':')[0]
        if ran != clone:
            print(f'FAIL [-1.37, {top}] {clone}: the {ran or "no"} clone ran')
            failures += 1
        elif r.returncode != 0:
            print(f'FAIL [-1.37, {top}] {r.stdout.strip()}\n{r.stderr}')
            failures += 1
        else:
            print(f'ok   [-1.37, {top}] {r.stdout.strip()}')
    return failures


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
        for clone, missing in int8_clones()[1].items():
            print(f'SKIPPED {clone}: this CPU has no {", ".join(missing)}')
        failures = 0
        for top in (2.91, 239.0):
            failures += check_scale(args, model, work, weights, ranges, top)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
