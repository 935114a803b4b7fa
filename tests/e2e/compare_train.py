#!/usr/bin/python3
"""Generated training against the reference: the same model, starting
weights and data, `train --init W0 --no-shuffle` for 2 epochs, must print
the same epoch losses (1e-4 relative) and end with the same weights (1e-4
relative plus 1e-5 absolute), and eval must agree.

One exception, for Adam (and AdamW) and only where no two float programs can agree:
Adam divides each gradient by its own running size, so a gradient within
rounding of zero (a bias feeding a batchnorm has an exact gradient of
zero), or one that a relu or max pooling decision at a pre-activation
within rounding of zero changes, becomes a different step of up to lr in
any two programs, PyTorch on two machines included.  Such elements are
found in two ways.  The reference trains twice more, on the inputs
scaled by 1 + 1e-7 r and by 1 - 1e-7 r (r = +-1 at random: about one
float rounding); where either run moves an element by more than the
tolerance, the reference's own answer is not determined to it (and where
its epoch losses move past 1e-4, ours are held to 100 times their
spread: a batchnorm over two samples that nearly agree divides by their
difference, for one).  And an
element whose first-batch gradient is below 1e-5 of the largest in
either program is rounding noise (PyTorch's noise is often smaller than
ours, an exact 0 where ours is 1e-9, so moving the inputs does not show
it).  There ours must agree within lr per step.  The gradients of every
Adam model are compared apart: the same model with `sgd(lr=1)` for one
batch, where w0 - w1 is the gradient, must agree with the reference's to
1e-4 of the largest (but for the few elements, at most 2% of a tensor,
where a pre-activation within rounding of zero flips relu's or max
pooling's choice).  --min counts the models that agree everywhere,
without the exception.

    compare_train.py --cnngen BIN --oracle cnnref.py --runtime-include DIR
                     --runtime-lib DIR [--cc gcc] [--cflags -O2] [--min N]
                     [--sanitize] MODEL.cnn|DIR ...

Random data fits each model: inputs in [-1, 1]; targets are class indices
for crossentropy, 0 or 1 for binary crossentropy, else values in [-1, 1];
two full batches and a partial one.  The reference's dropout draws from
PyTorch's generator, which no other program reproduces, so a dropout
with a rate is compared as dropout(0) (dropout has tests of its own).
Also checks eval against the reference, on the trained weights.
"""

import argparse
import concurrent.futures
import json
import math
import os
import random
import re
import shlex
import sys
import tempfile

from e2e_common import (add_build_arguments, skip_unless_cpu_runs, force_isa_in_objects,
                        build_object_with_runtime, build_with_runtime,
                        has_llvm, model_files, oracle_batch, read_safetensors, run,
                        write_train_data)





def run_oracle(oracle, lines, env):
    """Exit status of each batch line; 'crash' for a line the reference
    died on (PyTorch itself segfaults on a few convolution shapes), after
    which the rest run in a new batch."""
    codes = []
    while len(codes) < len(lines):
        rest = lines[len(codes):]
        codes += oracle_batch(oracle, rest, env)
        if len(codes) < len(lines):
            codes.append('crash')
    return codes


def numbers(text):
    return [float(v) for v in re.findall(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf', text)]


def perturbed_data(path, out_path, inputs, sign):
    """data.csv with each input scaled by 1 + sign 1e-7 r, r = +-1 drawn the
    same for both signs (so the two runs move every input apart)."""
    rng = random.Random(99)
    with open(path) as f, open(out_path, 'w') as out:
        for line in f:
            row = line.rstrip('\n').split(',')
            for j in range(inputs):
                row[j] = '%.9g' % (float(row[j]) * (1 + sign * 1e-7 * rng.choice((-1, 1))))
            out.write(','.join(row) + '\n')


def without_dropout(text):
    return re.sub(r'\bdropout\s*\((?:\s*rate\s*=)?[^)]*\)', 'dropout(0)', text)


def sgd_variant(text):
    """The model with the optimizer replaced by sgd(lr=1), and no schedule,
    validation or augmentation: one step is -gradient."""
    text = re.sub(r'optimizer\s*=\s*(adamw|adam|sgd)(\([^)]*\))?', 'optimizer = sgd(lr=1)', text)
    text = re.sub(r'(?m)^\s*(schedule|warmup|validation_split|early_stopping|monitor|augment)\s*=.*$',
                  '', text)
    if 'optimizer' not in text:
        text = re.sub(r'train\s*\{', 'train {\n  optimizer = sgd(lr=1)\n', text, count=1)
    return text


def build_c(args, d, model, name):
    return build_with_runtime(args, model, os.path.join(d, name + '.c'), os.path.join(d, name))


def build_object(options):
    def build(args, d, model, name):
        return build_object_with_runtime(args, model, os.path.join(d, name + '.o'),
                                         os.path.join(d, name), options)
    return build


def build_and_train(args, d, model, build=build_c, name='prog', gradients=True):
    """Our program: build, train, eval.  Returns (problems, train stdout,
    eval stdout); the weights in NAME.safetensors (and with gradients,
    g_NAME.safetensors for the sgd(lr=1) variant)."""
    prog = os.path.join(d, name)
    failed = build(args, d, model, name)
    if failed:
        return [failed], None, None
    tr = run([prog, 'train', '--data', os.path.join(d, 'data.csv'), '--init',
              os.path.join(d, 'w0.safetensors'), '--no-shuffle', '--epochs', '2', '--save',
              os.path.join(d, name + '.safetensors')])
    if tr.returncode != 0:
        return [f'train failed ({tr.returncode}):\n{tr.stderr[:2000]}'], None, None
    ev = run([prog, 'eval', '--data', os.path.join(d, 'data.csv'), '--weights',
              os.path.join(d, name + '.safetensors')])
    if ev.returncode != 0:
        return [f'eval failed ({ev.returncode}):\n{ev.stderr[:2000]}'], tr.stdout, None
    if gradients and os.path.exists(os.path.join(d, 'grad.cnn')):
        gprog = os.path.join(d, 'g_' + name)
        failed = build(args, d, os.path.join(d, 'grad.cnn'), 'g_' + name)
        g = run([gprog, 'train', '--data', os.path.join(d, 'batch.csv'), '--init',
                 os.path.join(d, 'w0.safetensors'), '--no-shuffle', '--epochs', '1', '--quiet',
                 '--save', gprog + '.safetensors']) if not failed else None
        if g is None or g.returncode != 0:
            why = failed if g is None else g.stderr[:2000]
            return [f'the sgd(lr=1) variant failed:\n{why}'], tr.stdout, None
    return [], tr.stdout, ev.stdout


def close(a, b, rel, abs_):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rel * abs(b) + abs_


def first_batch_gradients(d, build):
    """Each tensor's gradient on the first batch, ours and the reference's
    (w0 - w1 after one sgd(lr=1) step), and the largest of the reference's."""
    w0 = read_safetensors(os.path.join(d, 'w0.safetensors'))
    ours = read_safetensors(os.path.join(d, f'g_{build}.safetensors'))
    ref = read_safetensors(os.path.join(d, 'g_ref.safetensors'))
    grads = {k: ([a - b for a, b in zip(w0[k], ours[k])], [a - b for a, b in zip(w0[k], ref[k])])
             for k in ref}
    top = max([abs(v) for _, gr in grads.values() for v in gr] + [1e-30])
    return grads, top


def gradient_problems(grads, top):
    problems = []
    for name, (go, gr) in grads.items():
        off = [k for k, (x, y) in enumerate(zip(go, gr)) if abs(x - y) > 1e-4 * top + 1e-7]
        # A pre-activation within rounding of zero flips relu's or max
        # pooling's choice in one program and not the other: a few
        # elements may differ, not more.
        if len(off) > max(1, len(gr) // 50):
            k = off[0]
            problems.append(f'gradient of {name}: {len(off)} of {len(gr)} differ, [{k}]: cnngen '
                            f'{go[k]!r}, reference {gr[k]!r} (largest {top:.3g})')
    return problems


def rounding_noise(grads, top):
    """The elements whose first-batch gradient is within rounding of zero
    (below 1e-5 of the largest, so rounding is at least 1% of it) in either
    program: Adam's steps for them are driven by noise."""
    return {(name, k) for name, (go, gr) in grads.items()
            for k, (x, y) in enumerate(zip(go, gr)) if min(abs(x), abs(y)) <= 1e-5 * top}


def unstable(d):
    """The elements the reference itself moves by more than the tolerance
    when its inputs move by about one float rounding."""
    ref = read_safetensors(os.path.join(d, 'ref.safetensors'))
    moved = set()
    for variant in ('ref_plus', 'ref_minus'):
        other = read_safetensors(os.path.join(d, variant + '.safetensors'))
        moved |= {(name, k) for name in ref for k, (x, y) in enumerate(zip(other[name], ref[name]))
                  if not close(x, y, 1e-4, 1e-5)}
    return moved


def loss_spread(d, ref_losses):
    """How far the reference's own epoch losses move (relative) when its
    inputs move by about one float rounding."""
    spread = 0.0
    for variant in ('ref_plus', 'ref_minus'):
        with open(os.path.join(d, variant + '.txt')) as f:
            moved = numbers(f.read())
        if len(moved) != len(ref_losses):
            return 0.0
        spread = max([spread] + [abs(x - y) / (abs(y) + 1e-30) for x, y in zip(moved, ref_losses)])
    return spread


# Two float programs differ in the rounding of every operation, not in the
# inputs alone: where the reference's losses are not determined to the
# tolerance, ours are held to this many times the reference's own spread.
LOSS_SPREAD_FACTOR = 100


def compare(d, ours_lines, ref_lines, eval_ours, eval_ref, adam_bound, build='prog'):
    """Problems, the worst weight difference, and how many elements took
    Adam's exception (see the top of this file)."""
    problems, worst, excepted = [], 0.0, 0
    a, b = numbers(ours_lines), numbers(ref_lines)
    if len(a) != len(b) or not all(close(x, y, 1e-4, 1e-7) for x, y in zip(a, b)):
        spread = loss_spread(d, b) if adam_bound is not None else 0.0
        if len(a) == len(b) and spread > 1e-4 and \
                all(close(x, y, LOSS_SPREAD_FACTOR * spread, 1e-7) for x, y in zip(a, b)):
            excepted += len(a)      # the losses, where the reference is not determined
        else:
            problems.append(f'epoch lines differ:\n{ours_lines}reference:\n{ref_lines}')
    ours = read_safetensors(os.path.join(d, build + '.safetensors'))
    ref = read_safetensors(os.path.join(d, 'ref.safetensors'))
    if list(ours) != list(ref):
        return problems + [f'tensors {list(ours)}, the reference {list(ref)}'], worst, excepted
    undetermined = set()
    if adam_bound is not None:
        grads, top = first_batch_gradients(d, build)
        problems += gradient_problems(grads, top)
        undetermined = unstable(d) | rounding_noise(grads, top)
    for name in ref:
        for k, (x, y) in enumerate(zip(ours[name], ref[name])):
            worst = max(worst, abs(x - y) / (abs(y) + 0.1))
            if close(x, y, 1e-4, 1e-5):
                continue
            if (name, k) in undetermined and abs(x - y) <= adam_bound:
                excepted += 1
            elif len(problems) < 4:
                problems.append(f'{name}[{k}]: cnngen {x!r}, reference {y!r}')
    if not excepted:
        ea, eb = numbers(eval_ours), numbers(eval_ref)
        if len(ea) != len(eb) or not all(close(x, y, 1e-4, 1e-6) for x, y in zip(ea, eb)):
            problems.append(f'eval differs: {eval_ours.strip()} | reference {eval_ref.strip()}')
    return problems, worst, excepted


# Through the LLVM backend (--obj), twice: without fused multiply-adds the
# object must train to what the C build trains to (1e-5; the same
# operations in the same order give the same bits); as users get it (fused
# where the CPU has FMA) it is compared with the reference as the C build is.
def same_as_c(d, c_lines, obj_lines, c_eval, obj_eval):
    problems = []
    a, b = numbers(obj_lines), numbers(c_lines)
    if len(a) != len(b) or not all(close(x, y, 1e-6, 1e-9) for x, y in zip(a, b)):
        problems.append(f'epoch lines differ from the C build:\n{obj_lines}C:\n{c_lines}')
    ea, eb = numbers(obj_eval), numbers(c_eval)
    if len(ea) != len(eb) or not all(close(x, y, 1e-6, 1e-9) for x, y in zip(ea, eb)):
        problems.append(f'eval differs from the C build: {obj_eval.strip()} | C {c_eval.strip()}')
    ours = read_safetensors(os.path.join(d, 'exact.safetensors'))
    c = read_safetensors(os.path.join(d, 'prog.safetensors'))
    worst = 0.0
    if list(ours) != list(c) or any(len(ours[name]) != len(c[name]) for name in c):
        return problems + [f'tensors {list(ours)}, the C build\'s {list(c)}'], worst
    for name in c:
        for k, (x, y) in enumerate(zip(ours[name], c[name])):
            worst = max(worst, abs(x - y) / (abs(y) + 1e-3))
            if not close(x, y, 1e-5, 1e-8) and len(problems) < 4:
                problems.append(f'{name}[{k}]: object {x!r}, C build {y!r}')
    return problems, worst


def objects_train(args, d, model):
    """build_and_train's results for the exact and the fused object (the
    exact one is compared with the C build, not with the reference: its
    gradient variant would be a build that nothing reads)."""
    exact = build_and_train(args, d, model, build_object(['--fp-contract=off']), 'exact',
                            gradients=False)
    fused = build_and_train(args, d, model, build_object([]), 'fused')
    return exact, fused


def main():
    ap = argparse.ArgumentParser()
    add_build_arguments(ap, '-O2')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--keep', help='work in this directory and leave it')
    ap.add_argument('--no-obj', action='append', default=[], metavar='FILE.cnn',
                    help='with --obj: not for the model files of this name (C alone)')
    ap.add_argument('paths', nargs='+')
    args = ap.parse_args()
    skip_unless_cpu_runs(args)
    force_isa_in_objects(args)
    args.cnngen = os.path.abspath(args.cnngen)
    if args.obj and not has_llvm(args.cnngen):
        print('(no LLVM backend in this cnngen: --obj skipped)')
        args.obj = False
    files = model_files(args.paths)
    rng = random.Random(4321)
    q = shlex.quote
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.abspath(args.keep) if args.keep else tmp
        valid, lines, bounds = [], [], {}
        for i, source in enumerate(files):
            d = os.path.join(work, str(i))
            os.makedirs(d)
            with open(source) as f:
                text = without_dropout(f.read())
            model = os.path.join(d, 'model.cnn')
            with open(model, 'w') as f:
                f.write(text)
            s = run([args.cnngen, '--summary', '--json', model])
            if s.returncode != 0:
                continue
            summary = json.loads(s.stdout)
            write_train_data(os.path.join(d, 'data.csv'), summary, rng)
            valid.append(i)
            adam = summary['train']['optimizer'] in ('adam', 'adamw')
            if adam:
                with open(os.path.join(d, 'grad.cnn'), 'w') as f:
                    f.write(sgd_variant(text))
                with open(os.path.join(d, 'data.csv')) as f:
                    rows = f.readlines()[:summary['train']['batch']]
                with open(os.path.join(d, 'batch.csv'), 'w') as f:
                    f.writelines(rows)
                with open(os.path.join(d, 'data.csv')) as f:
                    steps = 2 * -(-len(f.readlines()) // summary['train']['batch'])
                lr = float(re.search(r'adamw?\((?:lr\s*=\s*)?([0-9.eE+-]+)', text).group(1)) \
                    if re.search(r'adamw?\((?:lr\s*=\s*)?[0-9.]', text) else 1e-3
                peak = re.search(r'max_lr\s*=\s*([0-9.eE+-]+)', text)  # one_cycle's
                lr = max(lr, float(peak.group(1))) if peak else lr
                bounds[i] = lr * steps + 1e-5
            lines.append(f'{q(d)}/init.out {q(d)}/init.err init {q(model)} --seed {i + 1} '
                         f'--out {q(d)}/w0.safetensors')
            lines.append(f'{q(d)}/ref.txt {q(d)}/ref.err train {q(model)} --data {q(d)}/data.csv '
                         f'--init {q(d)}/w0.safetensors --no-shuffle --epochs 2 '
                         f'--save {q(d)}/ref.safetensors')
            lines.append(f'{q(d)}/eval.txt {q(d)}/eval.err eval {q(model)} --data {q(d)}/data.csv '
                         f'--weights {q(d)}/ref.safetensors')
            if i in bounds:
                lines.append(f'{q(d)}/g.txt {q(d)}/g.err train {q(d)}/grad.cnn --data {q(d)}/batch.csv '
                             f'--init {q(d)}/w0.safetensors --no-shuffle --epochs 1 --quiet '
                             f'--save {q(d)}/g_ref.safetensors')
                for sign, variant in ((1, 'ref_plus'), (-1, 'ref_minus')):
                    out = q(os.path.join(d, variant))
                    perturbed_data(os.path.join(d, 'data.csv'), os.path.join(d, variant + '.csv'),
                                   math.prod(summary['input']), sign)
                    lines.append(f'{out}.txt {out}.err train {q(model)} --data {out}.csv '
                                 f'--init {q(d)}/w0.safetensors --no-shuffle --epochs 2 '
                                 f'--save {out}.safetensors')
        env = dict(os.environ, CNNREF_THREADS='1')
        codes = run_oracle(args.oracle, lines, env)

        def ours(i):
            d = os.path.join(work, str(i))
            c = build_and_train(args, d, os.path.join(d, 'model.cnn'))
            with_obj = args.obj and os.path.basename(files[i]) not in args.no_obj
            objects = objects_train(args, d, os.path.join(d, 'model.cnn')) if with_obj else None
            return c, objects

        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(ours, valid))
        failures, worst, compared, crashed = 0, 0.0, 0, 0
        everywhere, excepted_models = 0, 0
        at = 0
        object_worst = 0.0
        for i, ((problems, train_out, eval_out), objects) in zip(valid, results):
            d = os.path.join(work, str(i))
            n = 6 if i in bounds else 3
            mine, at = codes[at:at + n], at + n
            if 'crash' in mine:
                crashed += 1
                print(f'skipped {files[i]}: the reference crashed')
                continue
            if mine != ['0'] * n:
                errors = ''
                for name in ('init.err', 'ref.err', 'eval.err', 'g.err', 'ref_plus.err',
                             'ref_minus.err'):
                    if os.path.exists(os.path.join(d, name)):
                        with open(os.path.join(d, name)) as f:
                            errors += f.read()
                if 'internal error' in errors:       # PyTorch refused the shapes
                    crashed += 1
                    print(f'skipped {files[i]}: the reference failed: {errors.strip()[:200]}')
                    continue
                problems = problems + [f'the reference failed: {errors[:500]}']
            elif train_out is not None and eval_out is not None:
                with open(os.path.join(d, 'ref.txt')) as f:
                    ref_train = f.read()
                with open(os.path.join(d, 'eval.txt')) as f:
                    ref_eval = f.read()
                diffs, w, excepted = compare(d, train_out, ref_train, eval_out, ref_eval,
                                             bounds.get(i))
                problems = problems + diffs
                worst = max(worst, w)
                compared += 1
                if objects:
                    (e_problems, e_train, e_eval), (f_problems, f_train, f_eval) = objects
                    problems += ['--emit=obj --fp-contract=off: ' + p for p in e_problems]
                    problems += ['--emit=obj: ' + p for p in f_problems]
                    if e_train is not None and e_eval is not None:
                        diffs, w = same_as_c(d, train_out, e_train, eval_out, e_eval)
                        problems += ['--emit=obj --fp-contract=off: ' + p for p in diffs]
                        object_worst = max(object_worst, w)
                    if f_train is not None and f_eval is not None:
                        diffs, w, fused_excepted = compare(d, f_train, ref_train, f_eval,
                                                           ref_eval, bounds.get(i), 'fused')
                        problems += ['--emit=obj against the reference: ' + p for p in diffs]
                        worst = max(worst, w)
                        excepted += fused_excepted
                if excepted and not problems:
                    excepted_models += 1
                    print(f'{files[i]}: {excepted} elements within lr per step, where the '
                          "reference's own answer is not determined to the tolerance")
                elif not problems:
                    everywhere += 1
            if problems:
                failures += 1
                print(f'FAIL {files[i]}')
                for p in problems:
                    print('  ' + p.replace('\n', '\n  '))
    if crashed:
        print(f'{crashed} models skipped: the reference crashed or failed inside PyTorch')
    print(f'{compared} models trained, worst weight difference {worst:.2e} (relative to |w| + 0.1)')
    if args.obj:
        print(f'--emit=obj --fp-contract=off: worst weight difference from the C build '
              f'{object_worst:.2e} (relative to |w| + 0.001); --emit=obj (fused) is in the worst above')
    print(f'{everywhere} models agree everywhere (weights 1e-4 relative + 1e-5, epoch losses, '
          f'eval); {excepted_models} agree but where the reference itself is not determined')
    if everywhere < args.min:
        print(f'too few models agree everywhere: {everywhere} < {args.min}')
    print(f'{compared - failures if compared >= failures else 0} passed, {failures} failed')
    return 0 if failures == 0 and everywhere >= args.min else 1


if __name__ == '__main__':
    sys.exit(main())
