#!/usr/bin/python3
"""Killing the trainer while it saves leaves the previous weights intact:
the weights go to a temporary file that is renamed over the old one.

    test_kill_save.py CNNGEN SOURCE_DIR RUNTIME_LIB_DIR

The fashion example (13 MB of weights) trains for 0 epochs and saves.  A
whole run is timed; then runs are killed with SIGKILL at moments spread
over its second half, where the save is, in rounds of 40 until one kill
has landed in a save (200 at most).  After each kill the
weights file must be the old one or the new one, byte for byte, and
load; a temporary file left behind shows that the kill came in the
middle of a save, and at least one must have.
"""
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time


def main():
    cnngen, src, lib = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as work:
        def path(name):
            return os.path.join(work, name)
        subprocess.run([cnngen, os.path.join(src, 'examples', 'fashion.cnn'), '--main', '-o',
                        path('f.c')], check=True, capture_output=True)
        subprocess.run(['cc', '-O1', '-DCNNGEN_ONLY_GENERIC', path('f.c'), '-I',
                        os.path.join(src, 'runtime', 'include'),
                        os.path.join(lib, 'libcnnrt.a'), '-lz', '-lm', '-o', path('f')], check=True)
        with open(path('d.csv'), 'w') as f:
            f.write(','.join(['0.5'] * 784 + ['3']) + '\n')
        with open(path('x.txt'), 'w') as f:
            f.write(' '.join(['0.5'] * 784) + '\n')

        def train(seed, out):
            return [path('f'), 'train', '--data', path('d.csv'), '--epochs', '0', '--seed',
                    str(seed), '--quiet', '--save', out]
        subprocess.run(train(1, path('old.safetensors')), check=True)
        start = time.monotonic()
        subprocess.run(train(2, path('new.safetensors')), check=True)
        whole = time.monotonic() - start
        with open(path('old.safetensors'), 'rb') as f:
            old = f.read()
        with open(path('new.safetensors'), 'rb') as f:
            new = f.read()
        failures = mid_save = runs = 0
        # The save is a short part of a run (the file is written in one
        # piece): kills in rounds of 40, times spread over the second half
        # of a run (a golden-ratio sequence, so each round tries new ones),
        # until one has landed in the middle of a save, 200 at the most.
        while runs < 200 and (runs % 40 or not runs or not mid_save):
            i, runs = runs, runs + 1
            with open(path('w.safetensors'), 'wb') as f:
                f.write(old)
            delay = whole * (0.5 + 0.6 * ((i * 0.6180339887) % 1.0))
            proc = subprocess.Popen(train(2, path('w.safetensors')))
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            leftovers = glob.glob(path('w.safetensors.tmp*'))
            mid_save += bool(leftovers)
            for name in leftovers:
                os.remove(name)
            with open(path('w.safetensors'), 'rb') as f:
                now = f.read()
            loads = subprocess.run([path('f'), 'predict', '--weights', path('w.safetensors'),
                                    path('x.txt')], capture_output=True).returncode == 0
            if now not in (old, new) or not loads:
                failures += 1
                print(f'FAIL: killed after {delay:.3f} s, the weights file is '
                      f'{"neither the old nor the new" if now not in (old, new) else "unreadable"}')
        print(f'a whole run takes {whole:.3f} s; {runs} kills, {mid_save} of them in the middle '
              'of writing the weights')
        if mid_save == 0:
            print('FAIL: no kill came during a save; the test proved nothing')
            failures += 1
        if failures == 0:
            print('the weights file was always whole: the old weights or the new')
        return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
