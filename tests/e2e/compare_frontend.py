#!/usr/bin/python3
"""Compare cnngen's front end with the reference implementation.

    compare_frontend.py --cnngen BIN --oracle cnnref.py [--min-valid N]
                        [--deviations FILE] MODEL.cnn|DIR ...

For every model, both tools check it: `cnngen --check` against
`cnnref.py check` (the exit status and every diagnostic line must be the
same), and for a valid model `cnngen --summary --json` against
`cnnref.py summary --json` (model name, input and output shapes, and for
every layer its kind, name, output shape, parameter counts and line).

The reference runs all models in one process (`cnnref.py batch`).  A
deviations file lists models whose difference is deliberate, one
`NAME.cnn: reason` per line; those must still differ (so the list cannot
go stale silently) and are reported, not failed.  --ours-only REGEX names
an error that cnngen gives on purpose where the reference gives none (a
reference bug, see docs/language.md); such diagnostics are set aside
before comparing, and the model is counted as a known deviation.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

from e2e_common import model_files

FIELDS = ('layer', 'name', 'output_shape', 'params', 'trainable', 'fixed', 'line')



def run_oracle(oracle, files, work):
    lines, outs = [], []
    for i, f in enumerate(files):
        c_out, c_err = os.path.join(work, f'{i}.check.out'), os.path.join(work, f'{i}.check.err')
        s_out, s_err = os.path.join(work, f'{i}.sum.out'), os.path.join(work, f'{i}.sum.err')
        lines.append(f'{shlex.quote(c_out)} {shlex.quote(c_err)} check {shlex.quote(f)}')
        lines.append(f'{shlex.quote(s_out)} {shlex.quote(s_err)} summary --json {shlex.quote(f)}')
        outs.append((c_err, s_out))
    env = dict(os.environ, CNNREF_THREADS='1')
    proc = subprocess.run(['/usr/bin/python3', oracle, 'batch'], input='\n'.join(lines) + '\n',
                          capture_output=True, text=True, env=env)
    codes = [int(x) for x in proc.stdout.split()]
    if len(codes) != 2 * len(files):
        sys.exit(f'compare_frontend: the reference batch failed:\n{proc.stderr}')
    results = []
    for i, (c_err, s_out) in enumerate(outs):
        with open(c_err, encoding='utf-8', errors='replace') as f:
            err = f.read()
        summary = None
        if codes[2 * i + 1] == 0:
            with open(s_out) as f:
                summary = json.load(f)
        results.append((codes[2 * i], err, summary))
    return results


def run_cnngen(binary, path):
    check = subprocess.run([binary, path, '--check'], capture_output=True, timeout=60)
    err = check.stderr.decode('utf-8', errors='replace')
    summary = None
    if check.returncode == 0:
        s = subprocess.run([binary, path, '--summary', '--json'], capture_output=True, timeout=60)
        if s.returncode != 0:
            return check.returncode, err, 'summary failed: ' + s.stderr.decode(errors='replace')
        summary = json.loads(s.stdout)
    return check.returncode, err, summary


def split_diagnostics(text):
    """Diagnostics as groups: a located one is 3 lines (message, source, caret)."""
    lines = text.split('\n')
    groups, i = [], 0
    while i < len(lines) and lines[i]:
        located = re.match(r'^.*?:\d+:\d+: (error|warning): ', lines[i])
        size = 3 if located and 'not valid UTF-8' not in lines[i] else 1
        groups.append('\n'.join(lines[i:i + size]) + '\n')
        i += size
    return groups


def set_aside(ours_err, ref_err, patterns):
    """Drop cnngen's deliberate extra errors; returns (rest, dropped)."""
    kept, dropped = [], 0
    for group in split_diagnostics(ours_err):
        header = group.split('\n', 1)[0]
        if any(re.search(p, header) for p in patterns) and header not in ref_err:
            dropped += 1
        else:
            kept.append(group)
    return ''.join(kept), dropped


def summary_diff(ours, ref):
    if isinstance(ours, str):
        return [ours]
    diffs = []
    for key in ('model', 'input', 'output', 'params', 'trainable', 'fixed'):
        if ours.get(key) != ref.get(key):
            diffs.append(f'{key}: cnngen {ours.get(key)!r}, reference {ref.get(key)!r}')
    if len(ours['layers']) != len(ref['layers']):
        diffs.append(f'{len(ours["layers"])} layers, reference {len(ref["layers"])}')
    for a, b in zip(ours['layers'], ref['layers']):
        for key in FIELDS:
            if a.get(key) != b.get(key):
                diffs.append(f'layer {b["name"]}: {key}: cnngen {a.get(key)!r}, '
                             f'reference {b.get(key)!r}')
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--min-valid', type=int, default=0)
    ap.add_argument('--min-invalid', type=int, default=0)
    ap.add_argument('--deviations')
    ap.add_argument('--ours-only', action='append', default=[])
    ap.add_argument('paths', nargs='+')
    args = ap.parse_args()
    files = model_files(args.paths)
    deviations = {}
    if args.deviations:
        with open(args.deviations) as f:
            for line in f:
                if line.strip() and not line.startswith('#'):
                    name, reason = line.split(':', 1)
                    deviations[name.strip()] = reason.strip()
    with tempfile.TemporaryDirectory() as work:
        ref = run_oracle(args.oracle, files, work)
    failures, valid, invalid, deviated = 0, 0, 0, 0
    for path, (code, err, summary) in zip(files, ref):
        ours_code, ours_err, ours_summary = run_cnngen(args.cnngen, path)
        problems = []
        ours_err, dropped = set_aside(ours_err, err, args.ours_only)
        if dropped and ours_code == 1 and code == 0 and 'error:' not in ours_err:
            ours_code = 0               # the set-aside error was the only one
            ours_summary = summary      # the reference's summary has no shapes for it
        name = os.path.basename(path)
        if dropped and name not in deviations:
            deviations[name] = 'cnngen reports an error the reference does not'
        if code == 3 and dropped:
            code, err = ours_code, ours_err          # the reference crashed on it
        if code == 3:
            problems.append('the reference crashed: ' + err.strip().splitlines()[-1])
        if ours_code != code:
            problems.append(f'exit status: cnngen {ours_code}, reference {code}')
        if ours_err != err:
            problems.append('diagnostics differ:\n--- cnngen\n' + ours_err +
                            '--- reference\n' + err)
        if summary is not None and ours_summary is not None:
            problems += summary_diff(ours_summary, summary)
        if name in deviations:
            deviated += 1
            if not problems and not dropped:
                print(f'STALE {path}: listed as a deviation ({deviations[name]}) but agrees')
                failures += 1
            elif problems and dropped:
                failures += 1
                print(f'FAIL {path} (besides the set-aside errors)')
                for p in problems:
                    print('  ' + p.replace('\n', '\n  '))
            continue
        if problems:
            failures += 1
            print(f'FAIL {path}')
            for p in problems:
                print('  ' + p.replace('\n', '\n  '))
        elif code == 0:
            valid += 1
        else:
            invalid += 1
    print(f'{len(files)} models: {valid} valid and {invalid} invalid agree with the reference, '
          f'{deviated} known deviations, {failures} differ')
    ok = failures == 0 and valid >= args.min_valid and invalid >= args.min_invalid
    if valid < args.min_valid:
        print(f'too few valid models agree: {valid} < {args.min_valid}')
    if invalid < args.min_invalid:
        print(f'too few invalid models agree: {invalid} < {args.min_invalid}')
    print(f'{len(files) - failures} passed, {failures} failed')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
