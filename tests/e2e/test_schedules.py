#!/usr/bin/python3
"""Every schedule's learning rate against PyTorch's own scheduler objects
(through the reference's LearningRate: StepLR, ExponentialLR,
CosineAnnealingLR, OneCycleLR, LinearLR, SequentialLR), at every position
of runs long and short, with and without a warmup: the runtime's
cnnrt_schedule_lr (tests/helpers/schedule_trace.c) must give the same
rate to 1e-12 relative.

    test_schedules.py --trace schedule_trace --reference DIR
"""
import argparse
import subprocess
import sys

KINDS = {'step_decay': 1, 'exponential': 2, 'cosine': 3, 'one_cycle': 4}

# (schedule or None, warmup or None, base lr, epochs, steps per epoch)
CASES = [
    ({'kind': 'step_decay', 'every': 3, 'gamma': 0.5, 'per': 'epoch'}, None, 0.1, 12, 1),
    ({'kind': 'step_decay', 'every': 7, 'gamma': 0.9, 'per': 'step'}, None, 0.01, 5, 31),
    ({'kind': 'exponential', 'gamma': 0.95, 'per': 'epoch'}, None, 0.003, 40, 1),
    ({'kind': 'exponential', 'gamma': 0.999, 'per': 'step'}, None, 0.1, 4, 250),
    ({'kind': 'cosine', 'length': 0, 'min_lr': 0.0, 'per': 'epoch'}, None, 0.1, 30, 1),
    ({'kind': 'cosine', 'length': 10, 'min_lr': 1e-4, 'per': 'epoch'}, None, 0.05, 35, 1),
    ({'kind': 'cosine', 'length': 0, 'min_lr': 1e-5, 'per': 'step'}, None, 0.01, 6, 469),
    ({'kind': 'one_cycle', 'max_lr': 0.01, 'pct_start': 0.3, 'div_factor': 25.0,
      'final_div_factor': 1e4, 'per': 'step'}, None, 0.001, 24, 938),
    ({'kind': 'one_cycle', 'max_lr': 0.0, 'pct_start': 0.45, 'div_factor': 10.0,
      'final_div_factor': 100.0, 'per': 'step'}, None, 0.2, 3, 17),
    ({'kind': 'cosine', 'length': 0, 'min_lr': 0.0, 'per': 'epoch'},
     {'length': 5, 'start_factor': 0.1}, 0.1, 50, 1),
    ({'kind': 'step_decay', 'every': 2, 'gamma': 0.1, 'per': 'epoch'},
     {'length': 3, 'start_factor': 1 / 3}, 0.5, 12, 1),
    ({'kind': 'exponential', 'gamma': 0.99, 'per': 'step'},
     {'length': 100, 'start_factor': 0.01}, 0.003, 3, 200),
    ({'kind': 'one_cycle', 'max_lr': 0.006, 'pct_start': 0.3, 'div_factor': 25.0,
      'final_div_factor': 1e4, 'per': 'step'}, {'length': 50, 'start_factor': 0.5}, 0.003, 2, 300),
    (None, {'length': 4, 'start_factor': 0.25}, 0.1, 10, 1),
    (None, {'length': 40, 'start_factor': 1 / 3, 'per': 'step'}, 0.01, 2, 50),
]


class Config:
    """What LearningRate reads of a train block."""

    def __init__(self, schedule, warmup, lr, epochs):
        self.schedule, self.epochs, self.options = schedule, epochs, {'lr': lr}
        per = (schedule or {}).get('per') or (warmup or {}).get('per') or 'epoch'
        self.warmup = warmup and dict(warmup, per=None, per_written=per)


def trace_args(schedule, warmup, lr, total):
    s = schedule or {}
    per = s.get('per') or (warmup or {}).get('per')
    return [str(KINDS.get(s.get('kind'), 0)), '1' if per == 'step' else '0',
            str(s.get('every', 0)), str(s.get('length', 0)), str((warmup or {}).get('length', 0)),
            repr(s.get('gamma', 0.0)), repr(s.get('min_lr', 0.0)),
            repr(s.get('max_lr') or lr), repr(s.get('pct_start', 0.3)),
            repr(s.get('div_factor', 25.0)), repr(s.get('final_div_factor', 1e4)),
            repr((warmup or {}).get('start_factor', 1 / 3)), repr(lr), str(total)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--trace', required=True)
    ap.add_argument('--reference', required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.reference)
    from cnnref_train import LearningRate
    failures = 0
    for schedule, warmup, lr, epochs, steps in CASES:
        per_step = ((schedule or {}).get('per') or (warmup or {}).get('per')) == 'step'
        total = epochs * (steps if per_step else 1)
        rate = LearningRate(Config(schedule, warmup, lr, epochs), steps)
        torch_rates = []
        for _ in range(total):
            torch_rates.append(rate.lr())
            rate.advance()
        out = subprocess.run([args.trace] + trace_args(schedule, warmup, lr, total),
                             capture_output=True, text=True, check=True).stdout.split()
        ours = [float(v) for v in out]
        bad = [t for t in range(total) if abs(ours[t] - torch_rates[t]) > 1e-12 * abs(torch_rates[t])]
        what = f"{(schedule or {}).get('kind', 'warmup only')}" + (f' + warmup {warmup["length"]}'
                                                                    if warmup and schedule else '')
        if bad:
            t = bad[0]
            print(f'FAIL {what}: {len(bad)} of {total} positions differ; first at {t}: '
                  f'{ours[t]!r} against PyTorch {torch_rates[t]!r}')
            failures += 1
        else:
            print(f'{what} per {"step" if per_step else "epoch"}: {total} positions equal PyTorch')
    print(f'{len(CASES) - failures}/{len(CASES)} schedules agree with PyTorch at every position')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
