#!/usr/bin/python3
"""cnngen against PyTorch on the reference models, in the same run.

    run_bench.py [--models lenet,fashion,video3d,seed42] [--cnngen build/cnngen]
                 [--cc gcc] [--cflags "-O3 -march=native"] [--min-time 1]

For every model in bench/NAME.cnn (the peers' models, written in .cnn):
cnngen compiles it (--no-train), the C compiler builds it with
bench_driver.c, and the driver times batch 1 (latency) and batch 64
(throughput) at one thread; then bench/peers/torch_peers.py times
PyTorch's inference variants on the same model, batch and thread count,
and the best PyTorch median is the reference.  Prints a table of times,
GFLOP/s (2 per multiply-add of conv and dense layers, the peers' count)
and the ratio PyTorch time / cnngen time (above 1: cnngen is faster).

Then training (--train-models): a step of batch 64 (forward, loss,
backward, SGD with momentum 0.9, as the peers' train mode does) timed by
bench_train_driver.c, in samples/s, against torch_peers.py --mode train at
one and at two threads.  The classifiers train with crossentropy from the
logits (the .cnn's last dense layer gets activation=softmax, which the
loss folds away, as PyTorch's CrossEntropyLoss on logits does).  cnngen's
code is built with -fopenmp and run with OMP_NUM_THREADS=1 and 2.
"""
import re
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f'run_bench: {" ".join(cmd)} failed:\n{p.stderr}')
    return p.stdout


def build(args, name, work):
    model = os.path.join(HERE, f'{name}.cnn')
    src = os.path.join(work, 'bench_model.c')
    run([args.cnngen, model, '--no-train', '--prefix', 'bench_model', '-o', src])
    exe = os.path.join(work, f'{name}_bench')
    run([args.cc] + shlex.split(args.cflags) + [src, os.path.join(HERE, 'bench_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    summary = json.loads(run([args.cnngen, model, '--summary', '--json']))
    return exe, int(summary['flops'])


CLASSES = {'fashion': 10, 'lenet': 10, 'video3d': 4, 'seed42': 0}


def build_train(args, name, work):
    """The bench model as the peers train it: SGD(0.01, 0.9), batch 64,
    crossentropy on the logits for a classifier, mse otherwise."""
    with open(os.path.join(HERE, f'{name}.cnn')) as f:
        text = f.read()
    text = re.sub(r'\ntrain\s*\{.*?\}', '', text, flags=re.S)
    if CLASSES[name]:
        k = CLASSES[name]
        text = re.sub(rf'dense\({k}\)\s*$', f'dense({k}, activation=softmax)', text.rstrip()) + '\n'
    text += ('train {\n  loss = %s\n  optimizer = sgd(lr=0.01, momentum=0.9)\n  batch = 64\n}\n'
             % ('crossentropy' if CLASSES[name] else 'mse'))
    model = os.path.join(work, f'{name}_train.cnn')
    with open(model, 'w') as f:
        f.write(text)
    src = os.path.join(work, 'bench_model.c')
    run([args.cnngen, model, '--prefix', 'bench_model', '-o', src])
    exe = os.path.join(work, f'{name}_train_bench')
    run([args.cc] + shlex.split(args.cflags) + ['-fopenmp', src, os.path.join(HERE, 'bench_train_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    return exe


def torch_train(args, name, threads):
    out = run(['/usr/bin/python3', os.path.join(HERE, 'peers', 'torch_peers.py'), '--model', name,
               '--mode', 'train', '--batch', '64', '--threads', str(threads),
               '--min-time', str(args.min_time)])
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
    return min(r['ms_median'] for r in records)


def torch_best(args, name, batch):
    out = run(['/usr/bin/python3', os.path.join(HERE, 'peers', 'torch_peers.py'), '--model', name,
               '--mode', 'infer', '--batch', str(batch), '--threads', '1',
               '--min-time', str(args.min_time)])
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
    best = min(records, key=lambda r: r['ms_median'])
    return best['ms_median'], best['variant']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', default='lenet,fashion,video3d,seed42')
    ap.add_argument('--cnngen', default=os.path.join(ROOT, 'build', 'cnngen'))
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--cflags', default='-O3 -march=native -mprefer-vector-width=512')
    ap.add_argument('--min-time', type=float, default=1.0)
    ap.add_argument('--batches', default='1,64')
    ap.add_argument('--train-models', default='fashion,lenet')
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(','):
            exe, flops = build(args, name, work)
            for batch in [int(b) for b in args.batches.split(',')]:
                ours = json.loads(run([exe, str(batch), str(args.min_time)]))
                torch_ms, variant = torch_best(args, name, batch)
                ms = ours['ms_median']
                rows.append((name, batch, ms, flops * batch / ms / 1e6, torch_ms, variant,
                             flops * batch / torch_ms / 1e6, torch_ms / ms))
                r = rows[-1]
                print(f'{r[0]:8} batch {r[1]:3}: cnngen {r[2]:9.4f} ms {r[3]:7.1f} GF/s | '
                      f'pytorch {r[5]} {r[4]:9.4f} ms {r[6]:7.1f} GF/s | ratio {r[7]:5.2f}x',
                      flush=True)
    print('\nmodel    batch  cnngen ms   GF/s   pytorch ms   GF/s  speedup (pytorch/cnngen)')
    for r in rows:
        print(f'{r[0]:8} {r[1]:5} {r[2]:10.4f} {r[3]:6.1f} {r[4]:12.4f} {r[6]:6.1f}  {r[7]:6.2f}x')
    print(f'(one thread each; {args.cc} {args.cflags}; FLOPs: 2 per multiply-add of conv and '
          'dense layers)')
    if not args.train_models:
        return
    print('\ntraining, batch 64: samples/s (higher is better)')
    with tempfile.TemporaryDirectory() as work:
        for name in args.train_models.split(','):
            exe = build_train(args, name, work)
            ours = [64e3 / json.loads(run([exe, str(CLASSES[name]), str(args.min_time)],
                                          env=dict(os.environ, OMP_NUM_THREADS=str(th))))['ms_median']
                    for th in (1, 2)]
            t1, t2 = (64e3 / torch_train(args, name, th) for th in (1, 2))
            print(f'{name:8} 1 thread: cnngen {ours[0]:7.0f} pytorch {t1:7.0f} ratio {ours[0] / t1:5.2f}x'
                  f' | 2 threads: cnngen {ours[1]:7.0f} pytorch {t2:7.0f} ratio {ours[1] / t2:5.2f}x',
                  flush=True)


if __name__ == '__main__':
    main()
