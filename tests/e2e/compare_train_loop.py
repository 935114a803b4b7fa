#!/usr/bin/python3
"""The runtime's train and eval commands against the reference, with a
hand-written model (tests/helpers/mock_train.c) so that only the loop is
tested: batches and the partial last one, the loss means, mae, rmse and
accuracy, the epoch and eval lines, --epochs, --no-shuffle, --quiet,
--init and --save, and the weights written.

    compare_train_loop.py --mock mock_train --oracle cnnref.py
"""
import argparse
import os
import subprocess
import sys
import tempfile

MODEL = '''model lin
input [2]
dense(1)
train {
  loss = mse
  optimizer = sgd(lr=0.1)
  batch = 3
  epochs = 4
  metrics = [mae, rmse, accuracy]
}
'''
DATA = 'x1,x2,y\n0.5,1,1.2\n1,0,0.4\n-1,2,2.5\n0,0,0.1\n2,1,0.3\n1.5,-1,-0.6\n0.2,0.7,1\n'


def numbers(text):
    out = []
    for word in text.replace(',', ' ').split():
        try:
            out.append(float(word))
        except ValueError:
            out.append(word)
    return out


def close(a, b):
    na, nb = numbers(a), numbers(b)
    if len(na) != len(nb):
        return False
    for x, y in zip(na, nb):
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-5 * abs(y) + 1e-6:
                return False
        elif x != y:
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mock', required=True)
    ap.add_argument('--oracle', required=True)
    args = ap.parse_args()
    mock, oracle = os.path.abspath(args.mock), os.path.abspath(args.oracle)
    failures = total = 0
    env = dict(os.environ, CNNREF_THREADS='1')
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'lin.cnn'), 'w') as f:
            f.write(MODEL)
        with open(os.path.join(d, 'd.csv'), 'w') as f:
            f.write(DATA)
        subprocess.run(['/usr/bin/python3', oracle, 'init', 'lin.cnn', '--seed', '3', '--out',
                        'w0.safetensors'], cwd=d, env=env, check=True)
        cases = [
            ['train', '--data', 'd.csv', '--init', 'w0.safetensors', '--no-shuffle', '--save', '{}.st'],
            ['train', '--data', 'd.csv', '--init', 'w0.safetensors', '--no-shuffle', '--epochs', '2',
             '--save', '{}.st'],
            ['train', '--data', 'd.csv', '--init', 'w0.safetensors', '--no-shuffle', '--quiet',
             '--save', '{}.st'],
            ['eval', '--data', 'd.csv', '--weights', 'w0.safetensors'],
            ['train', '--data', 'missing.csv'],
            ['eval', '--data', 'd.csv'],
        ]
        for case in cases:
            total += 1
            ours = subprocess.run([mock] + [a.format('ours') for a in case], cwd=d,
                                  capture_output=True, text=True)
            ref = subprocess.run(['/usr/bin/python3', oracle, case[0], 'lin.cnn'] +
                                 [a.format('ref') for a in case[1:]], cwd=d, capture_output=True,
                                 text=True, env=env)
            problems = []
            if ours.returncode != ref.returncode:
                problems.append(f'exit {ours.returncode}, the reference {ref.returncode}: '
                                f'{ours.stderr.strip()} / {ref.stderr.strip()}')
            elif not close(ours.stdout, ref.stdout):
                problems.append(f'output:\n{ours.stdout}--- the reference:\n{ref.stdout}')
            if '--save' in case and ours.returncode == 0 and not problems:
                # The weights written: both programs predict alike with them.
                samples = os.path.join(d, 'x.txt')
                with open(samples, 'w') as f:
                    f.write('0.5 1\n-2 3\n')
                ours_p, ref_p = [subprocess.run(cmd + [samples], cwd=d, capture_output=True,
                                                text=True, env=env).stdout
                                 for cmd in ([mock, 'predict', '--weights', 'ours.st'],
                                             ['/usr/bin/python3', oracle, 'predict', 'lin.cnn',
                                              '--weights', 'ref.st'])]
                if not ours_p or not close(ours_p, ref_p):
                    problems.append(f'the saved weights predict {ours_p!r}, the reference\'s {ref_p!r}')
            if problems:
                failures += 1
                print(f'FAIL {" ".join(case)}: ' + '\n'.join(problems))
            else:
                print(f'ok   {" ".join(case)}')
    print(f'{total - failures} passed, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
