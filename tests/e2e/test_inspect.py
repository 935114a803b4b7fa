#!/usr/bin/python3
"""test_inspect.py - the instruments: predict --dump and the profile.

Dumps: for every model named, the reference writes random weights
(batchnorm's statistics moved off their starting values), and the
generated program and the reference each run `predict --weights W --dump
DIR` on the same random samples.  Every layer must have its file, a tensor
named by the layer of shape [samples, its shape], and agree with the
reference's to 1e-5 relative plus 1e-6 (as the predict comparisons).  The
first model is also built through the LLVM backend (when there is one),
whose dump must agree the same way.  A program without training code,
`--dump` without a directory, and a directory that cannot be made or
written are refused (exit 2, a message).

Profile: the models named (lenet, residual) built with `cnngen --profile`
(the first also as an LLVM object):
- their outputs equal the same build's without the profile, byte for byte;
- `predict --profile` prints a row per layer, in order, each with one call
  per sample (an element-wise layer fused into its producer says in whose
  function it runs, a dropout or flatten that it has no code), the
  (layers) line is the sum of the rows, and it is no more than the whole
  calls (the layers' intervals lie inside them).  How much less is the
  machine's business: the clock reads between layers count in the whole
  calls and in no layer, and a VM's clock read can cost a microsecond, so
  a lower bound would make this a timed test;
- `train --profile` counts one whole call per training step, a row per
  layer and the loss, which add up as predict's do;
- a program built without it refuses --profile (exit 2).
"""
import argparse
import json
import os
import random
import re
import shlex
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (WARNINGS, has_llvm, model_files, read_tensors, run,  # noqa: E402
                        sanitizer_flags, write_safetensors)

SAMPLES = 6


def perturb(path, rng):
    """Batchnorm's moving statistics off 0 and 1, its gamma and beta off
    1 and 0, and every bias off 0: each layer's arithmetic shows."""
    tensors = read_tensors(path)
    for name, (shape, values) in tensors.items():
        kind = name.rsplit('.', 1)[-1]
        spread = {'mean': (-0.3, 0.3), 'var': (0.5, 1.5), 'gamma': (0.6, 1.4),
                  'beta': (-0.3, 0.3), 'bias': (-0.2, 0.2)}.get(kind)
        if spread:
            tensors[name] = (shape, tuple(rng.uniform(*spread) for _ in values))
    write_safetensors(path, [(name, shape, values) for name, (shape, values) in tensors.items()])


def summary(args, model):
    return json.loads(run([args.cnngen, model, '--summary', '--json']).stdout)


def input_size(args, model):
    size = 1
    for d in summary(args, model)['input']:
        size *= d
    return size


def build(args, model, exe, options=()):
    c = exe + '.c'
    gen = run([args.cnngen, model, '--main', '-o', c] + list(options))
    if gen.returncode != 0:
        return f'cnngen failed: {gen.stderr}'
    cc = run([args.cc] + WARNINGS + ['-O2', '-DCNNGEN_ONLY_GENERIC'] + sanitizer_flags(args) +
             [c, '-I', args.runtime_include, os.path.join(args.runtime_lib, 'libcnnrt.a'),
              '-lz', '-lm', '-o', exe])
    return None if cc.returncode == 0 else f'the C does not compile:\n{cc.stderr[:2000]}'


def build_object(args, model, exe, options=()):
    obj = exe + '.o'
    gen = run([args.cnngen, model, '--main', '--emit=obj', '-o', obj] + list(options))
    if gen.returncode != 0:
        return f'cnngen --emit=obj failed: {gen.stderr}'
    cc = run([args.cc] + sanitizer_flags(args) +
             [obj, os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', exe])
    return None if cc.returncode == 0 else f'the object does not link:\n{cc.stderr[:2000]}'


def compare_dumps(ours, ref, layers):
    """Problems between two dump directories (empty: they agree)."""
    problems = []
    for name in layers:
        a_path, b_path = os.path.join(ours, f'{name}.safetensors'), os.path.join(ref, f'{name}.safetensors')
        if not os.path.exists(a_path):
            problems.append(f'no dump of layer {name}')
            continue
        a, b = read_tensors(a_path), read_tensors(b_path)
        if list(a) != [name]:
            problems.append(f'{name}: the file holds {list(a)}, not one tensor named {name}')
            continue
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            problems.append(f'{name}: shape {sa}, the reference {sb}')
            continue
        bad = [(i, x, y) for i, (x, y) in enumerate(zip(va, vb)) if not abs(x - y) <= 1e-5 * abs(y) + 1e-6]
        if bad:
            i, x, y = bad[0]
            problems.append(f'{name}: {len(bad)} of {len(vb)} values differ; the first, at {i}: {x!r} '
                            f'against {y!r}')
    extra = set(f[:-len('.safetensors')] for f in os.listdir(ours)) - set(layers)
    if extra:
        problems.append(f'files for no layer: {sorted(extra)}')
    return problems


def check_dumps(args, models, work):
    rng = random.Random(7)
    failures, lines, jobs = [], [], []
    for k, model in enumerate(models):
        d = os.path.join(work, f'd{k}')
        os.makedirs(d)
        w = os.path.join(d, 'w.safetensors')
        samples = os.path.join(d, 'x.csv')
        with open(samples, 'w') as f:
            for _ in range(SAMPLES):
                f.write(','.join(f'{rng.uniform(-1, 1):.6f}' for _ in range(input_size(args, model))) + '\n')
        jobs.append((model, d, w, samples))
        lines.append(' '.join(shlex.quote(a) for a in [
            os.devnull, os.path.join(d, 'init.err'), 'init', model, '--seed', str(k + 1), '--out', w]))
    codes = run(['/usr/bin/python3', args.oracle, 'batch'], input='\n'.join(lines) + '\n').stdout.split()
    lines = []
    for (model, d, w, samples), code in zip(jobs, codes):
        if code != '0':
            failures.append(f'{model}: the reference cannot write weights')
            continue
        perturb(w, rng)
        lines.append(' '.join(shlex.quote(a) for a in [
            os.path.join(d, 'ref.out'), os.path.join(d, 'ref.err'), 'predict', model, '--weights', w,
            '--dump', os.path.join(d, 'ref'), samples]))
    codes = run(['/usr/bin/python3', args.oracle, 'batch'], input='\n'.join(lines) + '\n').stdout.split()
    llvm = has_llvm(args.cnngen)
    for k, ((model, d, w, samples), code) in enumerate(zip(jobs, codes)):
        if code != '0':
            failures.append(f'{model}: the reference\'s dump failed: {open(os.path.join(d, "ref.err")).read()}')
            continue
        layers = [f[:-len('.safetensors')] for f in os.listdir(os.path.join(d, 'ref'))]
        builds = [('C', build(args, model, os.path.join(d, 'prog')))]
        if k == 0 and llvm:
            builds.append(('LLVM object', build_object(args, model, os.path.join(d, 'obj'))))
        for what, error in builds:
            if error:
                failures.append(f'{model} ({what}): {error}')
                continue
            exe = os.path.join(d, 'prog' if what == 'C' else 'obj')
            out_dir = os.path.join(d, 'ours' if what == 'C' else 'ours_obj')
            r = run([exe, 'predict', '--weights', w, '--dump', out_dir, samples])
            if r.returncode != 0:
                failures.append(f'{model} ({what}): predict --dump exited {r.returncode}: {r.stderr}')
                continue
            problems = compare_dumps(out_dir, os.path.join(d, 'ref'), layers)
            failures += [f'{model} ({what}): {p}' for p in problems]
            if not problems:
                print(f'ok: {os.path.basename(model)} ({what}): {len(layers)} layers agree with the '
                      'reference')
    return failures


def check_refusals(args, model, work):
    failures = []
    exe = os.path.join(work, 'notrain')
    error = build(args, model, exe, ['--no-train'])
    if error:
        return [f'{model} --no-train: {error}']
    r = run([exe, 'predict', '--dump', os.path.join(work, 'never')], input='')
    if r.returncode != 2 or 'training code' not in r.stderr or os.path.exists(os.path.join(work, 'never')):
        failures.append(f'--no-train predict --dump: exit {r.returncode}, {r.stderr!r}')
    r = run([exe, 'predict', '--profile'], input='')
    if r.returncode != 2 or 'cnngen --profile' not in r.stderr:
        failures.append(f'a build without the profile, predict --profile: exit {r.returncode}, {r.stderr!r}')
    exe = os.path.join(work, 'train')
    error = build(args, model, exe)
    if error:
        return failures + [error]
    r = run([exe, 'predict', '--dump'], input='')
    if r.returncode != 2 or 'needs a directory' not in r.stderr:
        failures.append(f'predict --dump without a directory: exit {r.returncode}, {r.stderr!r}')
    plain_file = os.path.join(work, 'a_file')
    open(plain_file, 'w').close()
    for where in (plain_file, os.path.join(plain_file, 'below')):
        r = run([exe, 'predict', '--dump', where], input='')
        if r.returncode != 2 or not r.stderr.startswith(exe + ': error: cannot'):
            failures.append(f'predict --dump {where}: exit {r.returncode}, {r.stderr!r}')
    r = run([exe, 'train', '--profile', '--data', os.devnull])
    if r.returncode != 2 or 'cnngen --profile' not in r.stderr:
        failures.append(f'a build without the profile, train --profile: exit {r.returncode}, {r.stderr!r}')
    return failures


ROW = re.compile(r'^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%')


def profile_rows(text):
    """{name: (calls, ms, share)} of the layer rows, in order; and the
    (layers) (ms, share) and (whole calls) (calls, ms) figures."""
    rows, layers_share, whole = {}, None, None
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = (int(m.group(4)), float(m.group(5)), float(m.group(6)))
        m = re.match(r'^\(layers\)\s+([\d.]+)\s+([\d.]+)%', line)
        if m:
            layers_share = (float(m.group(1)), float(m.group(2)))
        m = re.match(r'^\(whole calls\)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%', line)
        if m:
            whole = (int(m.group(1)), float(m.group(2)))
        m = re.match(r'^(\S+)\s+(\S+)\s+(\d+)\s+-\s+(in (\S+)\'s function|no code)', line)
        if m:
            rows[m.group(1)] = ('fused', m.group(5))
        m = re.match(r'^\(loss\)\s+(\d+)\s+([\d.]+)', line)
        if m:
            rows['(loss)'] = (int(m.group(1)), float(m.group(2)), None)
    return rows, layers_share, whole


def summary_layers(args, model):
    return [layer['name'] for layer in summary(args, model)['layers']]


def check_layer_sum(name, rows, layers, whole):
    """(layers) must be the sum of the rows and lie within the whole calls;
    the rows and the sum are printed to 4 decimals, hence the slack."""
    if layers is None or whole is None:
        return [f'{name}: no (layers) or (whole calls) line']
    timed = [row[1] for row in rows.values() if row[0] != 'fused']
    failures = []
    if any(ms < 0 for ms in timed) or abs(sum(timed) - layers[0]) > 1e-4 * (len(timed) + 1):
        failures.append(f'{name}: the rows add up to {sum(timed):.4f} ms, (layers) says {layers[0]}')
    if layers[0] > whole[1] + 1e-4 or layers[1] > 100.05:
        failures.append(f'{name}: the layers take {layers[0]} ms ({layers[1]}%), '
                        f'more than the whole calls\' {whole[1]} ms')
    return failures


def check_profile(args, model, work, samples, train_data, llvm=False):
    """The profile of the C build (or with llvm, of the LLVM object)."""
    failures = []
    name = os.path.basename(model) + (' (LLVM object)' if llvm else '')
    plain, prof = os.path.join(work, 'plain'), os.path.join(work, 'prof')
    for exe, options in ((plain, []), (prof, ['--profile'])):
        error = build_object(args, model, exe, options) if llvm else build(args, model, exe, options)
        if error:
            return [f'{name}: {error}']
    size = input_size(args, model)
    rng = random.Random(3)
    x = os.path.join(work, 'x.csv')
    with open(x, 'w') as f:
        for _ in range(samples):
            f.write(','.join(f'{rng.uniform(0, 1):.4f}' for _ in range(size)) + '\n')
    a = run([plain, 'predict', x])
    b = run([prof, 'predict', '--profile', x])
    if a.returncode or b.returncode:
        return [f'{name}: predict exited {a.returncode} and {b.returncode} (--profile): {b.stderr}']
    if a.stdout != b.stdout:
        failures.append(f'{name}: the profiled build predicts other numbers')
    print(b.stderr)
    rows, layers_share, whole = profile_rows(b.stderr)
    names = summary_layers(args, model)
    if list(rows) != names:
        failures.append(f'{name}: the profile rows are {list(rows)}, the layers {names}')
    for layer, row in rows.items():
        if row[0] != 'fused' and row[0] != samples:
            failures.append(f'{name}: {layer} has {row[0]} calls for {samples} samples')
    if whole is None or whole[0] != samples:
        failures.append(f'{name}: the whole calls are {whole}, not {samples}')
    failures += check_layer_sum(name, rows, layers_share, whole)
    if train_data:
        t = os.path.join(work, 't.csv')
        classes = summary(args, model)['output'][-1]
        with open(t, 'w') as f:
            for _ in range(train_data):
                f.write(','.join(f'{rng.uniform(0, 1):.4f}' for _ in range(size)) + f',{rng.randrange(classes)}\n')
        r = run([prof, 'train', '--data', t, '--epochs', '1', '--profile', '--save',
                 os.path.join(work, 'w.safetensors')])
        print(r.stderr)
        rows, layers_share, whole = profile_rows(r.stderr)
        batch = summary(args, model)['train']['batch']
        steps = -(-train_data // batch)
        if r.returncode or whole is None or whole[0] != steps:
            failures.append(f'{name}: train --profile: exit {r.returncode}, whole calls {whole}, '
                            f'not {steps} steps')
        if [n for n in rows if n != '(loss)'] != names or '(loss)' not in rows:
            failures.append(f'{name}: train --profile rows {list(rows)}')
        failures += check_layer_sum(f'{name} train', rows, layers_share, whole)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--runtime-include', required=True)
    ap.add_argument('--runtime-lib', required=True)
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--sanitize', action='store_true')
    ap.add_argument('--profile-model', action='append', default=[], dest='profile_models',
                    help='a model whose profile is checked (the first also trains)')
    ap.add_argument('--skip', action='append', default=[],
                    help='a model file name not to dump (a long compile)')
    ap.add_argument('paths', nargs='+', help='models (or directories of them) to dump')
    args = ap.parse_args()
    models = [m for m in model_files(args.paths) if os.path.basename(m) not in args.skip]
    failures = []
    with tempfile.TemporaryDirectory() as work:
        failures += check_dumps(args, models, os.path.join(work, 'dumps'))
        os.makedirs(os.path.join(work, 'refuse'))
        failures += check_refusals(args, models[0], os.path.join(work, 'refuse'))
        for k, model in enumerate(args.profile_models):
            d = os.path.join(work, f'profile{k}')
            os.makedirs(d)
            failures += check_profile(args, model, d, 200, 100 if k == 0 else 0)
            if k == 0 and has_llvm(args.cnngen):
                os.makedirs(os.path.join(d, 'llvm'))
                failures += check_profile(args, model, os.path.join(d, 'llvm'), 200, 100, llvm=True)
    for f in failures:
        print('FAIL:', f)
    if failures:
        return 1
    print(f'ok: {len(models)} models dumped, {len(args.profile_models)} profiled')
    return 0


if __name__ == '__main__':
    sys.exit(main())
