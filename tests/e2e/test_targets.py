#!/usr/bin/env python3
"""Predictors on the targets where Python does not go, run under emulation.

    test_targets.py --cnngen BIN --oracle cnnref.py --source DIR --part boards|aarch64|train
                    [MODEL.cnn|DIR ...]

boards:  every model's predictor (weights baked, --no-train) built with
         arm-none-eabi-gcc for Cortex-M4F (QEMU's mps2-an386), Cortex-M7
         (mps2-an500) and Cortex-M3 (mps2-an385), by examples/cortex-m
         (its start-up, linker script and predict.c), run on the emulated
         board through semihosting: the outputs equal the host build's of
         the same predict.c to 1e-5 relative.  Then the linked image
         against --summary: the weights in flash (const, below the RAM), the
         arena in .bss, with the sizes --summary --json gives under "board";
         the predict call's stack, measured on the board, within the
         summary's estimate.  The model's own object: it calls nothing but
         libm, memcpy/memset and the compiler's helpers; on the M3 no
         floating-point instruction (soft-float calls instead), on the M4F
         the FPU and no soft-float call; on the M0+ (no board) it builds.
         The LLVM backend's objects: run on the M4F board, checked for the
         M3 and M4F as the C's objects are.  The host build compiles the
         same plain loops a Cortex-M does (-DCNNGEN_PORTABLE).
aarch64: the same predictors built with aarch64-linux-gnu-gcc (NEON's
         4-float vectors) and run by qemu-aarch64; and the generated
         program's train command, linked against the runtime built for
         AArch64, which ends with the host's weights.
int8:    every quantizable model's int8 predictor (cnngen --weights --quantize,
         the ranges the reference calibrates on random data; --oracle is then
         cnnref_quant.py) on the Cortex-M3 and M4F boards: its integer
         outputs (examples/cortex-m/predict.c with MODEL_INT8) equal the
         host build's exactly: the packed kernels of the dsp clone, with
         plain multiply-adds on the M3 and the DSP extension's SMLAD on
         the M4F (which its image must hold where the C has them).  Its object for the Cortex-M0+ and M3, CPUs
         without an FPU (from gcc, and from the LLVM backend where it is in): the layer functions and model_predict_q use no
         floating point, no soft-float call (the quantize and dequantize
         around them may); its int8 kernels a quarter of the float weights'
         flash (and 12 bytes a channel of int32 bias, multiplier and shift).
train:   examples/seed42.cnn trained on the Cortex-M4F board by
         examples/cortex-m/train_series.c, from a series held in flash: its
         weights equal those of the generated program's train on the host,
         and the training memory in the image is what --summary reports.

A missing cross tool makes the part skip with a message (exit 77)."""
import argparse
import concurrent.futures
import json
import os
import random
import re
import shlex
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (SKIP, WARNINGS as WARN, has_llvm, model_files,  # noqa: E402
                        oracle_batch, read_safetensors, run, write_train_data)

# Cortex-M boards: name -> (QEMU machine, compiler flags)
BOARDS = {
    'cortex-m4f': ('mps2-an386', ['-mcpu=cortex-m4', '-mthumb', '-mfloat-abi=hard',
                                  '-mfpu=fpv4-sp-d16']),
    'cortex-m7': ('mps2-an500', ['-mcpu=cortex-m7', '-mthumb', '-mfloat-abi=hard',
                                 '-mfpu=fpv5-sp-d16']),
    'cortex-m3': ('mps2-an385', ['-mcpu=cortex-m3', '-mthumb']),
}
BUILD_ONLY = {'cortex-m0plus': ['-mcpu=cortex-m0plus', '-mthumb']}
FLASH_BYTES = 4 << 20   # examples/cortex-m/mps2.ld
RAM_BYTES = 4 << 20
STACK_BYTES = 64 << 10
RAM_START = 0x20000000
# What the model's own code may call: libm, the memory copies, and the
# compiler's helpers (soft float, division, memcpy's AEABI names).
LIBM = {'expf', 'logf', 'tanhf', 'sqrtf', 'fabsf', 'fmaxf', 'fminf', 'powf', 'exp', 'log',
        'tanh', 'sqrt', 'floorf', 'ceilf', 'roundf', 'log1pf', 'expm1f', 'cos', 'sin', 'fabs',
        'floor', 'pow', 'log1p'}
ALLOWED = LIBM | {'memcpy', 'memset', 'memmove'}
SERIES = '/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv'


def fail(msg):
    print('FAIL: ' + msg)
    return 1


def without(tools):
    """True, after a SKIPPED line, when one of TOOLS is not installed."""
    missing = [n for n in tools if shutil.which(n) is None]
    if missing:
        print(f'SKIPPED: no {", ".join(missing)} (scripts/install-deps installs them)')
    return bool(missing)


def report(problems, summary):
    """Each problem, then the summary line: the exit status."""
    for p in problems:
        print('FAIL: ' + p)
    print(f'{summary}: {len(problems)} problems')
    return 1 if problems else 0


def outputs_of(text):
    return [[float(v) for v in line.split()] for line in text.splitlines()
            if line and not line.startswith('stack:')]


def differences(ours, ref, what):
    """Lines where OURS and REF (outputs per sample) differ beyond 1e-5
    relative (1e-7 absolute near zero)."""
    if len(ours) != len(ref) or any(len(a) != len(b) for a, b in zip(ours, ref)):
        return [f'{what}: {len(ours)} output lines, the host printed {len(ref)}']
    worst = max((abs(x - y) / max(abs(y), 1e-2) for a, b in zip(ours, ref) for x, y in zip(a, b)),
                default=0.0)
    bad = [(i, j, x, y) for i, (a, b) in enumerate(zip(ours, ref)) for j, (x, y) in
           enumerate(zip(a, b)) if abs(x - y) > 1e-5 * max(abs(x), abs(y)) + 1e-7]
    return [f'{what}: sample {i} output {j}: {x!r}, the host {y!r}' for i, j, x, y in bad[:5]] + \
        ([f'{what}: worst relative difference {worst:.2e}'] if bad else [])


def write_inputs(path, size, samples, rng):
    with open(path, 'w') as f:
        for _ in range(samples):
            f.write(' '.join('%.6g' % rng.uniform(-1, 1) for _ in range(size)) + '\n')


def host_predictor(args, m, cflags):
    """M's summary and inputs, and examples/cortex-m's predict.c with M's
    model.c built for this machine and run on them: (problems, its output)."""
    m.summary = json.loads(run([args.cnngen, m.path, '--summary', '--json']).stdout)
    size = 1
    for d in m.summary['input']:
        size *= d
    m.inputs = os.path.join(m.work, 'in.txt')
    write_inputs(m.inputs, size, 2, random.Random(m.seed))
    exe = os.path.join(m.work, 'host')
    r = run(['cc', '-O2'] + cflags + WARN + ['-I', m.work, os.path.join(args.example, 'predict.c'),
                                             os.path.join(m.work, 'model.c'), '-lm', '-o', exe])
    if r.returncode != 0:
        return [f'{m.name}: the host build failed: {r.stderr[:1000]}'], None
    r = run([exe, m.inputs])
    if r.returncode != 0:
        return [f'{m.name}: the host predictor failed: {r.stderr[:500]}'], None
    return [], r.stdout


class Model:
    """A model's baked predictor, generated once and built for each target."""

    def __init__(self, path, work, seed):
        self.path, self.work, self.seed = path, work, seed
        self.name = os.path.basename(path)[:-4]
        self.summary = None
        self.objects = {}   # (target, backend): model_obj's answer
        os.makedirs(work)

    def prepare(self, args):
        """The baked C from the reference's initial weights (init_all made
        them), the summary, inputs, and the host build's outputs."""
        w0 = os.path.join(self.work, 'w0.safetensors')
        if not os.path.exists(w0):
            with open(os.path.join(self.work, 'init.err')) as f:
                return [f'{self.name}: the reference cannot init it: {f.read()[:500]}']
        r = run([args.cnngen, self.path, '--weights', w0, '--no-train', '--prefix', 'model',
                 '-o', os.path.join(self.work, 'model.c')])
        if r.returncode != 0:
            return [f'{self.name}: cnngen failed: {r.stderr[:500]}']
        # the host's build of the plain loops, as a Cortex-M builds them (and quick to compile)
        problems, out = host_predictor(args, self, ['-DCNNGEN_PORTABLE'])
        if not problems:
            self.host = outputs_of(out)
        return problems

    def fits_a_board(self):
        b = self.summary['board']
        return b['flash_weights_bytes'] < FLASH_BYTES - (256 << 10) and \
            b['ram_arena_bytes'] < RAM_BYTES - STACK_BYTES - (256 << 10)


# The LLVM backend's triples for the boards (--emit=obj --target).
TRIPLES = {'cortex-m4f': 'thumbv7em-none-eabihf', 'cortex-m3': 'thumbv7m-none-eabi',
           'aarch64': 'aarch64-linux-gnu'}


def llvm_object(args, m, target):
    """The model through the LLVM backend for TARGET: (directory with
    model.o and model.h, problems)."""
    d = os.path.join(m.work, 'llvm-' + target)
    os.makedirs(d, exist_ok=True)
    r = run([args.cnngen, m.path, '--weights', os.path.join(m.work, 'w0.safetensors'),
             '--no-train', '--prefix', 'model', '--emit=obj', '--target', TRIPLES[target],
             '-o', os.path.join(d, 'model.o')])
    if r.returncode != 0:
        return d, [f'{m.name}: cnngen --emit=obj --target {TRIPLES[target]} failed: {r.stderr[:500]}']
    return d, []


def model_obj(args, m, target, flags, backend):
    """The model's object for TARGET, from its C (arm-none-eabi-gcc) or
    the LLVM backend, built once and kept for the board's image and the
    object checks: (object, the directory with its model.h, problems)."""
    key = (target, backend)
    if key not in m.objects:
        if backend == 'llvm':
            d, problems = llvm_object(args, m, target)
            m.objects[key] = (os.path.join(d, 'model.o'), d, problems)
        else:
            obj = os.path.join(m.work, f'{target}.o')
            r = run(['arm-none-eabi-gcc'] + flags + ['-O2'] + WARN +
                    ['-ffunction-sections', '-fdata-sections', '-c',
                     os.path.join(m.work, 'model.c'), '-o', obj])
            m.objects[key] = (obj, m.work, [] if r.returncode == 0 else [
                f'{m.name} for {target}: model.c does not compile:\n{r.stderr[:2000]}'])
    return m.objects[key]


def init_all(args, models):
    """Every model's initial weights from the reference, in one process
    (cnnref.py batch: torch is imported once)."""
    q = shlex.quote
    lines = [f'{q(m.work)}/init.out {q(m.work)}/init.err init {q(m.path)} --seed 1 '
             f'--out {q(m.work)}/w0.safetensors' for m in models]
    run(['/usr/bin/python3', args.oracle, 'batch'], input='\n'.join(lines) + '\n')


def arm_build(args, m, board, flags, backend):
    """The predictor's image for BOARD, its model from BACKEND's C or
    LLVM object: (elf path, problems)."""
    d = os.path.join(m.work, board + '-' + backend)
    os.makedirs(d, exist_ok=True)
    elf = os.path.join(d, 'predict.elf')
    model, model_dir, problems = model_obj(args, m, board, flags, backend)
    if problems:
        return None, problems
    r = run(['arm-none-eabi-gcc'] + flags + ['-O2'] + WARN +
            ['-ffunction-sections', '-fdata-sections', '-I', model_dir,
             os.path.join(args.example, 'startup.c'), os.path.join(args.example, 'predict.c'),
             model, '-T', os.path.join(args.example, 'mps2.ld'),
             '--specs=rdimon.specs', '-nostartfiles', '-Wl,--gc-sections',
             '-Wl,-Map=' + os.path.join(d, 'predict.map'), '-lm', '-o', elf])
    if r.returncode != 0:
        return None, [f'{m.name} on {board}: the build failed:\n{r.stderr[:2000]}']
    return elf, []


def symbols(tool, elf):
    """{name: (address, size, type)} of the image's symbols."""
    out = {}
    for line in run([tool, '-S', elf]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = (int(parts[0], 16), int(parts[1], 16), parts[2])
    return out


def check_footprint(m, board, elf, stack_used):
    """The linked image against --summary's board figures."""
    problems = []
    b = m.summary['board']
    syms = symbols('arm-none-eabi-nm', elf)
    weights = syms.get('model_params') or syms.get('model_weights')
    if weights is None:
        # a few fixed weights (series_filters' moving average) are constants
        # the compiler folds into the instructions
        if b['flash_weights_bytes'] > 1024:
            problems.append('no model_params (nor model_weights) in the image')
    else:
        addr, size, kind = weights
        if kind not in 'rR' or addr >= RAM_START:
            problems.append(f'the weights are not constant data in flash ({kind} at {addr:#x})')
        if size != b['flash_weights_bytes']:
            problems.append(f'the weights take {size} bytes of flash; --summary says '
                            f'{b["flash_weights_bytes"]}')
    arena = syms.get('model_arena')
    if b['ram_arena_bytes'] and arena is None:
        problems.append('no model_arena in the image')
    elif arena:
        addr, size, kind = arena
        if kind not in 'bB' or addr < RAM_START:
            problems.append(f'the arena is not in .bss in RAM ({kind} at {addr:#x})')
        if size != b['ram_arena_bytes']:
            problems.append(f'the arena takes {size} bytes of RAM; --summary says '
                            f'{b["ram_arena_bytes"]}')
    if stack_used is None:
        problems.append('the board did not report the stack')
    elif stack_used > b['stack_bytes']:
        problems.append(f'predict used {stack_used} bytes of stack; --summary estimates '
                        f'{b["stack_bytes"]}')
    return [f'{m.name} on {board}: {p}' for p in problems]


def run_on_board(machine, elf, argv):
    """ELF on QEMU's MACHINE, its command line ARGV and its files and output
    through semihosting."""
    return run(['qemu-system-arm', '-M', machine, '-nographic', '-monitor', 'none', '-serial',
                'none', '-semihosting-config',
                'enable=on,target=native,' + ','.join('arg=' + a for a in argv), '-kernel', elf],
               timeout=600)


def run_board(args, m, board, backend):
    machine, flags = BOARDS[board]
    elf, problems = arm_build(args, m, board, flags, backend)
    if problems:
        return problems, None
    if backend == 'llvm':
        board += ' (LLVM object)'
    r = run_on_board(machine, elf, ['predict', '--stack', m.inputs])
    if r.returncode != 0:
        return [f'{m.name} on {board}: the board exited {r.returncode}: {r.stdout[-500:]}'
                f'{r.stderr[-500:]}'], None
    stack = re.search(r'^stack: (\d+) bytes', r.stdout, re.M)
    stack_used = int(stack.group(1)) if stack else None
    problems = differences(outputs_of(r.stdout), m.host, f'{m.name} on {board}')
    problems += check_footprint(m, board, elf, stack_used)
    return problems, footprint_row(elf, stack_used)


def footprint_row(elf, stack_used):
    """The image's figures for docs/targets.md: the model's code (its
    functions), and the whole image's flash and RAM (arm-none-eabi-size)."""
    syms = symbols('arm-none-eabi-nm', elf)
    code = sum(size for name, (_, size, kind) in syms.items()
               if name.startswith('model_') and kind in 'tT')
    text, data, bss = (int(v) for v in run(['arm-none-eabi-size', elf]).stdout.splitlines()[1]
                       .split()[:3])
    return {'stack': stack_used, 'code': code, 'flash': text + data, 'ram': data + bss}


def model_object(args, m, target, flags, backend):
    """The model alone for TARGET: (objdump -d text, undefined symbols, problems)."""
    obj, _, problems = model_obj(args, m, target, flags, backend)
    if problems:
        return None, None, problems
    undefined = set(run(['arm-none-eabi-nm', '-u', obj]).stdout.split()) - {'U'}
    return run(['arm-none-eabi-objdump', '-d', obj]).stdout, undefined, []


VFP = re.compile(r'^\s+[0-9a-f]+:\s+(?:[0-9a-f]{4} ?){1,2}\s+(v[a-z0-9]+)', re.M)


def check_objects(args, m, llvm):
    """What the model's own code calls and which instructions it uses (the
    C built by gcc, and the LLVM backend's objects)."""
    problems = []
    # the LLVM backend's M3 object for the models a board runs (generating
    # the 13 MB fashion.cnn through LLVM once more proves nothing new)
    builds = [(b, BOARDS[b][1], 'c') for b in ('cortex-m3', 'cortex-m4f')] + \
        [(b, flags, 'c') for b, flags in BUILD_ONLY.items()] + \
        ([(b, None, 'llvm') for b in ('cortex-m3', 'cortex-m4f')] if llvm and m.fits_a_board()
         else [])
    for target, flags, backend in builds:
        code, undefined, p = model_object(args, m, target, flags, backend)
        if p:
            problems += p
            continue
        if backend == 'llvm':
            target += ' (LLVM object)'

        foreign = sorted(s for s in undefined if s not in ALLOWED and not s.startswith('__aeabi_'))
        if foreign:
            problems.append(f'{m.name} for {target}: the model calls {", ".join(foreign)}')
        fpu = sorted(set(VFP.findall(code)))
        soft = sorted(s for s in undefined if re.match(r'__aeabi_[fd]', s))
        if target.startswith(('cortex-m3', 'cortex-m0plus')) and fpu:
            problems.append(f'{m.name} for {target}: floating-point instructions '
                            f'{", ".join(fpu[:6])} on a CPU without an FPU')
        if target.startswith('cortex-m3') and not soft:
            problems.append(f'{m.name} for {target}: no soft-float call: is there no arithmetic?')
        if target.startswith('cortex-m4f'):
            if soft:
                problems.append(f'{m.name} for {target}: soft-float calls {", ".join(soft)} '
                                f'(double precision, which the FPU lacks, or no FPU use)')
            if not any(i.startswith(('vfma', 'vmla', 'vadd', 'vmul')) for i in fpu):
                problems.append(f'{m.name} for {target}: no FPU arithmetic in the model\'s code')
    return problems


def part_boards(args, models):
    if without(['arm-none-eabi-gcc', 'arm-none-eabi-nm', 'arm-none-eabi-objdump',
                'qemu-system-arm']):
        return SKIP
    jobs = []
    llvm = has_llvm(args.cnngen)
    if not llvm:
        print('(no LLVM backend in this cnngen: its Cortex-M objects are not tested)')
    for m in models:
        if m.fits_a_board():
            jobs += [(m, board, 'c') for board in BOARDS]
            # the LLVM backend's object on the M4F (its M3 object is checked below)
            jobs += [(m, 'cortex-m4f', 'llvm')] if llvm else []
        else:
            print(f'{m.name}: not run on the boards: its weights ({m.summary["board"]["flash_weights_bytes"]} '
                  f'bytes) and arena do not fit the MPS2 boards\' 4 MB of flash and of RAM')
    problems, table = [], {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for (m, board, backend), (p, row) in zip(jobs, pool.map(lambda j: run_board(args, *j),
                                                                 jobs)):
            problems += p
            if backend == 'c':
                table.setdefault(m, {})[board] = row
        for p in pool.map(lambda m: check_objects(args, m, llvm), models):
            problems += p
    for m, rows in table.items():
        print(f'{m.name:16} stack used (bytes): ' +
              ', '.join(f'{b} {r and r["stack"]}' for b, r in rows.items()) +
              f'; --summary estimates {m.summary["board"]["stack_bytes"]}')
    if args.table:
        print_table(table)
    return report(problems, f'{len(jobs)} board runs of {len(table)} models (C'
                  f'{" and LLVM objects" if llvm else ""}), {len(models)} models\' code checked '
                  f'for {len(BOARDS) + len(BUILD_ONLY)} Cortex-M CPUs')


def print_table(table):
    """docs/targets.md's table: per model and board, what the image needs."""
    print('| model | board | model code | weights | arena | stack used (estimate) | '
          'image flash | image RAM |')
    print('|---|---|---:|---:|---:|---:|---:|---:|')
    for m, rows in table.items():
        b = m.summary['board']
        for board, r in rows.items():
            if r:
                print(f'| {m.name} | {board} | {r["code"]:,} | {b["flash_weights_bytes"]:,} | '
                      f'{b["ram_arena_bytes"]:,} | {r["stack"]} ({b["stack_bytes"]}) | '
                      f'{r["flash"]:,} | {r["ram"]:,} |')


def aarch64_predict(args, m, backend):
    what = f'{m.name} on aarch64' + (' (LLVM object)' if backend == 'llvm' else '')
    exe = os.path.join(m.work, 'aarch64-' + backend)
    if backend == 'llvm':
        model_dir, problems = llvm_object(args, m, 'aarch64')
        if problems:
            return problems, ''
        model = os.path.join(model_dir, 'model.o')
    else:
        model_dir, model = m.work, os.path.join(m.work, 'model.c')
    r = run(['aarch64-linux-gnu-gcc', '-O2', '-static'] + WARN +
            ['-I', model_dir, os.path.join(args.example, 'predict.c'), model, '-lm', '-o', exe])
    if r.returncode != 0:
        return [f'{what}: the build failed:\n{r.stderr[:2000]}'], ''
    r = run(['qemu-aarch64', exe, m.inputs], timeout=600)
    if r.returncode != 0:
        return [f'{what}: exit {r.returncode}: {r.stderr[-500:]}'], ''
    code = run(['aarch64-linux-gnu-objdump', '-d', exe]).stdout
    return differences(outputs_of(r.stdout), m.host, what), code


def series_csv(path, values=200):
    """The first VALUES daily maximum temperatures of Seattle (Debian's
    python3-vega-datasets), scaled by 1/30: seed42's plain SGD with
    momentum diverges on raw degrees."""
    with open(SERIES) as f:
        rows = f.read().splitlines()[1:values + 1]
    with open(path, 'w') as f:
        values = ['%.6g' % (float(r.split(',')[2]) / 30) for r in rows]
        f.write('temp_max\n' + ''.join(v + '\n' for v in values))
    return values


def host_training(args, work, model, data, seed, epochs):
    """The generated program's train on the host: (stdout, weights) or a problem."""
    exe = os.path.join(work, 'host_train')
    c = os.path.join(work, 'host_train.c')
    r = run([args.cnngen, model, '--main', '-o', c])
    if r.returncode != 0:
        return None, f'cnngen --main failed: {r.stderr[:500]}'
    r = run(['cc', '-O2', c, '-I', os.path.join(args.source, 'runtime', 'include'),
             os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', exe])
    if r.returncode != 0:
        return None, f'the host program does not build: {r.stderr[:1000]}'
    w = os.path.join(work, 'host.safetensors')
    r = run([exe, 'train', '--data', data, '--seed', str(seed), '--epochs', str(epochs),
             '--save', w])
    if r.returncode != 0:
        return None, f'the host program failed to train: {r.stderr[:500]}'
    return (r.stdout, read_safetensors(w)), None


def weights_differ(ours, ref, what, rel=1e-5):
    problems = []
    for name, values in ref.items():
        got = ours.get(name)
        if got is None or len(got) != len(values):
            problems.append(f'{what}: tensor {name} missing or of another size')
            continue
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(got, values))
               if abs(a - b) > rel * max(abs(a), abs(b)) + 1e-7]
        problems += [f'{what}: {name}[{i}] = {a!r}, the host {b!r}' for i, a, b in bad[:3]]
    return problems


def epoch_losses(text):
    """The training loss of each epoch line ('epoch 3/4 - loss: X - ...')."""
    return [re.search(r' - loss: (\S+)', l).group(1) for l in text.splitlines()
            if re.match(r'(?i)epoch \d+', l) and ' - loss: ' in l]


def aarch64_training(args, work):
    """The generated program's train command on AArch64 against the host's."""
    runtime = os.path.join(work, 'runtime-aarch64')
    os.makedirs(runtime)
    src = os.path.join(args.source, 'runtime', 'src')
    inc = os.path.join(args.source, 'runtime', 'include')
    objs = []
    for f in sorted(os.listdir(src)):
        if f.endswith('.c'):
            o = os.path.join(runtime, f[:-2] + '.o')
            r = run(['aarch64-linux-gnu-gcc', '-O2', '-std=c99', '-Wall', '-Wextra', '-Werror',
                     '-DCNNRT_NO_ZLIB', '-I', inc, '-c', os.path.join(src, f), '-o', o])
            if r.returncode != 0:
                return [f'the runtime does not build for AArch64 ({f}):\n{r.stderr[:1500]}']
            objs.append(o)
    csv = os.path.join(work, 'series.csv')
    series_csv(csv)
    problems = []
    for model, data, seed, epochs in [
            (os.path.join(args.source, 'examples', 'seed42.cnn'),
             f'series:{csv}:temp_max:10', 5, 60),
            (os.path.join(args.source, 'examples', 'temperature', 'temperature.cnn'),
             f'series:{csv}:temp_max:10', 3, 4)]:
        name = os.path.basename(model)
        d = os.path.join(work, 'train-' + name[:-4])
        os.makedirs(d)
        host, problem = host_training(args, d, model, data, seed, epochs)
        if problem:
            problems.append(f'{name}: {problem}')
            continue
        c = os.path.join(d, 'prog.c')
        run([args.cnngen, model, '--main', '-o', c])
        exe = os.path.join(d, 'prog-aarch64')
        r = run(['aarch64-linux-gnu-gcc', '-O2', '-static'] + WARN + ['-I', inc, c] + objs +
                ['-lm', '-o', exe])
        if r.returncode != 0:
            problems.append(f'{name}: the program does not build for AArch64:\n{r.stderr[:1500]}')
            continue
        w = os.path.join(d, 'aarch64.safetensors')
        r = run(['qemu-aarch64', exe, 'train', '--data', data, '--seed', str(seed),
                 '--epochs', str(epochs), '--save', w], timeout=600)
        if r.returncode != 0:
            problems.append(f'{name}: train on AArch64 exited {r.returncode}: {r.stderr[-500:]}')
            continue
        problems += weights_differ(read_safetensors(w), host[1], f'{name} trained on AArch64')
        losses, host_losses = epoch_losses(r.stdout), epoch_losses(host[0])
        if len(losses) != epochs or len(host_losses) != epochs:
            problems.append(f'{name}: {len(losses)} epoch lines on AArch64, {len(host_losses)} '
                            f'on the host, for {epochs} epochs')
        print(f'{name}: trained {epochs} epochs on AArch64, last loss {losses[-1] if losses else "?"} '
              f'(host {host_losses[-1] if host_losses else "?"})')
    return problems


def part_aarch64(args, models):
    if without(['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-objdump', 'qemu-aarch64']):
        return SKIP
    problems, neon = [], 0
    backends = ['c'] + (['llvm'] if has_llvm(args.cnngen) else [])
    jobs = [(m, b) for m in models for b in backends]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for (m, backend), (p, code) in zip(jobs, pool.map(lambda j: aarch64_predict(args, *j),
                                                          jobs)):
            problems += p
            neon += backend == 'c' and bool(re.search(r'\t(fmla|fmul|fadd)\tv\d+\.4s', code))
    if neon == 0:
        problems.append('no model\'s AArch64 code uses NEON\'s 4-float arithmetic')
    problems += aarch64_training(args, os.path.join(args.work, 'aarch64'))
    return report(problems, f'{len(models)} predictors on AArch64 ({neon} with NEON\'s 4-float '
                  f'arithmetic; {" and ".join(backends)}), the train command')


def static_training_code(work, sources, include):
    """The training code on the board (the model's, the runtime's init.c
    and order.c) calls no allocator and no stdio: only libm, the memory
    copies, the compiler's helpers and, from the model, the runtime
    (whose loop and loader --gc-sections leaves out)."""
    problems = []
    for source in sources:
        obj = os.path.join(work, os.path.basename(source) + '.o')
        r = run(['arm-none-eabi-gcc'] + BOARDS['cortex-m4f'][1] +
                ['-O2', '-ffunction-sections', '-I', include, '-c', source, '-o', obj])
        if r.returncode != 0:
            problems.append(f'{source} does not compile for the board: {r.stderr[:500]}')
            continue
        foreign = sorted(n for n in set(run(['arm-none-eabi-nm', '-u', obj]).stdout.split()) - {'U'}
                         if n not in ALLOWED and not n.startswith(('__aeabi_', 'cnnrt_')))
        if foreign:
            problems.append(f'{os.path.basename(source)} calls {", ".join(foreign)} on the board')
    return problems


def part_train(args):
    if without(['arm-none-eabi-gcc', 'arm-none-eabi-nm', 'qemu-system-arm']):
        return SKIP
    work = os.path.join(args.work, 'train')
    os.makedirs(work)
    model = os.path.join(args.source, 'examples', 'seed42.cnn')
    seed, epochs = 5, 200
    csv = os.path.join(work, 'series.csv')
    values = series_csv(csv)
    with open(os.path.join(work, 'series.h'), 'w') as f:  # the same decimals as the CSV's
        f.write('static const float series[] = {\n' +
                ''.join('    %sf,\n' % (v if re.search('[.e]', v) else v + '.0') for v in values) +
                '};\n')
    host, problem = host_training(args, work, model, f'series:{csv}:temp_max:10', seed, epochs)
    if problem:
        return fail(problem)
    r = run([args.cnngen, model, '--prefix', 'model', '-o', os.path.join(work, 'model.c')])
    if r.returncode != 0:
        return fail(f'cnngen failed: {r.stderr}')
    inc = os.path.join(args.source, 'runtime', 'include')
    src = os.path.join(args.source, 'runtime', 'src')
    elf = os.path.join(work, 'train.elf')
    r = run(['arm-none-eabi-gcc'] + BOARDS['cortex-m4f'][1] + ['-O2'] + WARN +
            ['-ffunction-sections', '-fdata-sections', '-I', work, '-I', inc,
             os.path.join(args.example, 'startup.c'), os.path.join(args.example, 'train_series.c'),
             os.path.join(work, 'model.c'), os.path.join(src, 'init.c'),
             os.path.join(src, 'order.c'), '-T', os.path.join(args.example, 'mps2.ld'),
             '--specs=rdimon.specs', '-nostartfiles', '-Wl,--gc-sections', '-lm', '-o', elf])
    if r.returncode != 0:
        return fail(f'the training image does not build:\n{r.stderr[:3000]}')
    r = run_on_board(BOARDS['cortex-m4f'][0], elf, ['train', str(seed), str(epochs)])
    if r.returncode != 0:
        return fail(f'the board exited {r.returncode}: {r.stdout[-800:]}{r.stderr[-500:]}')
    board = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in host[1]:
            board[parts[0]] = tuple(float(v) for v in parts[1:])
    problems = weights_differ(board, host[1], 'seed42 trained on the Cortex-M4F board')
    summary = json.loads(run([args.cnngen, model, '--summary', '--json']).stdout)
    syms = symbols('arm-none-eabi-nm', elf)
    memory = syms.get('model_train')
    reported = summary['train']['memory_bytes']
    if memory is None or memory[2] not in 'bB':
        problems.append('no model_train in the image\'s .bss')
    elif memory[1] != reported + 4:
        problems.append(f'the training memory in the image is {memory[1]} bytes; --summary '
                        f'reports {reported} (+4, the array\'s guard float)')
    problems += static_training_code(work, [os.path.join(work, 'model.c'),
                                            os.path.join(src, 'init.c'),
                                            os.path.join(src, 'order.c')], inc)
    if any(name.startswith(('cnnrt_main', 'cnnrt_load')) for name in syms):
        problems.append('the runtime\'s own training loop or loader is in the image')
    last = [l for l in r.stdout.splitlines() if l.startswith('epoch')][-1:]
    return report(problems, f'seed42 on the Cortex-M4F board: {epochs} epochs, '
                  f'{last[0] if last else "no epoch line"}; training memory '
                  f'{memory[1] if memory else "?"} bytes in .bss')


# int8: the boards it runs on, and the CPUs whose objects are checked for floats
INT8_BOARDS = ('cortex-m3', 'cortex-m4f')
NO_FPU = {'cortex-m0plus': ['-mcpu=cortex-m0plus', '-mthumb'],
          'cortex-m3': ['-mcpu=cortex-m3', '-mthumb']}
FLOAT_HELPER = re.compile(r'__aeabi_(?:[fd]|u?[il]2[fd])|__(?:add|sub|mul|div|fix|float)\w*[sd]f|'
                          r'^(?:' + '|'.join(sorted(LIBM)) + r')$')


def int8_prepare(args, m):
    """Calibrate (the reference), the int8 C, and the host's integer outputs;
    (problems, whether the model has an int8 form)."""
    ranges = os.path.join(m.work, 'ranges.safetensors')
    if not os.path.exists(ranges):
        return [], False       # the reference's plan failed: no int8 form (its calibrate said)
    r = run([args.cnngen, m.path, '--weights', os.path.join(m.work, 'w0.safetensors'),
             '--quantize', ranges, '--prefix', 'model', '-o', os.path.join(m.work, 'model.c')])
    if r.returncode == 1:
        return [], False
    if r.returncode != 0:
        return [f'{m.name}: cnngen --quantize failed: {r.stderr[:500]}'], True
    problems, m.host = host_predictor(args, m, [])
    return problems, True


def int8_functions(code):
    """{function: its disassembly} of objdump -d -r's text, for the
    functions of the int8 layers and predict_q (and its clone's,
    model_predict_q_scalar on a Cortex-M)."""
    functions, name = {}, None
    for line in code.splitlines():
        head = re.match(r'^[0-9a-f]+ <([^>]+)>:$', line)
        if head:
            name = head.group(1)
            functions[name] = []
        elif name:
            functions[name].append(line)
    return {k: '\n'.join(v) for k, v in functions.items()
            if k.startswith(('model_layer_', 'model_predict_q'))}


# the LLVM backend's triples for the FPU-less CPUs
NO_FPU_TRIPLES = {'cortex-m0plus': 'thumbv6m-none-eabi', 'cortex-m3': 'thumbv7m-none-eabi'}


def int8_check_object(args, m, target, flags, backend):
    """No floating point in the layer functions of the int8 object (its C
    built by gcc, or the LLVM backend's)."""
    if backend == 'c':
        obj = os.path.join(m.work, f'{target}.o')
        r = run(['arm-none-eabi-gcc'] + flags + ['-O2'] + WARN +
                ['-ffunction-sections', '-fdata-sections', '-c',
                 os.path.join(m.work, 'model.c'), '-o', obj])
    else:
        obj = os.path.join(m.work, f'{target}-llvm.o')
        r = run([args.cnngen, m.path, '--weights', os.path.join(m.work, 'w0.safetensors'),
                 '--quantize', os.path.join(m.work, 'ranges.safetensors'), '--prefix', 'model',
                 '--emit=obj', '--target', NO_FPU_TRIPLES[target], '-o', obj])
        target += ' (LLVM object)'
    if r.returncode != 0:
        return [f'{m.name} for {target}: the model does not build:\n{r.stderr[:2000]}']
    functions = int8_functions(run(['arm-none-eabi-objdump', '-d', '-r', obj]).stdout)
    if not any(k.startswith('model_layer_') for k in functions):
        return [f'{m.name} for {target}: no layer function in the object']
    problems = []
    for name, code in sorted(functions.items()):
        calls = sorted({c for c in re.findall(r'R_ARM_THM_(?:CALL|JUMP24)\s+(\S+)', code)
                        if FLOAT_HELPER.search(c)})
        fpu = sorted(set(VFP.findall(code)))
        if calls or fpu:
            problems.append(f'{m.name} for {target}: {name} uses floating point: '
                            f'{", ".join(calls + fpu)}')
    return problems


def int8_flash(m):
    """The int8 constants against the float weights: (problems, figures)."""
    syms = symbols('arm-none-eabi-nm', os.path.join(m.work, 'cortex-m3.o'))
    kernels = syms.get('model_kernels', (0, 0, ''))[1]
    consts = syms.get('model_qconsts', (0, 0, ''))[1]
    floats = m.summary['board']['flash_weights_bytes']
    problems = []
    if kernels > floats / 4 + 64:
        problems.append(f'{m.name}: the int8 kernels take {kernels} bytes, more than a quarter '
                        f'of the float weights\' {floats}')
    return problems, (floats, kernels, consts)


def int8_board(args, m, board):
    machine, flags = BOARDS[board]
    elf, problems = arm_build(args, m, board, flags, 'c')
    if problems:
        return problems
    r = run_on_board(machine, elf, ['predict', m.inputs])
    if r.returncode != 0:
        return [f'{m.name} on {board}: the board exited {r.returncode}: {r.stdout[-500:]}']
    if r.stdout != m.host:
        return [f'{m.name} on {board}: the int8 outputs differ from the host\'s:\n'
                f'{r.stdout[:300]}\nthe host:\n{m.host[:300]}']
    # the M4's DSP extension: its clone's dot products are SMLADs
    with open(os.path.join(m.work, 'model.c')) as f:
        dsp = board == 'cortex-m4f' and '= model_dot4x1_dsp(' in f.read()
    if dsp and not re.search(r'\bsmlad\b', run(['arm-none-eabi-objdump', '-d', elf]).stdout):
        return [f'{m.name} on {board}: its C has SMLAD kernels, its image no smlad']
    return []


def part_int8(args, models):
    if without(['arm-none-eabi-gcc', 'arm-none-eabi-nm', 'arm-none-eabi-objdump',
                'qemu-system-arm']):
        return SKIP
    q = shlex.quote
    lines = []
    for m in models:
        data = os.path.join(m.work, 'calibrate.csv')
        summary = json.loads(run([args.cnngen, m.path, '--summary', '--json']).stdout)
        write_train_data(data, summary, random.Random(m.seed))
        lines.append(f'{q(m.work)}/cal.out {q(m.work)}/cal.err calibrate {q(m.path)} --data '
                     f'{q(data)} --weights {q(m.work)}/w0.safetensors --save '
                     f'{q(m.work)}/ranges.safetensors')
    oracle_batch(args.oracle, lines)
    problems, quantized = [], []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for m, (p, has_form) in zip(models, pool.map(lambda m: int8_prepare(args, m), models)):
            problems += p
            if has_form and not p:
                quantized.append(m)
        jobs = [(m, b) for m in quantized if m.fits_a_board() for b in INT8_BOARDS]
        for p in pool.map(lambda j: int8_board(args, *j), jobs):
            problems += p
        backends = ['c'] + (['llvm'] if has_llvm(args.cnngen) else [])
        checks = [(m, t, f, b) for m in quantized for t, f in NO_FPU.items() for b in backends]
        for p in pool.map(lambda c: int8_check_object(args, *c), checks):
            problems += p
    for m in quantized:
        p, (floats, kernels, consts) = int8_flash(m)
        problems += p
        print(f'{m.name:16} flash: float weights {floats} bytes; int8 kernels {kernels}, '
              f'int32 constants {consts}')
    return report(problems, f'{len(quantized)} int8 predictors, {len(jobs)} board runs equal to '
                  f'the host bit for bit, their layer functions without floating point on '
                  f'{len(NO_FPU)} FPU-less CPUs ({" and ".join(backends)})')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--source', required=True, help='the project\'s source tree')
    ap.add_argument('--runtime-lib', required=True, help='where libcnnrt.a is')
    ap.add_argument('--part', required=True, choices=['boards', 'aarch64', 'train', 'int8'])
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--table', action='store_true',
                    help='boards: also print the footprint table of docs/targets.md')
    ap.add_argument('paths', nargs='*')
    args = ap.parse_args()
    args.cnngen = os.path.abspath(args.cnngen)
    args.example = os.path.join(args.source, 'examples', 'cortex-m')
    with tempfile.TemporaryDirectory() as work:
        args.work = work
        if args.part == 'train':
            return part_train(args)
        models = [Model(p, os.path.join(work, str(i)), i)
                  for i, p in enumerate(model_files(args.paths))]
        init_all(args, models)
        if args.part == 'int8':
            return part_int8(args, models)
        problems = []
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for p in pool.map(lambda m: m.prepare(args), models):
                problems += p
        if problems:
            for p in problems:
                print('FAIL: ' + p)
            return 1
        return part_boards(args, models) if args.part == 'boards' else part_aarch64(args, models)


if __name__ == '__main__':
    sys.exit(main())
