#!/usr/bin/python3
"""The instruction-set clones of --vector-width auto, forced one by one.

    test_isa.py CNNGEN SOURCE_DIR RUNTIME_INCLUDE RUNTIME_LIB [CC ...]

For a few models (every layer family among them), cnngen's default C
(inference only: the training step's clones, four times the compile time,
are checked by train_isa_*) is built as the README says (cc -O2, every
clone, the CPU picks), with
-std=c99 -Wall -Wextra -pedantic -Werror, and run with CNNGEN_ISA naming
each clone in turn: the program must say (m_isa) that it runs the clone
named, when this CPU can run it, and another one when it cannot; the same
file built with -DCNNGEN_ONLY_<CLONE> (and -DCNNGEN_PORTABLE: plain
loops) must run that clone alone; -O3 -march=native must build too.
Every build's outputs must agree with the 4-float clone's to 1e-5
relative.  A small model (seed42) is one inlined version, 'inline',
and built without FMA on x86-64 another for AVX2 and FMA, 'inline_avx2',
which the CPU picks when it can run it.  A clone this CPU cannot run is
reported as skipped, never as passed.  Each compiler named (gcc, clang)
builds all of it.

Where cnngen has the LLVM backend and the machine is x86-64, the same
models' multiversioned object (--emit=obj --target x86_64-pc-linux-gnu:
the AVX-512, AVX2 and SSE clones in one object) is checked the same way:
each clone forced by CNNGEN_ISA, and the choice without it.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e_common import ISA_NEEDS, cpu_flags, has_llvm, missing_for  # noqa: E402

# (bench/seed42.cnn is small: one inlined version, 'inline' in every build)
MODELS = ['bench/lenet.cnn', 'bench/seed42.cnn', 'examples/residual.cnn',
          'examples/depthwise.cnn', 'tests/gradcheck/conv_wide_1d3d.cnn']
CLONES = ['avx512', 'avx2', 'generic']
WARNINGS = ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Werror']


def run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def outputs_agree(a, b):
    la, lb = a.strip().split('\n'), b.strip().split('\n')
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        va, vb = [float(v) for v in x.split(',')], [float(v) for v in y.split(',')]
        if len(va) != len(vb) or any(abs(p - q) > 1e-5 * abs(q) + 1e-6 for p, q in zip(va, vb)):
            return False
    return True


def multiversioned_object(cnngen, cc, model, work, src, include, lib, problems):
    """MODEL's object for x86-64 machines unknown, linked with the driver:
    the program, or None (and a problem)."""
    obj, exe = os.path.join(work, 'm.o'), os.path.join(work, 'multiversioned')
    gen = run([cnngen, model, '--prefix', 'm', '--no-train', '--emit=obj', '--target',
               'x86_64-pc-linux-gnu', '-o', obj])
    if gen.returncode != 0:
        problems.append(f'{model}: the multiversioned object: cnngen failed: {gen.stderr}')
        return None
    b = run([cc] + WARNINGS + ['-O2', os.path.join(src, 'tests/helpers/isa_driver.c'), obj,
                                  '-I', work, '-I', include, os.path.join(lib, 'libcnnrt.a'),
                                  '-lz', '-lm', '-o', exe])
    if b.returncode != 0:
        problems.append(f'{model}: the multiversioned object does not link:\n{b.stderr[:2000]}')
        return None
    return exe


def small_versions(cc, build, check, skipped):
    """A small model's versions: the compiler's ('inline'), and built with
    -O2 (no FMA) one for AVX2 and FMA ('inline_avx2') that the CPU picks
    when it can run it; CNNGEN_ISA=inline keeps the compiler's."""
    plain = build(cc, 'small', ['-O2'])
    if plain:
        check(plain, f'{cc} -O2 CNNGEN_ISA=inline', 'inline', 'inline')
        runs_avx2 = not missing_for('avx2', cpu_flags())
        if not runs_avx2:
            skipped.add('inline_avx2')
        check(plain, f'{cc} -O2', 'inline_avx2' if runs_avx2 else 'inline')
        check(plain, f'{cc} -O2 CNNGEN_ISA=avx2', 'inline_avx2' if runs_avx2 else 'inline',
              'avx2')
    for flags in (['-O2', '-DCNNGEN_PORTABLE'], ['-O3', '-march=native']):
        exe = build(cc, 'small' + flags[-1], flags)
        if exe:
            check(exe, f'{cc} {" ".join(flags)}', 'inline')


def widest(flags):
    """The clone a CPU with these flags picks by itself."""
    return next(c for c in CLONES if not missing_for(c, flags))


def main():
    cnngen, src, include, lib = sys.argv[1:5]
    compilers = sys.argv[5:] or ['cc']
    flags = cpu_flags()
    multiversioned = has_llvm(cnngen) and os.uname().machine == 'x86_64'
    if not multiversioned:
        print('SKIPPED: the multiversioned object: needs the LLVM backend and an x86-64 machine')
    problems, checked, skipped = [], 0, set()
    with tempfile.TemporaryDirectory() as work:
        for model in MODELS:
            name = os.path.splitext(os.path.basename(model))[0]
            c = os.path.join(work, 'm.c')
            gen = run([cnngen, os.path.join(src, model), '--prefix', 'm', '--no-train', '-o', c])
            if gen.returncode != 0:
                problems.append(f'{model}: cnngen failed: {gen.stderr}')
                continue

            def build(cc, tag, extra):
                exe = os.path.join(work, f'{name}_{os.path.basename(cc)}_{tag}')
                b = run([cc] + WARNINGS + extra + [c, os.path.join(src, 'tests/helpers/isa_driver.c'),
                        '-I', work, '-I', include, os.path.join(lib, 'libcnnrt.a'), '-lz', '-lm',
                        '-o', exe])
                if b.returncode != 0:
                    problems.append(f'{model} {cc} {" ".join(extra)}: does not build:\n'
                                    f'{b.stderr[:2000]}')
                    return None
                return exe

            small = model == 'bench/seed42.cnn'

            def check(exe, label, want, isa_env=None):
                nonlocal checked
                env = dict(os.environ)
                env.pop('CNNGEN_ISA', None)
                if isa_env is not None:
                    env['CNNGEN_ISA'] = isa_env
                r = run([exe], env)
                if r.returncode != 0:
                    problems.append(f'{model} {label}: exit {r.returncode}: {r.stderr[:500]}')
                    return
                got, out = r.stdout.split('\n', 1)
                checked += 1
                if want and got != want:
                    problems.append(f'{model} {label}: runs {got}, not {want}')
                elif not want and got == isa_env:
                    problems.append(f'{model} {label}: runs {got}, which this CPU cannot run')
                if not outputs_agree(out, reference):
                    problems.append(f'{model} {label} ({got}): outputs differ from the generic '
                                    f'clone:\n{out[:300]}\nagainst\n{reference[:300]}')

            for cc in compilers:
                ref = build(cc, 'generic', ['-O2', '-DCNNGEN_ONLY_GENERIC'])
                if not ref:
                    continue
                r = run([ref])
                reference = r.stdout.split('\n', 1)[1] if r.returncode == 0 else ''
                check(ref, f'{cc} -DCNNGEN_ONLY_GENERIC', 'inline' if small else 'generic')
                if small:
                    small_versions(cc, build, check, skipped)
                    continue
                plain = build(cc, 'plain', ['-O2'])
                if plain:
                    for clone in CLONES:
                        if not missing_for(clone, flags):
                            check(plain, f'{cc} -O2 CNNGEN_ISA={clone}', clone, clone)
                        else:
                            skipped.add(clone)
                            check(plain, f'{cc} -O2 CNNGEN_ISA={clone}', None, clone)
                for clone in ['avx512', 'avx2']:
                    if not missing_for(clone, flags):
                        exe = build(cc, clone, ['-O2', f'-DCNNGEN_ONLY_{clone.upper()}'])
                        if exe:
                            check(exe, f'{cc} -DCNNGEN_ONLY_{clone.upper()}', clone)
                exe = build(cc, 'scalar', ['-O2', '-DCNNGEN_PORTABLE'])
                if exe:
                    check(exe, f'{cc} -DCNNGEN_PORTABLE', 'scalar')
                exe = build(cc, 'native', ['-O3', '-march=native'])
                if exe:
                    check(exe, f'{cc} -O3 -march=native', None)
            if multiversioned and not small:
                exe = multiversioned_object(cnngen, compilers[0], os.path.join(src, model), work,
                                            src, include, lib, problems)
                if exe:
                    label = 'multiversioned object'
                    check(exe, label, widest(flags))
                    for clone in CLONES:
                        runs = not missing_for(clone, flags)
                        if not runs:
                            skipped.add(clone)
                        check(exe, f'{label} CNNGEN_ISA={clone}', clone if runs else None, clone)
    for clone in sorted(skipped):
        needs = ISA_NEEDS[clone.replace('inline_', '')]
        print(f'SKIPPED: the {clone} clone: this CPU cannot run it '
              f'(needs {", ".join(needs)}); checked only that it is never picked')
    for p in problems:
        print('FAIL:', p)
    print(f'{checked} runs checked, {len(problems)} problems')
    return 1 if problems or not checked else 0


if __name__ == '__main__':
    sys.exit(main())
