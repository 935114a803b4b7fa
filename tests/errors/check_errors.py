#!/usr/bin/python3
"""Golden diagnostics: every tests/errors/NAME.cnn has NAME.expected, the
exit status of `cnngen NAME.cnn --check` on its first line ("exit N"),
then its stderr exactly.  Run from any directory; cnngen is run inside
tests/errors so messages name the file as NAME.cnn.

    check_errors.py CNNGEN            compare
    check_errors.py CNNGEN --update   rewrite the .expected files
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cnngen, name):
    p = subprocess.run([cnngen, name, '--check'], cwd=HERE, capture_output=True, timeout=10)
    return f'exit {p.returncode}\n' + p.stderr.decode('utf-8', errors='replace')


def main():
    cnngen = os.path.abspath(sys.argv[1])
    update = '--update' in sys.argv[2:]
    names = sorted(f for f in os.listdir(HERE) if f.endswith('.cnn'))
    failed = 0
    for name in names:
        got = run(cnngen, name)
        golden = os.path.join(HERE, name[:-4] + '.expected')
        if update:
            with open(golden, 'w', encoding='utf-8') as f:
                f.write(got)
            continue
        with open(golden, encoding='utf-8') as f:
            want = f.read()
        if got != want:
            failed += 1
            print(f'FAIL {name}\n--- expected\n{want}--- got\n{got}')
        elif not want.startswith('exit 1\n') or ': error: ' not in want:
            failed += 1
            print(f'FAIL {name}: a bad model must exit 1 with an error')
    if not update:
        print(f'{len(names) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
