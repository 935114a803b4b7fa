#!/usr/bin/python3
"""The generated code, byte for byte, against hashes recorded before a
refactor: a change to the compiler's structure must not change its output
unless a commit says why (then record anew with --update and say so).

    codegen_golden.py CNNGEN SOURCE_DIR [--update]

Models: every example, bench and gradient-check model, and the generated
models kept in tests/golden/codegen/ (fixed files, so that a change to the
generator does not change them).  Variants of each: the C with training,
--main with 16-wide vectors under another prefix, --no-train with plain
loops, baked weights (examples and bench: deterministic values through a
safetensors file this script writes) and, where this cnngen has the LLVM
backend of the version the hashes were recorded with, the LLVM IR for a
fixed target (no host CPU features in it) of all but the generated
models and those whose C passes 1 MB (fashion's and video3d's): one
version at 4 floats, and for lenet and residual the multiversioned
module.

Each command runs in a scratch folder on a copy named after the model, so
the banner's command line is the same on every machine.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

from e2e_common import write_safetensors

GOLDEN = 'tests/golden/codegen.sha256'
TARGET = 'x86_64-pc-linux-gnu'
C_VARIANTS = {
    'c': ['-o', '-'],
    'c_main_w16': ['--main', '--vector-width', '16', '--prefix', 'golden', '-o', '-'],
    'c_notrain_w0': ['--no-train', '--vector-width', '0', '-o', '-'],
}
BAKED = ['--weights', 'weights.safetensors', '--main', '-o', '-']
# One version at 4 floats; and for a few models the multiversioned
# module (the AVX-512, AVX2 and SSE clones: three times the build time,
# so not for every model).
LLVM = ['--emit=llvm', '--target', TARGET, '--vector-width', '4', '-o', '-']
LLVM_MULTI = ['--emit=llvm', '--target', TARGET, '-o', '-']
MULTIVERSIONED = {'bench/lenet.cnn', 'examples/residual.cnn'}
# LLVM IR for all but the fixed generated models and the models whose C
# passes LLVM_MAX_C bytes (fashion's, video3d's): their C pins the loop IR,
# and the LLVM printer of the same IR is pinned by the others' modules.
# Those took 1.5 of the test's 2 minutes on CI's 2 cores.
C_ONLY = 'tests/golden/codegen/'
LLVM_MAX_C = 1 << 20


def models(src):
    """(key, path, kind): kind 'full' for examples and bench, else 'generated'."""
    out = []
    for folder, kind in [('examples', 'full'), ('examples/temperature', 'full'),
                         ('examples/fashion', 'full'), ('bench', 'full'),
                         ('tests/gradcheck', 'generated'), ('tests/golden/codegen', 'generated')]:
        path = os.path.join(src, folder)
        for name in sorted(os.listdir(path)):
            if name.endswith('.cnn'):
                out.append((f'{folder}/{name}', os.path.join(path, name), kind))
    return out


def tensor_table(c_text):
    """(name, shape) of each parameter tensor, from the generated C's table."""
    rows = re.findall(r'\{"([^"]+)", (\d), \{([\d, ]+)\}, \d+L, \d\}', c_text)
    return [(name, [int(d) for d in dims.split(',')][:int(rank)]) for name, rank, dims in rows]


def write_weights(path, tensors):
    """Deterministic values for (name, shape) tensors, as a safetensors file."""
    with_values, k = [], 0
    for name, shape in tensors:
        count = 1
        for d in shape:
            count *= d
        with_values.append((name, shape, [((k + i) * 7919 % 1999) / 1999.0 - 0.5
                                          for i in range(count)]))
        k += count
    write_safetensors(path, with_values)


def run(cnngen, work, args):
    p = subprocess.run([cnngen] + args, cwd=work, capture_output=True)
    if p.returncode != 0:
        return f'exit-{p.returncode}', p.stdout
    return hashlib.sha256(p.stdout).hexdigest(), p.stdout


def llvm_version(cnngen):
    text = subprocess.run([cnngen, '--version'], capture_output=True, text=True).stdout
    m = re.search(r'LLVM backend: LLVM (\d[\d.]*)', text)
    return m.group(1) if m else None


def record(cnngen, src):
    """{(model, variant): hash} for every model and variant this cnngen can make."""
    hashes = {}
    llvm = llvm_version(cnngen)
    work = tempfile.mkdtemp()
    try:
        for key, path, kind in models(src):
            stem = os.path.basename(path)
            shutil.copy(path, os.path.join(work, stem))
            c_text = b''
            for variant, args in C_VARIANTS.items():
                hashes[(key, variant)], out = run(cnngen, work, [stem] + args)
                if variant == 'c':
                    c_text = out
            llvm_too = llvm and not key.startswith(C_ONLY) and len(c_text) <= LLVM_MAX_C
            if kind == 'full':
                write_weights(os.path.join(work, 'weights.safetensors'),
                              tensor_table(c_text.decode(errors='replace')))
                hashes[(key, 'c_baked')], _ = run(cnngen, work, [stem] + BAKED)
                if llvm_too:
                    hashes[(key, f'llvm{llvm}_baked')], _ = run(
                        cnngen, work, [stem] + BAKED[:-2] + LLVM)
            if llvm_too:
                hashes[(key, f'llvm{llvm}')], _ = run(cnngen, work, [stem] + LLVM)
            if llvm_too and key in MULTIVERSIONED:
                hashes[(key, f'llvm{llvm}_multi')], _ = run(cnngen, work, [stem] + LLVM_MULTI)
            os.remove(os.path.join(work, stem))
    finally:
        shutil.rmtree(work)
    return hashes


def main():
    cnngen, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    update = '--update' in sys.argv[3:]
    golden = os.path.join(src, GOLDEN)
    hashes = record(cnngen, src)
    if update:
        with open(golden, 'w') as f:
            for (key, variant), h in sorted(hashes.items()):
                f.write(f'{h} {key} {variant}\n')
        print(f'recorded {len(hashes)} outputs in {GOLDEN}')
        return 0
    want = {}
    with open(golden) as f:
        for line in f:
            h, key, variant = line.split()
            want[(key, variant)] = h
    passed = failed = skipped = 0
    for (key, variant), h in sorted(want.items()):
        if (key, variant) not in hashes:
            # LLVM IR recorded with another LLVM, or no LLVM backend here
            skipped += 1
            continue
        if hashes[(key, variant)] == h:
            passed += 1
        else:
            failed += 1
            print(f'FAIL: {key} {variant}: output changed ({hashes[(key, variant)][:16]}, '
                  f'recorded {h[:16]})')
    new = [k for k in hashes if k not in want]
    for key, variant in sorted(new):
        failed += 1
        print(f'FAIL: {key} {variant}: not recorded (run with --update and say why)')
    if skipped:
        print(f'skipped {skipped} outputs: recorded with another LLVM version than this '
              f'cnngen\'s ({llvm_version(cnngen) or "none"})')
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
