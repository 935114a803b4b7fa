#!/usr/bin/python3
"""The int8 accuracy table (issue 17): each model's float accuracy beside
its int8 predictors', post-training and after quantization-aware
training, on held-out data.

    accuracy.py CNNGEN RUNTIME_INCLUDE LIBCNNRT.a WORK_DIR [--quick-epochs N]
                [--small-weights W.safetensors] [--models quick,small,temperature]

- Fashion-MNIST (Debian's dataset-fashion-mnist): examples/fashion's
  quick.cnn (trained here, 3 epochs) and small.cnn (trained here, 20
  epochs, unless --small-weights gives its weights): test accuracy of the
  float program and of the int8 predictor side by side (eval --int8),
  calibrated on the 60,000 training images (min-max, and the middle
  99.99%).
- The temperature example (python3-vega-datasets' Seattle series): MAE on
  the last 20% of the days, the float predictor and the int8 one
  calibrated on the first 80%.

Quantization-aware training fine-tunes each float model from its
weights: its own train block with quantize = int8, without a schedule,
at a tenth of its learning rate (--qat-epochs: 1 for Fashion-MNIST, 30
for the temperature model, whose early stopping keeps the best); its
int8 predictor takes the observers' ranges from the weights it saves.
The last column fine-tunes the float model the same way without
quantization: what the extra epochs alone give.

Prints a Markdown table (docs/int8.md keeps the last one).  Models that
already have weights in WORK_DIR are not trained again."""
import argparse
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.dirname(HERE)
FASHION = '/usr/share/datasets/fashion-mnist'
SEATTLE = '/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv'
WINDOW = 10


def sh(cmd, **kw):
    print('+ ' + ' '.join(shlex.quote(c) for c in cmd), flush=True)
    r = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit(f'failed ({r.returncode}): {r.stderr[-2000:]}')
    return r.stdout


def float_program(args, model, name):
    c = os.path.join(args.work, name + '.c')
    exe = os.path.join(args.work, name)
    sh([args.cnngen, model, '--main', '-o', c])
    sh(['cc', '-O2', '-fopenmp', c, '-I', args.include, args.lib, '-lz', '-lm', '-o', exe])
    return exe


def int8_program(args, model, weights, ranges, name):
    c = os.path.join(args.work, name + '.c')
    exe = os.path.join(args.work, name)
    sh([args.cnngen, model, '--weights', weights, '--quantize', ranges, '--main', '-o', c])
    sh(['cc', '-O2', c, '-lm', '-o', exe])
    return exe


def finetune_model(args, model, name, quantize):
    """The model as fine-tuning trains it: its train block without a
    schedule or warmup, at a tenth of its learning rate (as the TensorFlow
    Model Optimization guide fine-tunes), with quantize = int8 or
    without; (its path, its program)."""
    with open(model) as f:
        lines = f.read().split('\n')
    lines = [line for line in lines if not re.match(r'\s*(schedule|warmup)\s*=', line)]
    text = re.sub(r'\blr=([0-9.eE+-]+)', lambda m: f'lr={float(m.group(1)) / 10:g}',
                  '\n'.join(lines))
    if quantize:
        text = text.replace('train {\n', 'train {\n  quantize = int8\n', 1)
    path = os.path.join(args.work, name + '.cnn')
    with open(path, 'w') as f:
        f.write(text)
    return path, float_program(args, path, name)


def finetuned(args, model, name, data, weights, epochs, quantize):
    """Fine-tuned from the float weights, with quantization-aware training
    or (to see what the epochs alone give) without: (the model, its
    program, the weights)."""
    name += '_qat' if quantize else '_tuned'
    path, prog = finetune_model(args, model, name, quantize)
    out = os.path.join(args.work, name + '.safetensors')
    if not os.path.exists(out):
        sh([prog, 'train', '--data', data, '--init', weights, '--save', out, '--epochs',
            str(epochs)])
    return path, prog, out


def predictions(exe, samples):
    return [[float(v) for v in line.split(',')]
            for line in sh([exe, 'predict', samples]).splitlines()]


def fashion_rows(args, name, epochs, weights):
    model = os.path.join(EXAMPLES, 'fashion', name + '.cnn')
    prog = float_program(args, model, name)
    weights = weights or os.path.join(args.work, name + '.safetensors')
    if not os.path.exists(weights):
        sh([prog, 'train', '--data', f'idx:{FASHION}/train', '--save', weights] +
           (['--epochs', str(epochs)] if epochs else []))
    test = f'idx:{FASHION}/t10k'
    float_acc = float(sh([prog, 'eval', '--data', test, '--weights', weights])
                      .split('accuracy: ')[1].split()[0])
    ints = []
    for method, extra in (('min-max', []), ('99.99%', ['--percentile', '99.99'])):
        ranges = os.path.join(args.work, f'{name}-{method[:2]}.ranges.safetensors')
        sh([prog, 'calibrate', '--data', f'idx:{FASHION}/train', '--weights', weights,
            '--save', ranges] + extra)
        q = int8_program(args, model, weights, ranges, f'{name}_int8')
        ints.append(100 * int8_accuracy(prog, test, weights, q))
    data, epochs = f'idx:{FASHION}/train', args.qat_epochs or 1
    qat, qat_prog, trained = finetuned(args, model, name, data, weights, epochs, True)
    q = int8_program(args, qat, trained, trained, f'{name}_qat_int8')
    ints.append(100 * int8_accuracy(qat_prog, test, trained, q))
    _, tuned_prog, tuned = finetuned(args, model, name, data, weights, epochs, False)
    tuned_acc = float(sh([tuned_prog, 'eval', '--data', test, '--weights', tuned])
                      .split('accuracy: ')[1].split()[0])
    return [(f'fashion {name}.cnn', 'test accuracy (%)', 100 * float_acc, ints, 100 * tuned_acc)]


def int8_accuracy(prog, data, weights, q):
    """The int8 predictor q's accuracy, from eval --int8 (beside the float
    model's, which it prints first)."""
    out = sh([prog, 'eval', '--data', data, '--weights', weights, '--int8', q])
    return float(out.split('int8_accuracy: ')[1].split()[0])


def temperature_rows(args):
    model = os.path.join(EXAMPLES, 'temperature', 'temperature.cnn')
    with open(SEATTLE) as f:
        days = [float(line.split(',')[2]) for line in f.read().splitlines()[1:]]
    split = len(days) * 8 // 10
    train = os.path.join(args.work, 'temp_train.csv')
    with open(train, 'w') as f:
        f.write('temp_max\n' + ''.join(f'{v}\n' for v in days[:split]))
    test = days[split - WINDOW:]
    windows = os.path.join(args.work, 'temp_windows.txt')
    with open(windows, 'w') as f:
        for k in range(len(test) - WINDOW):
            f.write(','.join(str(v) for v in test[k:k + WINDOW]) + '\n')
    truth = test[WINDOW:]
    prog = float_program(args, model, 'temperature')
    weights = os.path.join(args.work, 'temperature.safetensors')
    if not os.path.exists(weights):
        sh([prog, 'train', '--data', f'series:{train}:temp_max:{WINDOW}', '--save', weights])
    alone = os.path.join(args.work, 'temperature_alone')
    sh([args.cnngen, model, '--weights', weights, '--main', '-o', alone + '.c'])
    sh(['cc', '-O2', alone + '.c', '-lm', '-o', alone])

    def mae(rows):
        return sum(abs(r[0] - y) for r, y in zip(rows, truth)) / len(truth)

    float_mae = mae(predictions(alone, windows))
    ints = []
    data = f'series:{train}:temp_max:{WINDOW}'
    for method, extra in (('min-max', []), ('99.99%', ['--percentile', '99.99'])):
        ranges = os.path.join(args.work, f'temperature-{method[:2]}.ranges.safetensors')
        sh([prog, 'calibrate', '--data', data, '--weights', weights, '--save', ranges] + extra)
        q = int8_program(args, model, weights, ranges, 'temperature_int8')
        ints.append(mae(predictions(q, windows)))
    epochs = args.qat_epochs or 30
    qat, _, trained = finetuned(args, model, 'temperature', data, weights, epochs, True)
    q = int8_program(args, qat, trained, trained, 'temperature_qat_int8')
    ints.append(mae(predictions(q, windows)))
    tuned_model, _, tuned = finetuned(args, model, 'temperature', data, weights, epochs, False)
    sh([args.cnngen, tuned_model, '--weights', tuned, '--main', '-o', alone + '_tuned.c'])
    sh(['cc', '-O2', alone + '_tuned.c', '-lm', '-o', alone + '_tuned'])
    return [('temperature', 'test MAE (C)', float_mae, ints,
             mae(predictions(alone + '_tuned', windows)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cnngen')
    ap.add_argument('include')
    ap.add_argument('lib')
    ap.add_argument('work')
    ap.add_argument('--quick-epochs', type=int, default=3)
    ap.add_argument('--small-weights')
    ap.add_argument('--qat-epochs', type=int,
                    help='epochs of quantization-aware fine-tuning (default: 1 for '
                         'Fashion-MNIST, 30 for the temperature model)')
    ap.add_argument('--models', default='quick,small,temperature',
                    help='which of quick, small and temperature (comma-separated)')
    args = ap.parse_args()
    args.cnngen, args.lib = os.path.abspath(args.cnngen), os.path.abspath(args.lib)
    os.makedirs(args.work, exist_ok=True)
    rows, models = [], args.models.split(',')
    if os.path.exists(f'{FASHION}/t10k-images-idx3-ubyte.gz'):
        if 'quick' in models:
            rows += fashion_rows(args, 'quick', args.quick_epochs, None)
        if 'small' in models:
            rows += fashion_rows(args, 'small', None, args.small_weights)
    else:
        print(f'(no {FASHION}: apt-get install dataset-fashion-mnist)')
    if os.path.exists(SEATTLE) and 'temperature' in models:
        rows += temperature_rows(args)
    elif not os.path.exists(SEATTLE):
        print(f'(no {SEATTLE}: apt-get install python3-vega-datasets)')
    print('\n| model | measure | float | int8, calibrated min-max | int8, calibrated 99.99% '
          '| int8 after QAT | float, as long again without QAT |')
    print('|---|---|---:|---:|---:|---:|---:|')
    for model, measure, f, ints, tuned in rows:
        ints = ints + [tuned]
        cells = []
        for q in ints:
            change = f'{q - f:+.2f} points' if 'accuracy' in measure else \
                f'{100 * (q - f) / f:+.2f}%'
            cells.append(f'{q:.2f} ({change})' if 'accuracy' in measure else
                         f'{q:.4f} ({change})')
        value = f'{f:.2f}' if 'accuracy' in measure else f'{f:.4f}'
        print(f'| {model} | {measure} | {value} | {" | ".join(cells)} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
