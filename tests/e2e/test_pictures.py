#!/usr/bin/env python3
"""The pictures: network diagrams drawn by Graphviz.

    test_pictures.py --cnngen BIN MODEL.cnn|DIR ...

For every model: --emit=svg is well-formed SVG with a node per layer (and
the input), an edge per input of each layer, each layer's name in its
node; --emit=png is a PNG (its signature, a header chunk with a size).
Skips with a message (77) without Graphviz's dot program."""
import argparse
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import SKIP, model_files, run  # noqa: E402

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


def check_png(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    if head[:8] != b'\x89PNG\r\n\x1a\n' or head[12:16] != b'IHDR':
        return ['not a PNG file']
    width, height = struct.unpack('>II', head[16:24])
    return [] if width >= 100 and height >= 100 else [f'a PNG of {width}x{height}']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('paths', nargs='+')
    args = ap.parse_args()
    if shutil.which('dot') is None:
        print('SKIPPED: no Graphviz dot program (scripts/install-deps installs graphviz)')
        return SKIP
    problems, count = [], 0
    with tempfile.TemporaryDirectory() as work:
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
    print(f'{count} models drawn as SVG and PNG: {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
