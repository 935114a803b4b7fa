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
import time
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


def generate(args, model, work, emit, options=()):
    """cnngen MODEL as bench_model.c, or .o through the LLVM backend."""
    src = os.path.join(work, 'bench_model.' + ('c' if emit == 'c' else 'o'))
    for stale in ('bench_model.c', 'bench_model.o'):
        if os.path.exists(os.path.join(work, stale)):
            os.remove(os.path.join(work, stale))
    run([args.cnngen, model, '--prefix', 'bench_model', '--emit=' + emit, '-o', src] + list(options))
    return src


def build(args, name, work, emit='c'):
    model = os.path.join(HERE, f'{name}.cnn')
    src = generate(args, model, work, emit, ['--no-train'])
    exe = os.path.join(work, f'{name}_{emit}_bench')
    run([args.cc] + shlex.split(args.cflags) + [src, os.path.join(HERE, 'bench_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    summary = json.loads(run([args.cnngen, model, '--summary', '--json']))
    return exe, int(summary['flops'])


CLASSES = {'fashion': 10, 'lenet': 10, 'video3d': 4, 'seed42': 0}


def build_train(args, name, work, emit='c'):
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
    src = generate(args, model, work, emit)
    exe = os.path.join(work, f'{name}_train_{emit}_bench')
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


def seconds(cmd):
    start = time.perf_counter()
    run(cmd)
    return time.perf_counter() - start


def object_build_time(args):
    """The time to an object for bench/fashion.cnn: cnngen --emit=obj
    against cnngen --emit=c then gcc -O2 -c, with and without training."""
    model = os.path.join(HERE, 'fashion.cnn')
    include = os.path.join(ROOT, 'runtime', 'include')
    print('\ntime to an object file for bench/fashion.cnn (seconds, best of 3):')
    with tempfile.TemporaryDirectory() as work:
        for label, options in (('with training code', []), ('--no-train', ['--no-train'])):
            def via_c():
                return (seconds([args.cnngen, model, '-o', os.path.join(work, 'f.c')] + options) +
                        seconds(['gcc', '-O2', '-c', os.path.join(work, 'f.c'), '-I', include,
                                 '-o', os.path.join(work, 'fc.o')]))
            c = min(via_c() for _ in range(3))
            obj = min(seconds([args.cnngen, model, '--emit=obj', '-o', os.path.join(work, 'f.o')] +
                              options) for _ in range(3))
            print(f'  {label:18}: --emit=obj {obj:6.2f} | --emit=c + gcc -O2 -c {c:6.2f} '
                  f'| ratio {obj / c:5.2f}')


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
    rows, obj_rows = [], []
    llvm = 'LLVM backend: LLVM' in run([args.cnngen, '--version'])
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(','):
            exe, flops = build(args, name, work)
            if llvm:
                obj_exe, _ = build(args, name, work, 'obj')
            for batch in [int(b) for b in args.batches.split(',')]:
                ours = json.loads(run([exe, str(batch), str(args.min_time)]))
                if llvm:
                    obj = json.loads(run([obj_exe, str(batch), str(args.min_time)]))
                    obj_rows.append((name, batch, ours['ms_median'], obj['ms_median']))
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
    if llvm:
        print('\nthe LLVM backend: --emit=obj against the same code as C built by '
              f'{args.cc} {args.cflags}')
        print('model    batch    C ms     obj ms   C/obj (above 1: the object is faster; '
              'target above 1/1.2 = 0.83)')
        for name, batch, c_ms, obj_ms in obj_rows:
            print(f'{name:8} {batch:5} {c_ms:9.5f} {obj_ms:9.5f} {c_ms / obj_ms:6.2f}x')
        object_build_time(args)
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
            if llvm:
                exe = build_train(args, name, work, 'obj')
                obj = 64e3 / json.loads(run([exe, str(CLASSES[name]), str(args.min_time)]))['ms_median']
                print(f'{"":8} --emit=obj, 1 thread: {obj:7.0f} samples/s, '
                      f'{obj / ours[0]:5.2f}x the C build (the object has no OpenMP)', flush=True)


if __name__ == '__main__':
    main()
