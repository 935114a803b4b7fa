#!/usr/bin/python3
"""Checkpoints, resume, the metrics log and the divergence guard of the
generated program's train command, on a model with everything that keeps
state between steps: batchnorm, dropout, Adam, a per-step schedule,
augmentation, validation with the best epoch kept, shuffling.

- A run killed (SIGKILL) after some epochs and resumed from its
  --checkpoint ends with the same weights, byte for byte, as the run that
  was never interrupted, and prints the same epoch lines after the resume.
  The uninterrupted run uses two threads and the interrupted one a single
  thread: augmentation and training give the same numbers on any count.
- --log writes a header and a row per epoch whose values are the epoch
  line's; a resumed run appends to it.
- A checkpoint refuses other data, another seed, --init, another model.
- Training that diverges (here: a value near the float limit in the data;
  a relu can hide the NaN weights it makes from the loss, so the weights
  are checked after each epoch too) stops with exit 1, saves nothing,
  and leaves the last checkpoint as it was.  So does a loss that becomes
  infinite or NaN (a schedule that multiplies the learning rate by 1e12
  after the first epoch), with `error: loss is ... at epoch E, batch B`.

    test_resume.py --cnngen BIN --runtime-include DIR --runtime-lib DIR [--cc gcc] [--sanitize]
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from e2e_common import WARNINGS, run, sanitizer_flags

MODEL = '''model resumable
input [8, 8, 1]
conv2d(4, 3, padding=same)
batchnorm
relu
maxpool2d(2)
flatten
dropout(0.25)
dense(3, activation=softmax)
train {
  optimizer = adam(lr=0.01)
  schedule = cosine(per=step, min_lr=0.0001)
  warmup = linear(5, per=step)
  augment = [shift(1), flip]
  validation_split = 0.2
  batch = 16
  epochs = 8
  metrics = [accuracy]
  seed = 4
}
'''
EPOCHS = 8
EXPLODING = '''model exploding
input [4]
dense(1)
train {
  loss = mse
  optimizer = sgd(lr=0.01)
  schedule = exponential(1e12)
  batch = 4
  epochs = 3
}
'''


def write_data(path, count, rng, poison=False):
    with open(path, 'w') as f:
        for k in range(count):
            x = [rng.uniform(-1, 1) for _ in range(64)]
            if poison and k == count // 3:
                x = [3e38] * 64
            f.write(','.join(f'{v:.4f}' for v in x) + f',{rng.randrange(3)}\n')


def check(condition, message, failures):
    if not condition:
        failures.append(message)
        print('FAIL', message)


def epoch_lines(text):
    return [line for line in text.splitlines() if line.startswith('epoch ')]


def kill_after(cmd, epochs_done, env):
    """Run cmd, SIGKILL it once it has printed epochs_done epoch lines."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in p.stdout:
        seen.append(line)
        if len(epoch_lines(''.join(seen))) >= epochs_done:
            p.send_signal(signal.SIGKILL)
            break
    p.wait()
    p.stdout.close()
    p.stderr.close()
    return p.returncode


def check_qat_resume(args, flags, tmp, failures):
    """The model with quantize = int8: its observers are state too; a run
    killed and resumed on one thread ends with the uninterrupted two-thread
    run's weights and observers, byte for byte."""
    j = lambda f: os.path.join(tmp, f)  # noqa: E731
    with open(j('q.cnn'), 'w') as f:
        f.write(MODEL.replace('model resumable', 'model resumable_qat')
                .replace('train {\n', 'train {\n  quantize = int8\n'))
    gen = run([args.cnngen, j('q.cnn'), '--main', '-o', j('q.c')])
    cc = run([args.cc] + flags + [j('q.c'), '-I', args.runtime_include,
              os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', j('q')])
    if gen.returncode or cc.returncode:
        check(False, f'quantize = int8: {gen.stderr}{cc.stderr}', failures)
        return
    train = [j('q'), 'train', '--data', j('d.csv')]
    whole = run(train + ['--save', j('qa.st')], env=dict(os.environ, OMP_NUM_THREADS='2'))
    one = dict(os.environ, OMP_NUM_THREADS='1')
    kill_after(train + ['--checkpoint', j('qb.ck')], 3, one)
    resumed = run(train + ['--resume', j('qb.ck'), '--save', j('qb.st')], env=one)
    same = whole.returncode == 0 and resumed.returncode == 0 and \
        open(j('qa.st'), 'rb').read() == open(j('qb.st'), 'rb').read()
    check(same, f'quantize = int8: the resumed run\'s weights differ: {resumed.stderr}', failures)
    if same:
        print('quantize = int8: resumed, the same weights and observers byte for byte')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--runtime-include', required=True)
    ap.add_argument('--runtime-lib', required=True)
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--sanitize', action='store_true')
    args = ap.parse_args()
    flags = ['-O2', '-fopenmp'] + WARNINGS + sanitizer_flags(args)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        j = lambda f: os.path.join(tmp, f)  # noqa: E731
        with open(j('m.cnn'), 'w') as f:
            f.write(MODEL)
        rng = random.Random(5)
        write_data(j('d.csv'), 2000, rng)
        gen = run([args.cnngen, j('m.cnn'), '--main', '-o', j('m.c')])
        cc = run([args.cc] + flags + [j('m.c'), '-I', args.runtime_include,
                  os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', j('m')])
        if gen.returncode or cc.returncode:
            print(gen.stderr, cc.stderr)
            return 1
        two, one = dict(os.environ, OMP_NUM_THREADS='2'), dict(os.environ, OMP_NUM_THREADS='1')
        train = [j('m'), 'train', '--data', j('d.csv')]

        whole = run(train + ['--save', j('a.st'), '--log', j('a.csv'), '--checkpoint', j('a.ck')],
                    env=two)
        check(whole.returncode == 0, f'the uninterrupted run failed: {whole.stderr}', failures)
        check(len(epoch_lines(whole.stdout)) == EPOCHS, 'the uninterrupted run printed '
              f'{len(epoch_lines(whole.stdout))} epoch lines', failures)

        # the log: a header, then a row per epoch with the epoch line's values
        rows = open(j('a.csv')).read().splitlines()
        check(rows[0] == 'epoch,lr,seconds,loss,accuracy,val_loss,val_accuracy',
              f'log header: {rows[0]}', failures)
        check(len(rows) == EPOCHS + 1, f'the log has {len(rows) - 1} rows', failures)
        for row, line in zip(rows[1:], epoch_lines(whole.stdout)):
            cells = row.split(',')
            values = dict(part.split(': ') for part in line.split(' - ')[1:])
            check([cells[1], cells[3], cells[4], cells[5], cells[6]] ==
                  [values['lr'], values['loss'], values['accuracy'], values['val_loss'],
                   values['val_accuracy']], f'log row {row} against {line}', failures)

        # killed after 3 epochs (the checkpoint holds 2 or 3), resumed
        status = kill_after(train + ['--checkpoint', j('b.ck'), '--log', j('b.csv')], 3, one)
        check(status == -signal.SIGKILL, f'the run to kill ended with {status}', failures)
        shutil.copy(j('b.ck'), j('mid.ck'))
        resumed = run(train + ['--resume', j('b.ck'), '--checkpoint', j('b.ck'), '--save', j('b.st'),
                               '--log', j('b.csv')], env=one)
        check(resumed.returncode == 0, f'the resumed run failed: {resumed.stderr}', failures)
        done = epoch_lines(resumed.stdout)
        check(0 < len(done) < EPOCHS and done == epoch_lines(whole.stdout)[EPOCHS - len(done):],
              'the resumed run\'s epoch lines differ from the uninterrupted run\'s:\n'
              + resumed.stdout + '---\n' + whole.stdout, failures)
        check(resumed.stdout.splitlines()[-1] == whole.stdout.splitlines()[-1],
              'the best epoch differs', failures)
        same = os.path.exists(j('b.st')) and open(j('a.st'), 'rb').read() == open(j('b.st'), 'rb').read()
        check(same, 'the resumed run\'s weights differ from the uninterrupted run\'s', failures)
        if same:
            print(f'resumed after {EPOCHS - len(done)} of {EPOCHS} epochs: the same weights, '
                  'byte for byte, on 1 thread as the uninterrupted run on 2')
        last_rows = open(j('b.csv')).read().splitlines()[-len(done):]
        strip = lambda r: r.split(',')[:2] + r.split(',')[3:]  # noqa: E731 (not the seconds)
        check([strip(r) for r in last_rows] == [strip(r) for r in rows[-len(done):]],
              'the resumed log rows differ', failures)

        # what a checkpoint refuses
        rng2 = random.Random(6)
        write_data(j('fewer.csv'), 1500, rng2)
        for options, want, code in [
                (['--data', j('fewer.csv'), '--resume', j('mid.ck')], 'was made training on 1600 '
                 'samples; this data gives 1200', 1),
                (['--data', j('d.csv'), '--resume', j('mid.ck'), '--seed', '9'], 'with seed 4, not 9', 2),
                (['--data', j('d.csv'), '--resume', j('mid.ck'), '--init', j('a.st')],
                 'not allowed with argument --init', 2),
                (['--data', j('d.csv'), '--resume', j('a.st')], "the metadata has no 'format'", 1)]:
            r = run([j('m'), 'train'] + options + ['--save', j('x.st')])
            check(r.returncode == code and want in r.stderr and not os.path.exists(j('x.st')),
                  f'{options}: exit {r.returncode}, {r.stderr.strip()}', failures)

        # the divergence guard: the checkpoint is left as it was
        write_data(j('poison.csv'), 2000, random.Random(5), poison=True)
        before = open(j('mid.ck'), 'rb').read()
        time.sleep(0.01)
        bad = run([j('m'), 'train', '--data', j('poison.csv'), '--resume', j('mid.ck'),
                   '--checkpoint', j('mid.ck'), '--save', j('nan.st')], env=one)
        check(bad.returncode == 1 and ('error: loss is ' in bad.stderr or 'not finite after epoch'
                                       in bad.stderr) and 'smaller learning rate' in bad.stderr
              and 'nothing saved' in bad.stderr,
              f'divergence: exit {bad.returncode}, {bad.stderr.strip()}', failures)
        check(not os.path.exists(j('nan.st')), 'a diverged run saved weights', failures)
        check(open(j('mid.ck'), 'rb').read() == before, 'a diverged run changed the checkpoint',
              failures)
        print(f'divergence: {bad.stderr.strip()}')

        with open(j('x.cnn'), 'w') as f:
            f.write(EXPLODING)
        with open(j('x.csv'), 'w') as f:
            for _ in range(40):
                f.write(','.join(f'{rng.uniform(-1, 1):.4f}' for _ in range(5)) + '\n')
        run([args.cnngen, j('x.cnn'), '--main', '-o', j('x.c')])
        run([args.cc] + flags + [j('x.c'), '-I', args.runtime_include,
                                 os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', j('x')])
        bad = run([j('x'), 'train', '--data', j('x.csv'), '--checkpoint', j('x.ck'), '--save',
                   j('x.st')])
        kept = run([j('x'), 'train', '--data', j('x.csv'), '--resume', j('x.ck'), '--epochs', '1',
                    '--save', j('x1.st')])
        check(bad.returncode == 1 and 'error: loss is ' in bad.stderr and 'at epoch 2, batch '
              in bad.stderr and not os.path.exists(j('x.st')) and kept.returncode == 0,
              f'a loss that explodes: exit {bad.returncode}, {bad.stderr.strip()}; the checkpoint '
              f'after: {kept.returncode} {kept.stderr.strip()}', failures)
        print(f'explosion: {bad.stderr.strip()}')
        check_qat_resume(args, flags, tmp, failures)
    print('resume, log and guard: ' + ('FAILED' if failures else 'all hold'))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
