#!/usr/bin/python3
"""The int8 predictors on Cortex-M boards under QEMU (issue 17): the
float predictor, the int8 one as the file builds there (its packed
kernels: SMLAD on the M4F and M7, plain multiply-adds on the M3) and the
int8 plain loops (-DCNNGEN_PORTABLE), same weights and ranges as make
bench's int8 table.

    cortex_m_int8.py --cnngen CNNGEN [--models lenet,...] [--samples N]

QEMU runs with -icount shift=0: each instruction advances the virtual
clock by 1 ns, and SysTick counts the board's processor clock from it
(examples/cortex-m/predict.c --ticks), so a figure is instructions
executed, not time: the same on any host, but blind to an instruction's
cycles (a load's wait states, SMLAD's single cycle against MLA's).  The
figures are SysTick ticks a sample and their ratios; the test
(targets_int8) checks that the outputs are the host's, bit for bit."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, 'tests', 'e2e')]
import run_bench  # noqa: E402  (int8_artifacts: the reference's weights and ranges)
from test_targets import BOARDS  # noqa: E402  (each board's QEMU machine and gcc flags)

EXAMPLE = os.path.join(ROOT, 'examples', 'cortex-m')


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f'cortex_m_int8: {" ".join(cmd[:4])}... failed:\n{p.stderr[-2000:]}'
                 f'{p.stdout[-1000:]}')
    return p.stdout


def image(work, src, board, tag, defines):
    """predict.c and the model's C (SRC, a model.c beside its model.h) for
    BOARD, linked for its MPS2 board."""
    elf = os.path.join(work, f'{board}-{tag}.elf')
    run(['arm-none-eabi-gcc'] + BOARDS[board][1] + ['-O2'] + defines +
        ['-ffunction-sections', '-fdata-sections', '-I', os.path.dirname(src),
         os.path.join(EXAMPLE, 'startup.c'), os.path.join(EXAMPLE, 'predict.c'), src, '-T',
         os.path.join(EXAMPLE, 'mps2.ld'), '--specs=rdimon.specs', '-nostartfiles',
         '-Wl,--gc-sections', '-lm', '-o', elf])
    return elf


def ticks(board, elf, samples):
    """SysTick ticks a sample of predict on BOARD under -icount shift=0."""
    out = run(['qemu-system-arm', '-M', BOARDS[board][0], '-icount', 'shift=0', '-nographic',
               '-monitor', 'none', '-serial', 'none', '-semihosting-config',
               f'enable=on,target=native,arg=predict,arg=--ticks,arg={samples[0]}',
               '-kernel', elf], timeout=900)
    line = [l for l in out.splitlines() if l.startswith('ticks: ')]
    if not line:
        sys.exit(f'cortex_m_int8: no ticks line from {elf}:\n{out[-500:]}')
    return int(line[0].split()[1]) / samples[1]


def samples_file(cnngen, work, name, count):
    """COUNT samples of the model's input, the first rows of make bench's
    calibration data (values in [0, 1)), without their targets."""
    inputs = 1
    summary = json.loads(run([cnngen, os.path.join(HERE, f'{name}.cnn'), '--summary', '--json']))
    for d in summary['input']:
        inputs *= d
    path = os.path.join(work, f'{name}.samples')
    with open(os.path.join(work, f'{name}.csv')) as f, open(path, 'w') as out:
        for row in list(f)[:count]:
            out.write(','.join(row.strip().split(',')[:inputs]) + '\n')
    return path, count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--models', default='lenet,video3d')
    ap.add_argument('--samples', type=int, default=4)
    args = ap.parse_args()
    for tool in ('arm-none-eabi-gcc', 'qemu-system-arm'):
        if not shutil.which(tool):
            print(f'cortex_m_int8: skipped: no {tool}')
            return 0
    qemu = run(['qemu-system-arm', '--version']).splitlines()[0]
    gcc = run(['arm-none-eabi-gcc', '--version']).splitlines()[0]
    print(f'int8 on Cortex-M boards ({qemu} -icount shift=0: SysTick ticks of instructions a '
          f'sample, the same on any host CPU; {gcc} -O2)')
    print(f'{"model":8} {"board":11} | {"float":>10} | {"int8 plain":>10} | {"int8 packed":>11} | '
          f'{"float/plain":>11} {"plain/packed":>13} {"float/packed":>12}')
    with tempfile.TemporaryDirectory() as work:
        for name in (n for n in args.models.split(',') if n):
            weights, ranges = run_bench.int8_artifacts(name, work)
            model = os.path.join(HERE, f'{name}.cnn')
            f_src, q_src = (os.path.join(work, f'{name}_{k}', 'model.c') for k in ('f', 'q'))
            for src in (f_src, q_src):
                os.makedirs(os.path.dirname(src), exist_ok=True)
            run([args.cnngen, model, '--no-train', '--weights', weights, '--prefix', 'model',
                 '-o', f_src])
            run([args.cnngen, model, '--no-train', '--weights', weights, '--quantize', ranges,
                 '--prefix', 'model', '-o', q_src])
            samples = samples_file(args.cnngen, work, name, args.samples)
            for board in BOARDS:
                fl = ticks(board, image(work, f_src, board, 'f', []), samples)
                plain = ticks(board, image(work, q_src, board, 'qp', ['-DCNNGEN_PORTABLE']),
                              samples)
                packed = ticks(board, image(work, q_src, board, 'q', []), samples)
                print(f'{name:8} {board:11} | {fl:10.0f} | {plain:10.0f} | {packed:11.0f} | '
                      f'{fl / plain:10.2f}x {plain / packed:12.2f}x {fl / packed:11.2f}x',
                      flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
