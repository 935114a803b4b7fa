#!/usr/bin/python3
"""From quantization-aware training to the int8 predictor, against the
reference (tests/reference/cnnref_train.py and cnnref_quant.py).

For each model with quantize = int8 (a classifier with a batchnorm
folded, an add, a depthwise conv and a float head; a regression whose
output is int8, with a layer named quantize: its tensors quantize.kernel
and quantize.bias, its observer quantize.quantize): the generated
program trains from the reference's starting weights, then cnngen --weights W --quantize W makes the int8
predictor from the weights it saved, whose observers hold the ranges.
Its predict --raw integers must equal the reference's predict --quantize
W --raw bit for bit (every instruction-set clone, and the LLVM object
where it is built in), its floats the reference's to 1e-5.  And the float
program's eval --int8 Q (the int8 predictor's loss and metrics beside
the float model's) against those computed from the reference's int8
outputs.  Then the errors: --quantize with weights whose observers have
seen nothing, word for word as the reference says it; and weights
without a layer's tensor, which only an observer may leave out.  (Training itself is compared with
the reference in compare_train_features.py.)

    test_qat.py --cnngen BIN --oracle cnnref_train.py
                --oracle-quant cnnref_quant.py --runtime-include DIR
                --runtime-lib DIR [--sanitize]
"""
import argparse
import math
import os
import random
import sys
import tempfile

from e2e_common import (add_build_arguments, build_with_runtime, has_llvm, int8_clones,
                        read_tensors, run, write_safetensors)
from compare_train_features import QBLOCK
from test_calibrate import compare_int8, int8_predict, write_inputs

BLOCK = f'''model block
{QBLOCK}train {{
  optimizer = adam(lr=0.01)
  batch = 8
  epochs = 3
  quantize = int8
  metrics = [accuracy]
}}
'''
SERIES = '''model series
input [12, 1]
quantize: conv1d(4, 3, activation=relu)
maxpool1d(2)
dense(1)
train {
  optimizer = sgd(lr=0.05, momentum=0.9)
  batch = 8
  epochs = 3
  quantize = int8
  metrics = [mae]
}
'''
MODELS = {'block': (BLOCK, 72, 3), 'series': (SERIES, 12, None)}


def write_data(path, inputs, classes, rng, count=40):
    with open(path, 'w') as f:
        for _ in range(count):
            x = [rng.uniform(-1, 1) for _ in range(inputs)]
            t = rng.randrange(classes) if classes else sum(x[:3]) / 3
            f.write(','.join(f'{v:.4f}' for v in x + [t]) + '\n')


def check_model(args, work, name, rng):
    text, inputs, classes = MODELS[name]
    d = os.path.join(work, name)
    os.makedirs(d)
    j = lambda f: os.path.join(d, f)  # noqa: E731
    with open(j('model.cnn'), 'w') as f:
        f.write(text)
    write_data(j('d.csv'), inputs, classes, rng)
    with open(j('x_missing.txt'), 'w') as f:
        f.write(','.join(['0.5'] * inputs) + '\n')
    r = run(['/usr/bin/python3', args.oracle, 'init', j('model.cnn'), '--seed', '5',
             '--out', j('start.safetensors')])
    if r.returncode != 0:
        return [f'the reference init failed: {r.stderr}']
    problem = build_with_runtime(args, j('model.cnn'), j('m.c'), j('m'))
    if problem:
        return [problem]
    # before training, the observers have seen nothing
    problems = []
    quantize = ['--quantize', j('start.safetensors')]
    for tool in ([args.cnngen, j('model.cnn'), '--weights', j('start.safetensors'), '-o',
                  j('unseen.c')] + quantize,
                 ['/usr/bin/python3', args.oracle_quant, 'predict', j('model.cnn'), '--weights',
                  j('start.safetensors'), '--raw', j('d.csv')] + quantize):
        e = run(tool)
        want = f"{j('start.safetensors')}: error: 'input.quantize' holds no range: train with " \
            'quantize = int8 first\n'
        if e.returncode != 1 or e.stderr != want:
            problems.append(f'{os.path.basename(tool[0])} --quantize of unseen observers: exit '
                            f'{e.returncode}, said {e.stderr!r}; expected exit 1, {want!r}')
    t = run([j('m'), 'train', '--data', j('d.csv'), '--init', j('start.safetensors'),
             '--no-shuffle', '--quiet', '--save', j('w0.safetensors')])
    if t.returncode != 0:
        return problems + [f'train failed: {t.stderr}']
    problems += check_missing(j, name)
    # test_calibrate's int8 helpers: the ranges file is the weights file
    os.link(j('w0.safetensors'), j('ours.safetensors'))
    write_inputs(j('x.txt'), inputs, rng, 2 / 255)
    for out, extra in (('qraw.out', ['--raw']), ('qfloat.out', [])):
        r = run(['/usr/bin/python3', args.oracle_quant, 'predict', j('model.cnn'), '--weights',
                 j('w0.safetensors'), '--quantize', j('w0.safetensors')] + extra + [j('x.txt')])
        if r.returncode != 0:
            return problems + [f'the reference int8 predict failed: {r.stderr}']
        with open(j(out), 'w') as f:
            f.write(r.stdout)
    more, results = int8_predict(args, d)
    problems += more
    for backend, raw, floats in results:
        problems += [f'{backend}: {p}' for p in compare_int8(d, raw, floats)]
    if not more:
        print(f'{name}: the int8 predictor from its trained observers agrees '
              f'({", ".join(backend for backend, _, _ in results)})')
        problems += check_eval(args, d, classes)
    return problems


def check_missing(j, name):
    """The trained weights without the input's observer load (it starts
    unseen); without the first layer's kernel they do not."""
    tensors = read_tensors(j('w0.safetensors'))
    kernel = next(k for k in tensors if k.endswith('.kernel'))
    problems = []
    for left_out, loads in (('input.quantize', True), (kernel, False)):
        path = j('without.safetensors')
        write_safetensors(path, [(k, shape, values) for k, (shape, values) in tensors.items()
                                 if k != left_out])
        r = run([j('m'), 'predict', '--weights', path, j('x_missing.txt')])
        if (r.returncode == 0) != loads or (not loads and f"'{left_out}'" not in r.stderr):
            problems.append(f'weights without {left_out}: exit {r.returncode}, said {r.stderr!r}')
    if not problems:
        print(f'{name}: weights may leave out an observer, not {kernel}')
    return problems


def check_eval(args, d, classes):
    """eval --int8: the int8 predictor's loss and metric over the data,
    beside the float model's, from the reference int8 model's outputs."""
    j = lambda f: os.path.join(d, f)  # noqa: E731
    e = run([j('m'), 'eval', '--data', j('d.csv'), '--weights', j('w0.safetensors'), '--int8',
             j('q_c')])
    with open(j('d.csv')) as f:
        rows = [[float(v) for v in line.split(',')] for line in f]
    with open(j('x_eval.txt'), 'w') as f:
        f.write(''.join(','.join(repr(v) for v in row[:-1]) + '\n' for row in rows))
    r = run(['/usr/bin/python3', args.oracle_quant, 'predict', j('model.cnn'), '--weights',
             j('w0.safetensors'), '--quantize', j('w0.safetensors'), j('x_eval.txt')])
    ys = [[float(v) for v in line.split(',')] for line in r.stdout.splitlines()]
    targets = [row[-1] for row in rows]
    if classes:     # crossentropy from the probabilities, clipped as Keras does
        clip = [min(max(y[int(t)], 1e-7), 1 - 1e-7) for y, t in zip(ys, targets)]
        want = {'loss': sum(-math.log(p) for p in clip) / len(ys),
                'accuracy': sum(max(range(classes), key=y.__getitem__) == int(t)
                                for y, t in zip(ys, targets)) / len(ys)}
    else:
        want = {'loss': sum((y[0] - t) ** 2 for y, t in zip(ys, targets)) / len(ys),
                'mae': sum(abs(y[0] - t) for y, t in zip(ys, targets)) / len(ys)}
    lines = e.stdout.splitlines()
    if e.returncode != 0 or len(lines) != 2 or not lines[1].startswith('int8_loss: '):
        return [f'eval --int8: exit {e.returncode}, printed {e.stdout!r}, said {e.stderr!r}']
    got = dict(item.split(': ') for item in lines[1].split(' - '))
    for key, value in want.items():
        mine = float(got[f'int8_{key}'])
        if not abs(mine - value) <= 1e-5 * abs(value) + 1e-7:
            return [f'eval --int8: int8_{key} {mine}, from the reference\'s outputs {value}']
    print(f'  eval --int8: {lines[1]} (beside {lines[0]}), as the reference\'s outputs give')
    # a program that is not there, and one that predicts for another model
    for prog, why in ((j('absent'), 'could not be run'), ('/bin/true', 'printed 0 outputs')):
        e = run([j('m'), 'eval', '--data', j('d.csv'), '--weights', j('w0.safetensors'),
                 '--int8', prog])
        if e.returncode != 1 or why not in e.stderr or len(e.stdout.splitlines()) != 1:
            return [f'eval --int8 {prog}: exit {e.returncode}, said {e.stderr!r}']
    return []


def main():
    ap = argparse.ArgumentParser()
    add_build_arguments(ap, '-O1')
    ap.add_argument('--oracle-quant', required=True)
    args = ap.parse_args()
    args.cnngen = os.path.abspath(args.cnngen)
    args.int8_backends = ['c'] + (['llvm'] if has_llvm(args.cnngen) and not args.sanitize else [])
    args.int8_clones, skipped = int8_clones()
    if skipped:
        print(f'SKIPPED the int8 clones this CPU cannot run: {", ".join(skipped)}')
    rng = random.Random(17)
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for name in MODELS:
            problems = check_model(args, work, name, rng)
            for p in problems:
                print(f'FAIL {name}: ' + p.replace('\n', '\n  '))
            failures += bool(problems)
    print(f'{len(MODELS)} models, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
