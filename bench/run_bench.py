#!/usr/bin/python3
"""cnngen against the machine's peak and PyTorch on the reference models,
in the same run.

    run_bench.py [--models lenet,fashion,video3d,seed42] [--cnngen build/cnngen]
                 [--cc gcc] [--flags "-O2;-O3 -march=native"] [--min-time 1]

First the machine: its CPU and one core's single-precision FMA peak with
512-bit and 256-bit vectors (bench/peers/fma_peak.c).  Then for every
model in bench/NAME.cnn (the peers' models, written in .cnn): cnngen
compiles it (--no-train, the default --vector-width auto), the C compiler
builds it with bench_driver.c once per set of flags (the README's plain
-O2, and -O3 -march=native; both with -fopenmp), and the driver times
batch 1 and batch 64 on one thread, and batch 64 on every core
(OMP_NUM_THREADS); bench/peers/torch_peers.py times PyTorch's inference
variants on the same model, batch and thread count, and the best PyTorch
median is the reference.  Each figure comes with GFLOP/s (2 per
multiply-add of conv and dense layers, the peers' count) and its share of
the peak of the clone that ran (512-bit for avx512, 256-bit otherwise).
Each cnngen figure is the fastest of --rounds rounds (default 3), the
flag sets taking turns within a round, a round's figure the driver's
median: on a shared machine a busy neighbour slows whole stretches of a
run, and one pass gave whichever build ran then a figure 20-40% too slow.

Then the int8 predictors (--int8-models, issue 17): each model's int8
predictor (cnngen --weights W --quantize R: the reference's init and its
calibrate on 64 random samples) against its float one with the same
weights, batch 1 and 64, one thread, each set of flags, and the ratio.

Then training (--train-models): a step of batch 64 (forward, loss,
backward, SGD with momentum 0.9, as the peers' train mode does) timed by
bench_train_driver.c, in samples/s and as a share of the peak (the step
counted as 3x the forward FLOPs), under both sets of flags, against
torch_peers.py --mode train at one and at every thread.  The classifiers
train with crossentropy from the logits (the .cnn's last dense layer gets
activation=softmax, which the loss folds away, as PyTorch's
CrossEntropyLoss on logits does).
"""
import re
import argparse
import time
import json
import os
import platform
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


def build(args, name, work, emit='c', cflags=None, tag='', options=()):
    model = os.path.join(HERE, f'{name}.cnn')
    src = generate(args, model, work, emit, ['--no-train'] + list(options))
    exe = os.path.join(work, f'{name}_{emit}{tag}_bench')
    cflags = args.cflags if cflags is None else cflags
    run([args.cc] + shlex.split(cflags) + ['-fopenmp', src, os.path.join(HERE, 'bench_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    summary = json.loads(run([args.cnngen, model, '--summary', '--json']))
    return exe, int(summary['flops'])


CLASSES = {'fashion': 10, 'lenet': 10, 'video3d': 4, 'seed42': 0}


def build_train(args, name, work, emit='c', cflags=None, tag=''):
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
    exe = os.path.join(work, f'{name}_train_{emit}{tag}_bench')
    cflags = args.cflags if cflags is None else cflags
    run([args.cc] + shlex.split(cflags) + ['-fopenmp', src, os.path.join(HERE, 'bench_train_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    return exe


def torch_train(args, name, threads):
    out = run(['/usr/bin/python3', os.path.join(HERE, 'peers', 'torch_peers.py'), '--model', name,
               '--mode', 'train', '--batch', '64', '--threads', str(threads),
               '--min-time', str(args.min_time)])
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
    return min(r['ms_median'] for r in records)


def torch_best(args, name, batch, threads=1):
    out = run(['/usr/bin/python3', os.path.join(HERE, 'peers', 'torch_peers.py'), '--model', name,
               '--mode', 'infer', '--batch', str(batch), '--threads', str(threads),
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


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            return next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')),
                        'unknown CPU')
    except OSError:
        return 'unknown CPU'


def fma_peak(work, peaks=None):
    """One core's FMA peak in GFLOP/s: {'avx512': x, 'avx2': y} (best of 7),
    or the better of that and `peaks`, an earlier measurement: the peak is
    measured again before each further model and before training, and the
    shares are against the best of the run (a busy neighbour in one
    measurement made a peak 25% low, and shares above 100%)."""
    exe = os.path.join(work, 'fma_peak')
    if not os.path.exists(exe):
        run(['gcc', '-O3', '-march=native', '-fopenmp', os.path.join(HERE, 'peers', 'fma_peak.c'),
             '-o', exe])
    peaks = dict(peaks or {})
    for line in run([exe, '1']).splitlines():
        r = json.loads(line)
        if r.get('bench') == 'fma_peak':
            peaks[r['isa']] = max(peaks.get(r['isa'], 0.0), r['gflops_best'])
    return peaks


def peaks_text(peaks):
    return ', '.join(f'{isa} {g:.1f} GFLOP/s' for isa, g in sorted(peaks.items()))


def share(gflops, isa, peaks, threads=1):
    """GFLOP/s as a share of the peak of the vectors the clone uses."""
    peak = peaks.get('avx512' if isa == 'avx512' else 'avx2') or max(peaks.values())
    return 100.0 * gflops / (peak * threads)


def time_inference(exe, batch, threads, args):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return json.loads(run([exe, str(batch), str(args.min_time)], env=env))


def fastest_of_rounds(args, timers):
    """Each timer's fastest result (by its median) over args.rounds rounds,
    the timers taking turns within a round."""
    best = [None] * len(timers)
    for _ in range(args.rounds):
        for k, timer in enumerate(timers):
            r = timer()
            if best[k] is None or r['ms_median'] < best[k]['ms_median']:
                best[k] = r
    return best


def profile_agrees(args, name, work, flags, driver_ms):
    """cnngen --profile's figures beside the driver's: bench_driver built
    against the profiled code with the README's flags times batch 1 and
    prints the profile of the same calls.  The profile's whole-call GFLOP/s
    against the driver's timing of the same build (they measure the same
    calls), and against the build without the profile (the timers' cost)."""
    src = generate(args, os.path.join(HERE, f'{name}.cnn'), work, 'c', ['--no-train', '--profile'])
    exe = os.path.join(work, f'{name}_profile_bench')
    run([args.cc] + shlex.split(flags) + ['-DBENCH_PROFILE', src, os.path.join(HERE, 'bench_driver.c'),
        '-I', work, '-I', os.path.join(ROOT, 'runtime', 'include'), '-o', exe,
        os.path.join(os.path.dirname(args.cnngen), 'libcnnrt.a'), '-lz', '-lm'])
    p = subprocess.run([exe, '1', str(args.min_time)], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    whole = re.search(r'^\(whole calls\)\s+\d+\s+[\d.]+\s+[\d.]+%\s+([\d.]+)\s+([\d.]+)%',
                      p.stderr, re.M)
    if p.returncode != 0 or not whole:
        print(f'  {name}: the profiled driver failed:\n{p.stderr[-1000:]}')
        return
    flops = json.loads(run([args.cnngen, os.path.join(HERE, f'{name}.cnn'), '--summary',
                            '--json']))['flops']
    profiled = flops / json.loads(p.stdout)['ms_median'] / 1e6
    plain = flops / driver_ms / 1e6
    gflops = float(whole.group(1))
    print(f'{name:8} profile {gflops:7.1f} GF/s ({whole.group(2)}% of its peak) | the driver on '
          f'the same build {profiled:7.1f} GF/s: {gflops / profiled:4.2f}x | without --profile '
          f'{plain:7.1f} GF/s: the timers cost {100 * (1 - profiled / plain):4.1f}%')
    print('    ' + p.stderr.strip().replace('\n', '\n    '))


def int8_artifacts(name, work):
    """Weights (the reference's init) and calibrated ranges (the
    reference's calibrate on 64 random samples in [0, 1)) for bench/NAME."""
    model = os.path.join(HERE, f'{name}.cnn')
    oracle = os.path.join(ROOT, 'tests', 'reference', 'cnnref_quant.py')
    weights, ranges = (os.path.join(work, f'{name}.{k}.safetensors') for k in ('w', 'r'))
    run(['/usr/bin/python3', oracle, 'init', model, '--seed', '1', '--out', weights])
    summary = json.loads(run(['/usr/bin/python3', oracle, 'summary', '--json', model]))
    inputs = 1
    for d in summary['input']:
        inputs *= d
    outputs = 1
    for d in summary['output']:
        outputs *= d
    data = os.path.join(work, f'{name}.csv')
    state = 12345
    with open(data, 'w') as f:
        for _ in range(64):
            row = []
            for _ in range(inputs):
                state = (state * 1103515245 + 12345) % 2**32
                row.append('%.4f' % ((state >> 8) / 16777216.0))
            f.write(','.join(row + ['0'] * outputs) + '\n')
    run(['/usr/bin/python3', oracle, 'calibrate', model, '--data', data, '--weights', weights,
         '--save', ranges])
    return weights, ranges


def build_baked(args, name, work, cflags, tag, options):
    """bench_driver on a predictor with its weights baked in (float, or
    int8 with --quantize)."""
    model = os.path.join(HERE, f'{name}.cnn')
    src = generate(args, model, work, 'c', list(options))
    exe = os.path.join(work, f'{name}_baked{tag}_bench')
    run([args.cc] + shlex.split(cflags) + ['-DBENCH_BAKED', src,
        os.path.join(HERE, 'bench_driver.c'), '-I', work, '-o', exe, '-lm'])
    return exe


def int8_speed(args, flag_sets, peaks):
    """The int8 predictors (issue 17) against the float ones, same weights,
    same run: batch 1 and 64, one thread, each set of flags."""
    names = [n for n in args.int8_models.split(',') if n]
    if not names:
        return
    print(f'\nint8 against float (cnngen --weights W [--quantize R], one thread; the CPU: '
          f'{cpu_name()}, FMA peak {peaks_text(peaks)}): microseconds per sample, median of '
          f'the fastest of {args.rounds} rounds; int8 clone in use')
    print(f'model    flags                  batch |   float us |    int8 us  clone  | '
          f'float/int8')
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            weights, ranges = int8_artifacts(name, work)
            for k, flags in enumerate(flag_sets):
                f_exe = build_baked(args, name, work, flags, f'f{k}', ['--weights', weights])
                q_exe = build_baked(args, name, work, flags, f'q{k}',
                                    ['--weights', weights, '--quantize', ranges])
                for batch in (int(b) for b in args.batches.split(',')):
                    fl, q8 = fastest_of_rounds(args, [
                        lambda exe=exe: time_inference(exe, batch, 1, args)
                        for exe in (f_exe, q_exe)])
                    f_us, q_us = (1e3 * r['ms_median'] / batch for r in (fl, q8))
                    print(f'{name:8} {flags:22} {batch:5} | {f_us:10.2f} | {q_us:10.2f} '
                          f'{q8["isa"]:>6} | {f_us / q_us:6.2f}x', flush=True)
    print('(float/int8 above 1: the int8 predictor is faster; the goal is 2x)')


def onnx2c(args, flag_sets):
    """The closest peer, in the same run: bench/peers/onnx2c/run.sh with the
    same models and flag sets, or a line that says why it is missing."""
    print('\nonnx2c (the same network, weights, compiler and flags, batch 1, one thread):')
    exe = args.onnx2c
    if exe and os.path.isdir(exe):
        out = os.path.join(exe, 'build-peer')
        built = subprocess.run(['sh', os.path.join(HERE, 'peers', 'onnx2c', 'build_onnx2c.sh'), exe,
                                out], capture_output=True, text=True)
        exe = os.path.join(out, 'onnx2c') if built.returncode == 0 else ''
        if not exe:
            print(f'  not measured: building onnx2c from {args.onnx2c} failed:\n{built.stderr[-2000:]}')
            return
    if not exe or not os.access(exe, os.X_OK):
        print('  not measured: no onnx2c given (make bench ONNX2C=PATH, an onnx2c executable or '
              'a checkout of github.com/kraiskil/onnx2c; see bench/peers/onnx2c/README.md)')
        return
    env = dict(os.environ, CNN_DIR=HERE, FLAGSETS=';'.join(flag_sets), CC=args.cc,
               ORACLE=os.path.join(ROOT, 'tests', 'reference', 'cnnref.py'),
               MODELS=' '.join(args.models.split(',')))
    with tempfile.TemporaryDirectory() as work:
        r = subprocess.run(['bash', os.path.join(HERE, 'peers', 'onnx2c', 'run.sh'), args.cnngen, exe,
                            work], capture_output=True, text=True, env=env)
        print(r.stdout[-6000:] if r.returncode == 0 else f'  run.sh failed:\n{r.stderr[-2000:]}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', default='lenet,fashion,video3d,seed42')
    ap.add_argument('--cnngen', default=os.path.join(ROOT, 'build', 'cnngen'))
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--flags', default='-O2;-O3 -march=native',
                    help='sets of compiler flags, separated by ";": the first is the README\'s')
    ap.add_argument('--min-time', type=float, default=1.0)
    ap.add_argument('--rounds', type=int, default=3,
                    help='cnngen\'s figures: the fastest of this many rounds, builds alternated')
    ap.add_argument('--batches', default='1,64')
    ap.add_argument('--train-models', default='fashion,video3d,lenet')
    ap.add_argument('--int8-models', default='lenet,fashion,video3d',
                    help='int8 predictors against the float ones (empty: none)')
    ap.add_argument('--no-llvm', action='store_true', help='skip the LLVM backend\'s figures')
    ap.add_argument('--onnx2c', default=os.environ.get('ONNX2C', ''),
                    help='an onnx2c executable, or its source tree (built with '
                         'bench/peers/onnx2c/build_onnx2c.sh): timed beside cnngen at the same '
                         'flags (bench/peers/onnx2c/run.sh)')
    args = ap.parse_args()
    flag_sets = [f.strip() for f in args.flags.split(';') if f.strip()]
    args.cflags = flag_sets[-1]
    cores = os.cpu_count() or 1
    llvm = not args.no_llvm and 'LLVM backend: LLVM' in run([args.cnngen, '--version'])
    with tempfile.TemporaryDirectory() as work:
        peaks = fma_peak(work)
        print(f'CPU: {cpu_name()}, {cores} cores; one core\'s FMA peak: ' +
              peaks_text(peaks) +
              ' (bench/peers/fma_peak.c)', flush=True)
        print(f'compiler: {args.cc}; flag sets: ' + ' | '.join(flag_sets))
        rows, obj_rows = [], []
        for m, name in enumerate(n for n in args.models.split(',') if n):
            if m:  # (the first model's: the one just measured)
                peaks = fma_peak(work, peaks)
            built = [build(args, name, work, cflags=f, tag=str(k)) for k, f in enumerate(flag_sets)]
            exes, flops = [exe for exe, _ in built], built[0][1]
            if llvm:
                obj_exe, _ = build(args, name, work, 'obj')
                # the object for x86-64 machines unknown: every clone, one picked at run time
                multi_exe = build(args, name, work, 'obj', tag='_multi',
                                  options=['--target', 'x86_64-pc-linux-gnu'])[0] \
                    if platform.machine() == 'x86_64' else None
            cases = [(int(b), 1) for b in args.batches.split(',')] + [(64, cores)] * (cores > 1)
            for batch, threads in cases:
                ours = fastest_of_rounds(args, [
                    lambda exe=exe: time_inference(exe, batch, threads, args) for exe in exes])
                torch_ms, variant = torch_best(args, name, batch, threads)
                rows.append((name, batch, threads, ours, torch_ms, variant, flops))
                figures = ' | '.join(
                    f'{f}: {1e3 * o["ms_median"]:10.2f} us {flops * batch / o["ms_median"] / 1e6:6.1f} GF/s '
                    f'{share(flops * batch / o["ms_median"] / 1e6, o["isa"], peaks, threads):5.1f}% '
                    f'({o["isa"]})' for f, o in zip(flag_sets, ours))
                print(f'{name:8} batch {batch:3} threads {threads}: {figures} | pytorch {variant} '
                      f'{1e3 * torch_ms:10.2f} us', flush=True)
                if llvm and threads == 1:
                    objs = fastest_of_rounds(args, [
                        lambda exe=exe: time_inference(exe, batch, 1, args)
                        for exe in (obj_exe, multi_exe) if exe])
                    obj, multi = objs[0], objs[1] if multi_exe else None
                    obj_rows.append((name, batch, ours[-1]['ms_median'], obj['ms_median'],
                                     multi['ms_median'] if multi else None))
    print(f'\none core\'s FMA peak, the best of the run\'s measurements: {peaks_text(peaks)}')
    print(f'inference: microseconds per call (median; the fastest of {args.rounds} rounds), '
          'GFLOP/s, share of the FMA peak of the clone in use')
    head = ' | '.join(f'{f:^31}' for f in flag_sets)
    print(f'model    batch thr | {head} | plain/best | pytorch best us       | pytorch/plain')
    for name, batch, threads, ours, torch_ms, variant, flops in rows:
        cells = ' | '.join(
            f'{1e3 * o["ms_median"]:10.2f} {flops * batch / o["ms_median"] / 1e6:6.1f} '
            f'{share(flops * batch / o["ms_median"] / 1e6, o["isa"], peaks, threads):5.1f}% '
            f'{o["isa"]:>6}' for o in ours)
        plain = ours[0]['ms_median']
        best = min(o['ms_median'] for o in ours)
        print(f'{name:8} {batch:5} {threads:3} | {cells} | {plain / best:9.2f}x | '
              f'{1e3 * torch_ms:10.2f} {variant[:10]:>10} | {torch_ms / plain:6.2f}x')
    print('(plain/best: the README\'s flags against the fastest set, 1.00x is as fast; '
          'pytorch/plain above 1: cnngen with the plain flags is faster)')
    if llvm:
        print('\nthe LLVM backend: --emit=obj (host CPU), and the multiversioned object '
              '(--target x86_64-pc-linux-gnu), against the C built with '
              f'{args.cc} {flag_sets[-1]}')
        print('model    batch    C ms     obj ms   C/obj  multi ms C/multi (above 1: the object '
              'is faster; target above 1/1.2 = 0.83)')
        for name, batch, c_ms, obj_ms, multi_ms in obj_rows:
            multi = f'{multi_ms:9.5f} {c_ms / multi_ms:6.2f}x' if multi_ms else '        -       -'
            print(f'{name:8} {batch:5} {c_ms:9.5f} {obj_ms:9.5f} {c_ms / obj_ms:6.2f}x {multi}')
        object_build_time(args)
    print(f'\nthe profile (cnngen --profile, {flag_sets[0]}, batch 1, one thread) against '
          'bench_driver\'s timing:')
    with tempfile.TemporaryDirectory() as work:
        for name, batch, threads, ours, _, _, _ in rows:
            if batch == 1 and threads == 1:
                profile_agrees(args, name, work, flag_sets[0], ours[0]['ms_median'])
    onnx2c(args, flag_sets)
    int8_speed(args, flag_sets, peaks)
    if not args.train_models:
        return
    with tempfile.TemporaryDirectory() as work:
        peaks = fma_peak(work, peaks)
        print('\ntraining, batch 64: samples/s (higher is better), and the share of the peak '
              f'(a step counted as 3x the forward FLOPs; the peak: {peaks_text(peaks)})')
        for name in args.train_models.split(','):
            summary = json.loads(run([args.cnngen, os.path.join(HERE, f'{name}.cnn'), '--summary',
                                      '--json']))
            flops = int(summary['flops'])
            torch = {th: 64e3 / torch_train(args, name, th) for th in sorted({1, cores})}
            exes = [build_train(args, name, work, cflags=f, tag=str(k))
                    for k, f in enumerate(flag_sets)]
            runs = [(f, exe, th) for f, exe in zip(flag_sets, exes) for th in sorted({1, cores})]
            results = fastest_of_rounds(args, [
                lambda exe=exe, th=th: json.loads(
                    run([exe, str(CLASSES[name]), str(args.min_time)],
                        env=dict(os.environ, OMP_NUM_THREADS=str(th))))
                for _, exe, th in runs])
            for (f, _, th), r in zip(runs, results):
                rate = 64e3 / r['ms_median']
                gf = 3 * flops * rate / 1e9
                print(f'{name:8} {f:22} {th} thread{"s" if th > 1 else " "}: cnngen '
                      f'{rate:7.0f} samples/s {gf:6.1f} GF/s '
                      f'{share(gf, r["isa"], peaks, th):5.1f}% ({r["isa"]}) | pytorch '
                      f'{torch[th]:7.0f} | ratio {rate / torch[th]:5.2f}x', flush=True)
            if llvm:
                exe = build_train(args, name, work, 'obj')
                obj = 64e3 / json.loads(run([exe, str(CLASSES[name]), str(args.min_time)],
                                            env=dict(os.environ, OMP_NUM_THREADS='1')))['ms_median']
                print(f'{"":8} --emit=obj, 1 thread: {obj:7.0f} samples/s (the object has no '
                      'OpenMP)', flush=True)


if __name__ == '__main__':
    main()
