#!/usr/bin/python3
"""Pathological inputs: cnngen must finish quickly with exit status 0, 1
or 2, never crash or hang.

    run_stress.py CNNGEN [--time-scale K]

Limits (times K, for sanitizer builds): 2 s for each input, a
20,000-layer model checked in under 3 s and compiled to C at one vector width (with its training
code: about 100 MB of C) in under 30 s.  They are there for a quadratic
pass, which takes minutes on these inputs, not for speed: the largest take
0.4 s and 5 s alone, and a loaded 2-core machine running the other tests
beside them took the 5 s case past an earlier 10 s limit.
"""
import os
import random
import subprocess
import sys
import tempfile
import time


def cases():
    head = 'model m\ninput [4]\n'
    yield '200,000 nested parentheses', (head + 'dense(' + '(' * 200000 + '1' +
                                          ')' * 200000 + ')\n').encode(), 2.0
    yield '200,000 unclosed parentheses', (head + 'dense' + '(' * 200000 + '\n').encode(), 2.0
    yield '200,000 minus signs', (head + 'dense(' + '-' * 200000 + '1)\n').encode(), 2.0
    yield '1 MB identifier', (head + 'a' * (1 << 20) + '(1)\n').encode(), 2.0
    yield '1 MB label', (head + 'b' * (1 << 20) + ': dense(1)\n').encode(), 2.0
    yield 'NUL bytes', (head + '\0dense(\0 1)\0\n' + '\0' * 1000).encode(), 2.0
    rng = random.Random(7)
    yield 'invalid UTF-8', head.encode() + bytes(rng.randrange(256) for _ in range(100000)), 2.0
    yield 'random ASCII', bytes(rng.choice(b'()[]{},=:;+-*/ \n\tabz019#.e') for _ in range(200000)), 2.0
    layers = ''.join(f'l{i}: dense(4, activation=relu)\n' if i % 3 else 'add(l1)\n'
                     for i in range(1, 20001))
    big = (head + 'l0: dense(4, activation=relu)\n' + layers + 'train { batch = 8 }\n').encode()
    yield '20,000-layer model', big, 3.0
    yield '20,000-layer model to C', big, 30.0
    yield '20,000 errors', (head + 'dense(0)\n' * 20000).encode(), 2.0
    yield '100,000 empty statements', (head + ';' * 100000 + '\n' * 100000 + 'dense(1)\n').encode(), 2.0
    # a left-deep tree as long as the line: its depth is bounded, not the stack's
    yield '300,000 terms 1+1+...+1', (head + 'dense(' + '+'.join(['1'] * 300000) + ')\n').encode(), 2.0
    yield '300,000 factors in a constant', (head + 'const k = 1' + '*1' * 300000 + '\ndense(k)\n').encode(), 2.0
    yield 'deep weights list', (head + 'dense(1, weights=' + '[' * 5000 + '1' + ']' * 5000 + ')\n').encode(), 2.0


def main():
    cnngen = sys.argv[1]
    scale = float(sys.argv[sys.argv.index('--time-scale') + 1]) if '--time-scale' in sys.argv else 1.0
    failed = total = 0
    with tempfile.TemporaryDirectory() as work:
        for name, data, limit in cases():
            total += 1
            path = os.path.join(work, 'stress.cnn')
            with open(path, 'wb') as f:
                f.write(data)
            start = time.monotonic()
            command = [cnngen, path, '--check']
            if name.endswith('to C'):           # code generation: no quadratic pass either
                # one vector width: the default writes every instruction-set
                # clone, four times the bytes (400 MB here) for the same passes
                command = [cnngen, path, '--vector-width', '8', '-o',
                           os.path.join(work, 'stress.c')]
            try:
                p = subprocess.run(command, capture_output=True, timeout=30 * scale)
                code = p.returncode
            except subprocess.TimeoutExpired:
                code = 'timeout'
            seconds = time.monotonic() - start
            ok = code in (0, 1, 2) and seconds < limit * scale
            if name.startswith('20,000-layer model'):
                ok = ok and code == 0
            if name.startswith('300,000'):       # refused with its reason, not a crash
                ok = ok and code == 1 and b'operations deep; the limit is 10000' in p.stderr
            print(f'{"ok  " if ok else "FAIL"} {name}: exit {code}, {seconds:.3f} s '
                  f'(limit {limit * scale:g} s)')
            failed += not ok
    print(f'{total - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
