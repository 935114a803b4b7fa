#!/usr/bin/python3
"""The train block's features against the reference (cnnref_train.py):
each schedule and the warmup, adamw, Adam's and SGD's decay under a
schedule, validation from --val and from validation_split, early stopping
on a training and on a validation value, the best epoch's weights, and
every augmentation on images, clips and series, and quantization-aware
training (quantize = int8: observers, fake-quantized values and kernels,
a batchnorm folded, an add rescaled, a depthwise kernel).  Each case trains from
the same starting weights, --no-shuffle; the epoch lines must agree (each
number to 1e-4 relative, the learning rates to 1e-9), so must the lines
after them (early stopping, the best epoch), and the saved weights (1e-4
relative plus 1e-5 absolute); with --obj the LLVM backend's build too.

    compare_train_features.py --cnngen BIN --oracle cnnref_train.py
                              --runtime-include DIR --runtime-lib DIR
                              [--cc gcc] [--cflags -O2] [--sanitize]
"""
import argparse
import os
import random
import shlex
import sys
import tempfile

from e2e_common import (add_build_arguments, build_object_with_runtime, build_with_runtime,
                        read_safetensors, run)

IMAGE = '''input [6, 6, 1]
conv2d(3, 3, activation=relu)
flatten
dense(3, activation=softmax)
'''
CLIP = '''input [3, 5, 5, 2]
conv3d(2, 2, activation=relu)
global_avgpool
dense(3, activation=softmax)
'''
SERIES = '''input [8, 1]
conv1d(3, 3, activation=tanh)
flatten
dense(1)
'''
# quantize = int8: regression, whose output is observed but not
# fake-quantized; and a block with each kind of int8 node
QSERIES = '''input [8, 1]
conv1d(3, 3, activation=relu)
flatten
dense(1)
'''
QBLOCK = '''input [6, 6, 2]
stem: conv2d(4, 3, padding=same, activation=relu)
conv2d(4, 3, padding=same, bias=false)
batchnorm
relu
add(stem)
maxpool2d(2)
depthwise_conv2d(2, multiplier=2)
flatten
dense(3)
softmax
'''

# name: (layers, train block lines, input kind, extra train options)
CASES = {
    'step_decay_sgd': (IMAGE, 'optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=0.01)\n'
                              'schedule = step_decay(every=2, gamma=0.5)', 'image', []),
    'step_decay_per_step': (IMAGE, 'optimizer = sgd(lr=0.05)\n'
                                   'schedule = step_decay(every=3, gamma=0.7, per=step)', 'image', []),
    'exponential_adam_decay': (IMAGE, 'optimizer = adam(lr=0.01, weight_decay=0.1)\n'
                                      'schedule = exponential(gamma=0.8)', 'image', []),
    'exponential_per_step': (SERIES, 'optimizer = adam(lr=0.01)\n'
                                     'schedule = exponential(0.95, per=step)', 'series', []),
    'cosine_length': (IMAGE, 'optimizer = adamw(lr=0.01)\nschedule = cosine(length=3, min_lr=0.001)',
                      'image', []),
    'cosine_warmup_steps': (IMAGE, 'optimizer = adam(lr=0.01)\nschedule = cosine(per=step)\n'
                                   'warmup = linear(4, start_factor=0.1, per=step)', 'image', []),
    'one_cycle': (IMAGE, 'optimizer = adamw(lr=0.01, weight_decay=0.1)\n'
                         'schedule = one_cycle(max_lr=0.02, pct_start=0.25)', 'image', []),
    'one_cycle_warmup': (SERIES, 'optimizer = sgd(lr=0.02, momentum=0.5, nesterov=true)\n'
                                 'schedule = one_cycle()\nwarmup = linear(3, per=step)', 'series', []),
    'warmup_alone': (SERIES, 'optimizer = sgd(lr=0.05)\nwarmup = 3', 'series', []),
    'validation_split': (IMAGE, 'optimizer = adam(lr=0.01)\nvalidation_split = 0.3\n'
                                'metrics = [accuracy]', 'image', []),
    'validation_data': (SERIES, 'optimizer = adam(lr=0.01)\nmetrics = [mae, rmse]\nmonitor = val_mae',
                        'series', ['--val', '{val}']),
    'early_stopping_val': (IMAGE, 'optimizer = adam(lr=0.05)\nvalidation_split = 0.4\n'
                                  'early_stopping = 1\nmetrics = [accuracy]', 'image', []),
    'early_stopping_loss': (IMAGE, 'optimizer = sgd(lr=5)\nearly_stopping = 1\n'
                                   'monitor = loss\nmetrics = [accuracy]', 'image', []),
    'early_stopping_accuracy': (IMAGE, 'optimizer = sgd(lr=2)\nvalidation_split = 0.3\n'
                                       'early_stopping = 2\nmonitor = val_accuracy\n'
                                       'metrics = [accuracy]', 'image', []),
    'augment_image': (IMAGE, 'optimizer = adam(lr=0.01)\naugment = [shift(1), flip, crop(2)]',
                      'image', []),
    'augment_clip': (CLIP, 'optimizer = adam(lr=0.01)\naugment = [flip, shift(2)]\n'
                           'schedule = cosine()', 'clip', []),
    'augment_series': (SERIES, 'optimizer = adam(lr=0.01)\naugment = [noise(0.1), scale(0.2)]',
                       'series', []),
    'quantize_image': (IMAGE, 'optimizer = adam(lr=0.01)\nquantize = int8\nmetrics = [accuracy]',
                       'image', []),
    'quantize_series': (QSERIES, 'optimizer = sgd(lr=0.05, momentum=0.9)\nquantize = int8',
                        'series', []),
    'quantize_clip': (CLIP, 'optimizer = adam(lr=0.01)\nquantize = int8', 'clip', []),
    'quantize_block': (QBLOCK, 'optimizer = adam(lr=0.01)\nquantize = int8\n'
                               'validation_split = 0.3', 'image2', []),
    # from a float model's weights, without observers (they start unseen)
    'quantize_image_from_float': (IMAGE, 'optimizer = sgd(lr=0.1)\nquantize = int8', 'image', []),
}
SIZES = {'image': (36, 3), 'image2': (72, 3), 'clip': (150, 3), 'series': (8, None)}


def data_file(path, kind, count, rng):
    inputs, classes = SIZES[kind]
    with open(path, 'w') as f:
        for _ in range(count):
            x = [rng.uniform(-1, 1) for _ in range(inputs)]
            target = rng.randrange(classes) if classes else rng.uniform(-1, 1)
            f.write(','.join(f'{v:.4f}' for v in x + [target]) + '\n')


def words(line):
    return line.replace(',', ' ').replace('(', ' ').replace(')', ' ').split()


def lines_agree(ours, ref):
    """Each line's words equal, numbers within 1e-4 (lr: 1e-9) relative."""
    a, b = ours.strip().split('\n'), ref.strip().split('\n')
    if len(a) != len(b):
        return f'{len(a)} lines against the reference\'s {len(b)}'
    for la, lb in zip(a, b):
        wa, wb = words(la), words(lb)
        if len(wa) != len(wb):
            return f'line differs:\n  ours: {la}\n  ref:  {lb}'
        previous = ''
        for x, y in zip(wa, wb):
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                if x != y:
                    return f'line differs:\n  ours: {la}\n  ref:  {lb}'
                previous = x
                continue
            tolerance = 1e-9 if previous == 'lr:' else 1e-4
            if abs(fx - fy) > tolerance * max(abs(fy), 1e-3):
                return f'{previous} {x} against {y}:\n  ours: {la}\n  ref:  {lb}'
    return None


def weights_agree(ours, ref):
    a, b = read_safetensors(ours), read_safetensors(ref)
    if a.keys() != b.keys():
        return 'the weights files name different tensors'
    for name in a:
        for x, y in zip(a[name], b[name]):
            if abs(x - y) > 1e-4 * abs(y) + 1e-5:
                return f'{name}: {x} against {y}'
    return None


def model_text(name, layers, block):
    body = '\n'.join('  ' + line for line in block.split('\n'))
    return f'model {name}\n{layers}train {{\n  batch = 8\n  epochs = 5\n{body}\n}}\n'


def main():
    ap = argparse.ArgumentParser()
    add_build_arguments(ap, '-O2')
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = random.Random(15)
        jobs = []
        for name, (layers, block, kind, extra) in CASES.items():
            d = os.path.join(tmp, name)
            os.mkdir(d)
            model = os.path.join(d, 'm.cnn')
            with open(model, 'w') as f:
                f.write(model_text(name, layers, block))
            with open(os.path.join(d, 'float.cnn'), 'w') as f:
                f.write(model_text(name, layers, block.replace('quantize = int8', '')))
            data_file(os.path.join(d, 'd.csv'), kind, 29, rng)
            data_file(os.path.join(d, 'v.csv'), kind, 11, rng)
            problem = build_with_runtime(args, model, os.path.join(d, 'm.c'), os.path.join(d, 'm'))
            if not problem and args.obj:
                problem = build_object_with_runtime(args, model, os.path.join(d, 'm.o'),
                                                    os.path.join(d, 'mo'))
            if problem:
                failures.append(f'{name}: {problem}')
                continue
            options = [o.format(val=os.path.join(d, 'v.csv')) for o in extra]
            jobs.append((name, d, model, options))
        # the reference, all in one process: init, then train
        batch = []
        for name, d, model, options in jobs:
            j = lambda f: os.path.join(d, f)  # noqa: E731
            start = j('float.cnn') if name.endswith('_from_float') else model
            batch.append(shlex.join([j('i.out'), j('i.err'), 'init', start, '--seed', '3',
                                     '--out', j('w0.st')]))
            batch.append(shlex.join([j('r.out'), j('r.err'), 'train', model, '--data', j('d.csv'),
                                     '--init', j('w0.st'), '--no-shuffle', '--save', j('ref.st')]
                                    + options))
        ref = run(['/usr/bin/python3', args.oracle, 'batch'], input='\n'.join(batch) + '\n')
        codes = ref.stdout.split()
        for k, (name, d, model, options) in enumerate(jobs):
            j = lambda f: os.path.join(d, f)  # noqa: E731
            if codes[2 * k:2 * k + 2] != ['0', '0']:
                failures.append(f'{name}: the reference failed: {open(j("r.err")).read()}')
                continue
            for program in ['m', 'mo'] if args.obj else ['m']:
                ours = run([j(program), 'train', '--data', j('d.csv'), '--init', j('w0.st'),
                            '--no-shuffle', '--save', j('ours.st')] + options)
                if ours.returncode != 0:
                    problem = f'exit {ours.returncode}: {ours.stderr}'
                else:
                    problem = lines_agree(ours.stdout, open(j('r.out')).read()) or \
                        weights_agree(j('ours.st'), j('ref.st'))
                build = 'C' if program == 'm' else 'LLVM object'
                if problem:
                    failures.append(f'{name} ({build}): {problem}')
                else:
                    print(f'{name} ({build}): agrees ({len(ours.stdout.splitlines())} lines)')
    for f in failures:
        print('FAIL', f)
    print(f'{len(CASES)} cases, {len(failures)} failures against the reference')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
