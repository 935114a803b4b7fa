#!/usr/bin/env python3
"""The pictures: network diagrams drawn by Graphviz, training curves
drawn by gnuplot.

    test_pictures.py --cnngen BIN --runtime-lib DIR MODEL.cnn|DIR ...

Diagrams, for every model: --emit=svg is well-formed SVG with a node per
layer (and the input), an edge per input of each layer, each layer's
name in its node; --emit=png is a PNG (its signature, a header chunk with
a size).  Curves: a model trained with validation and a schedule, its
--log drawn by the program's plot command: the SVG has a curve for the
loss, the metric, their validation values and the learning rate, each
with a point per epoch; the PNG is one; a file that is no log, and a
machine without gnuplot, get messages.  A part skips with a message (77)
without its program."""
import argparse
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import SKIP, model_files, run, sanitizer_flags  # noqa: E402

SVG = '{http://www.w3.org/2000/svg}'


def check_svg(path, summary, edges):
    """Problems with the diagram in PATH against the model's summary."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return [f'not well-formed SVG: {e}']
    groups = list(root.iter(SVG + 'g'))
    nodes = [g for g in groups if g.get('class') == 'node']
    drawn = [g for g in groups if g.get('class') == 'edge']
    problems = []
    if len(nodes) != len(summary['layers']) + 1:
        problems.append(f'{len(nodes)} nodes for {len(summary["layers"])} layers and the input')
    if len(drawn) != edges:
        problems.append(f'{len(drawn)} edges drawn, the graph has {edges}')
    text = ' '.join(t.text or '' for t in root.iter(SVG + 'text'))
    missing = [layer['name'] for layer in summary['layers'] if layer['name'] not in text]
    if missing:
        problems.append(f'layers not named in the picture: {", ".join(missing)}')
    return problems


def check_png(path, least=100):
    with open(path, 'rb') as f:
        head = f.read(24)
    if head[:8] != b'\x89PNG\r\n\x1a\n' or head[12:16] != b'IHDR':
        return ['not a PNG file']
    width, height = struct.unpack('>II', head[16:24])
    return [] if width >= least and height >= least else [f'a PNG of {width}x{height}']


CURVES_MODEL = """model curves
input [10, 1]
conv1d(4, 3, activation=relu)
dense(1)
train {
  loss             = mse
  optimizer        = adam(lr=0.01)
  batch            = 16
  epochs           = 7
  metrics          = [mae]
  validation_split = 0.25
  schedule         = step_decay(every=2, gamma=0.5)
}
"""
EPOCHS = 7


def plotted_curves(path):
    """{title: points} of each curve in gnuplot's SVG (a point more than
    the data: the key's sample)."""
    root = ET.parse(path).getroot()
    curves = []
    for g in root.iter(SVG + 'g'):
        if (g.get('id') or '').startswith('gnuplot_plot_'):
            title = g.find(SVG + 'title')
            curves.append((title.text if title is not None else '?',
                           len(list(g.iter(SVG + 'use')))))
    return curves


def check_curves(args, work):
    """Train the small model with --log, plot it, look at the pictures."""
    model = os.path.join(work, 'curves.cnn')
    with open(model, 'w') as f:
        f.write(CURVES_MODEL)
    with open(os.path.join(work, 'series.csv'), 'w') as f:
        f.write('v\n' + ''.join('%.4f\n' % (0.5 + 0.4 * ((i * 37) % 23) / 23) for i in range(90)))
    exe = os.path.join(work, 'curves')
    r = run([args.cnngen, model, '--main', '-o', exe + '.c'])
    r = r.returncode == 0 and run(['cc', '-O2'] + sanitizer_flags(args) +
                                  [exe + '.c', '-I', args.runtime_include,
                                   os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm',
                                   '-o', exe])
    if not r or r.returncode != 0:
        return [f'the curves program does not build: {r and r.stderr[-500:]}']
    log = os.path.join(work, 'log.csv')
    r = run([exe, 'train', '--data', f'series:{work}/series.csv:v:10', '--log', log, '--quiet',
             '--save', os.path.join(work, 'w.safetensors')])
    if r.returncode != 0:
        return [f'training failed: {r.stderr[-300:]}']
    problems = []
    for kind in ('svg', 'png'):
        out = os.path.join(work, 'curves.' + kind)
        r = run([exe, 'plot', '--log', log, '-o', out])
        if r.returncode != 0 or not os.path.exists(out):
            problems.append(f'plot -o curves.{kind} failed: {r.stderr[-300:]}')
        elif kind == 'png':
            problems += ['curves.png: ' + p for p in check_png(out)]
    if os.path.exists(os.path.join(work, 'curves.svg')):
        curves = plotted_curves(os.path.join(work, 'curves.svg'))
        want = [('training', EPOCHS + 1), ('validation', EPOCHS + 1)] * 2 + [('lr', EPOCHS + 1)]
        if sorted(curves) != sorted(want):
            problems.append(f'curves.svg has curves {curves}, not {want}')
    r = run([exe, 'plot', '--log', model, '-o', os.path.join(work, 'bad.png')])
    if r.returncode != 1 or 'is not a training log' not in r.stderr:
        problems.append(f'plot of a file that is no log: exit {r.returncode}, {r.stderr!r}')
    r = run([exe, 'plot', '--log', log, '-o', os.path.join(work, 'x.png')],
            env=dict(os.environ, PATH='/nonexistent'))
    if r.returncode != 2 or 'plot needs gnuplot' not in r.stderr or \
            os.path.exists(os.path.join(work, 'x.png')):
        problems.append(f'plot without gnuplot: exit {r.returncode}, {r.stderr!r}')
    return problems


def read_png(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB PNG, decoded here
    with zlib (the five filter types of the PNG specification)."""
    with open(path, 'rb') as f:
        data = f.read()
    pos, idat, width = 8, b'', 0
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            width, height = struct.unpack('>II', body[:8])
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), width * 3, [], bytearray(width * 3)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
                    else b if abs(p - b) <= abs(p - c) else c][kind]
            line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, 3)])
        prev = line
    return width, height, rows


def check_filters(args, work):
    """The convolutions' kernels as pictures: the hand-made edge filters
    without weights (the learned ones skipped with a warning), their
    colours where the weights are -1 and 1, and the pictures' sizes."""
    problems = []
    out = os.path.join(work, 'edges')
    r = run([args.cnngen, os.path.join(args.examples, 'edges.cnn'), '--emit=filters', '-o', out])
    if r.returncode != 0 or 'the filters of \'conv2d_3\' are learned' not in r.stderr:
        return [f'--emit=filters of edges.cnn: exit {r.returncode}, {r.stderr[-300:]}']
    if sorted(os.listdir(out)) != ['horizontal.png', 'vertical.png']:
        problems.append(f'edges.cnn without weights drew {sorted(os.listdir(out))}')
    # vertical = [[-1, 1], [-1, 1]]: blue on the left, red on the right;
    # horizontal = [[-1, -1], [1, 1]]: blue above, red below (2x2, 48 px a weight)
    for name, first, second in (('vertical', (0, 0), (60, 0)), ('horizontal', (0, 0), (0, 60))):
        width, height, rows = read_png(os.path.join(out, name + '.png'))
        at = [rows[4 + y + 10][4 + x + 10] for x, y in (first, second)]
        if (width, height) != (104, 104) or at != [(0, 0, 255), (255, 0, 0)]:
            problems.append(f'{name}.png: {width}x{height}, colours {at}: not -1 blue, +1 red')
    w = os.path.join(work, 'video3d.safetensors')
    run(['/usr/bin/python3', args.oracle, 'init', os.path.join(args.examples, 'video3d.cnn'),
         '--out', w])
    out = os.path.join(work, 'video3d')
    r = run([args.cnngen, os.path.join(args.examples, 'video3d.cnn'), '--emit=filters',
             '--weights', w, '-o', out])
    summary = json.loads(run([args.cnngen, os.path.join(args.examples, 'video3d.cnn'),
                              '--summary', '--json']).stdout)
    convs = sorted(l['name'] + '.png' for l in summary['layers'] if l['layer'] == 'conv3d')
    if r.returncode != 0 or sorted(os.listdir(out)) != convs:
        problems.append(f'video3d.cnn with weights drew {os.listdir(out) if os.path.isdir(out) else []}'
                        f', not {convs}: {r.stderr[-300:]}')
    for name in convs if not problems else []:
        problems += [f'{name}: {p}' for p in check_png(os.path.join(out, name), 20)]
    out = os.path.join(work, 'series')
    r = run([args.cnngen, os.path.join(args.examples, 'series_filters.cnn'), '--emit=filters',
             '-o', out])
    if r.returncode != 0 or not os.path.isdir(out) or len(os.listdir(out)) < 2:
        problems.append(f'series_filters.cnn: {r.stderr[-300:]}')
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--runtime-include', required=True)
    ap.add_argument('--runtime-lib', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--sanitize', action='store_true',
                    help='the runtime is built with ASan and UBSan: so is the curves program')
    ap.add_argument('paths', nargs='+')
    args = ap.parse_args()
    args.examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples')
    missing = [p for p in ('dot', 'gnuplot') if shutil.which(p) is None]
    if missing:
        print(f'SKIPPED: no {" and no ".join(missing)} (scripts/install-deps installs graphviz '
              f'and gnuplot-nox)')
        return SKIP
    problems, count = [], 0
    with tempfile.TemporaryDirectory() as work:
        problems += check_curves(args, work)
        problems += check_filters(args, work)
        for model in model_files(args.paths):
            name = os.path.basename(model)[:-4]
            summary = json.loads(run([args.cnngen, model, '--summary', '--json']).stdout)
            dot = run([args.cnngen, model, '--emit=dot', '-o', '-']).stdout
            edges = len(re.findall(r'^  n\d+ -> n\d+;$', dot, re.M))
            for kind in ('svg', 'png'):
                out = os.path.join(work, f'{name}.{kind}')
                r = run([args.cnngen, model, f'--emit={kind}', '-o', os.path.join(work, name)])
                if r.returncode != 0 or not os.path.exists(out):
                    problems.append(f'{name}: --emit={kind} failed: {r.stderr[-300:]}')
                    continue
                found = check_svg(out, summary, edges) if kind == 'svg' else check_png(out)
                problems += [f'{name}.{kind}: {p}' for p in found]
            count += 1
    for p in problems:
        print('FAIL: ' + p)
    print(f'{count} models drawn as SVG and PNG, a training log as curves, the filters of edges, '
          f'video3d and series_filters: {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
