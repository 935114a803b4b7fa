"""What the end-to-end comparisons share: their common options, the model
files of the command line, running a command for its text, and building
a generated program against the runtime."""
import json
import math
import os
import shlex
import struct
import subprocess
import sys

# Warnings that fail a generated file: it must compile cleanly.
WARNINGS = ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Werror']


def model_files(paths):
    """The .cnn files named, and those in the directories named (sorted)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith('.cnn'))
        else:
            files.append(p)
    return files


def run(cmd, timeout=900, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def oracle_batch(oracle, lines, env=None):
    """The reference's exit status of each line, run in one process
    (`cnnref.py batch`: OUT ERR COMMAND ARGS... a line)."""
    return run(['/usr/bin/python3', oracle, 'batch'], input='\n'.join(lines) + '\n',
               env=env).stdout.split()


def add_build_arguments(ap, cflags):
    """cnngen, the reference, the runtime, and how generated C is compiled."""
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--oracle', required=True)
    ap.add_argument('--runtime-include', required=True)
    ap.add_argument('--runtime-lib', required=True)
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--cflags', default=cflags)
    ap.add_argument('--sanitize', action='store_true')
    ap.add_argument('--min', type=int, default=0)
    ap.add_argument('--obj', action='store_true',
                    help='also build every program through --emit=obj (the LLVM backend) and '
                         'compare it with the C build')
    ap.add_argument('--isa', default='generic', choices=sorted(ISA_ONLY),
                    help='the instruction-set clone of the generated C to build and run: '
                         'one alone (the default, generic, runs on any CPU), or auto (every '
                         'clone, the CPU picks); a clone this CPU cannot run is skipped')
    ap.add_argument('--obj-target',
                    help='with --obj: build the objects for this triple (x86_64-pc-linux-gnu: '
                         'the multiversioned object) and run the clone --isa names in them '
                         '(CNNGEN_ISA)')


# --isa: the clone built alone (its compile flag), and the LLVM backend's
# vector width for the same loop IR.
ISA_ONLY = {'avx512': (['-DCNNGEN_ONLY_AVX512'], ['--vector-width', '16']),
            'avx2': (['-DCNNGEN_ONLY_AVX2'], ['--vector-width', '8']),
            'generic': (['-DCNNGEN_ONLY_GENERIC'], ['--vector-width', '4']),
            'scalar': (['-DCNNGEN_PORTABLE'], ['--vector-width', '0']),
            'auto': ([], [])}
# What the CPU needs for a clone (its flags in /proc/cpuinfo).
ISA_NEEDS = {'avx512': ['avx512f', 'avx512vl', 'fma'], 'avx2': ['avx2', 'fma']}
SKIP = 77   # ctest's SKIP_RETURN_CODE for these tests
# An int8 C file's clones (CNNGEN_ISA) and the CPU flags each needs.
INT8_CLONES = {'vnni': ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512_vnni'],
               'avx2': ['avx2', 'fma'], 'scalar': []}


def int8_clones():
    """(the int8 clones this CPU runs, {each one it cannot: the flags it
    lacks}): on x86-64 by /proc/cpuinfo, elsewhere the plain loops alone."""
    if os.uname().machine not in ('x86_64', 'amd64'):
        return ['scalar'], {}
    flags = cpu_flags()
    lacks = {c: [f for f in needs if f not in flags] for c, needs in INT8_CLONES.items()}
    return [c for c in INT8_CLONES if not lacks[c]], {c: m for c, m in lacks.items() if m}


def isa_cflags(args):
    return ISA_ONLY[args.isa][0]


def isa_llvm_options(args):
    if getattr(args, 'obj_target', None):
        return ['--target', args.obj_target]
    return ISA_ONLY[args.isa][1]


def force_isa_in_objects(args):
    """--obj-target: the objects' programs (and the C builds, which have
    that one clone) run the clone --isa names."""
    if args.obj_target and args.isa in ('avx512', 'avx2', 'generic'):
        os.environ['CNNGEN_ISA'] = args.isa


def cpu_flags():
    """This CPU's flags as /proc/cpuinfo lists them (none where it cannot be read)."""
    try:
        with open('/proc/cpuinfo') as f:
            return next((l.split(':', 1)[1].split() for l in f if l.startswith('flags')), [])
    except OSError:
        return []


def missing_for(isa, flags):
    """The flags a clone needs that this CPU lacks."""
    return [n for n in ISA_NEEDS.get(isa, []) if n not in flags]


def skip_unless_cpu_runs(args):
    """Exit with SKIP (a message, never a pass) when this CPU cannot run
    the clone that --isa names."""
    missing = missing_for(args.isa, cpu_flags())
    if missing:
        print(f'SKIPPED: this CPU cannot run the {args.isa} clone (no {", ".join(missing)})')
        sys.exit(SKIP)


def has_llvm(cnngen):
    """Whether this cnngen has the LLVM backend (--version says)."""
    return 'LLVM backend: LLVM' in run([cnngen, '--version']).stdout


def sanitizer_flags(args):
    return ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined'] \
        if args.sanitize else []


def build_with_runtime(args, model, c_path, exe, options=()):
    """cnngen MODEL --main [options], compiled cleanly against the runtime:
    None, or what went wrong."""
    gen = run([args.cnngen, model, '--main', '-o', c_path] + list(options))
    if gen.returncode != 0:
        return f'cnngen failed ({gen.returncode}):\n{gen.stderr}'
    cc = run([args.cc] + WARNINGS + shlex.split(args.cflags) + isa_cflags(args) + sanitizer_flags(args) +
             [c_path, '-I', args.runtime_include, os.path.join(args.runtime_lib, 'libcnnrt.a'),
              '-lz', '-lm', '-o', exe])
    if cc.returncode != 0:
        return f'the generated C does not compile cleanly:\n{cc.stderr[:3000]}'
    return None


def build_object_with_runtime(args, model, o_path, exe, options=()):
    """cnngen MODEL --main --emit=obj [options], linked against the runtime:
    None, or what went wrong."""
    gen = run([args.cnngen, model, '--main', '--emit=obj', '-o', o_path] + isa_llvm_options(args) +
              list(options))
    if gen.returncode != 0:
        return f'cnngen --emit=obj failed ({gen.returncode}):\n{gen.stderr}'
    cc = run([args.cc] + sanitizer_flags(args) +
             [o_path, os.path.join(args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o', exe])
    if cc.returncode != 0:
        return f'the object does not link:\n{cc.stderr[:3000]}'
    return None


def read_tensors(path):
    """{name: (shape, tuple of floats)} of an F32 safetensors file, in file
    order (metadata skipped)."""
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        out[name] = (info['shape'], struct.unpack(f'<{(b - a) // 4}f', body[a:b]))
    return out


def read_safetensors(path):
    """{name: tuple of floats} of an F32 safetensors file (metadata skipped)."""
    return {name: values for name, (_, values) in read_tensors(path).items()}


def write_safetensors(path, tensors):
    """A safetensors file of float32 tensors: tensors is [(name, shape, values)]."""
    header, blobs, offset = {}, [], 0
    for name, shape, values in tensors:
        blob = struct.pack(f'<{len(values)}f', *values)
        header[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def write_train_data(path, summary, rng):
    """Random training rows for a model (its --summary --json): inputs in
    [-1, 1] and targets its loss accepts; two batches and a half, fewer
    for big inputs."""
    size = math.prod(summary['input'])
    out = summary['output']
    loss, batch = summary['train']['loss'], summary['train']['batch']
    count = min(2 * batch + max(1, batch // 2), 150)
    if size * count > 30000:        # big inputs: one full batch and a partial one
        count = batch + max(1, batch // 2)
    classes = out[-1]
    with open(path, 'w') as f:
        for _ in range(count):
            row = ['%.6g' % rng.uniform(-1, 1) for _ in range(size)]
            if loss == 'crossentropy':
                row += [str(rng.randrange(classes)) for _ in range(math.prod(out) // classes)]
            elif loss == 'binary_crossentropy':
                row += [str(rng.randrange(2)) for _ in range(math.prod(out))]
            else:
                row += ['%.6g' % rng.uniform(-1, 1) for _ in range(math.prod(out))]
            f.write(','.join(row) + '\n')
