#!/usr/bin/python3
"""Hostile and broken inputs that once went wrong (the hardening issue's
defects), each with the exact answer now: an error with its place and
exit status, nothing written or saved.

    test_hostile.py --cnngen BIN --driver data_driver --runtime-include DIR
                    --runtime-lib DIR [--sanitize]

Every case prints 'ok' or 'FAIL'; the last line counts them.
"""

import argparse
import os
import gzip
import struct
import sys
import resource
import tempfile
import time
import zlib

from e2e_common import WARNINGS, run, sanitizer_flags, write_safetensors

results = []


def check(name, ok, detail=''):
    results.append(ok)
    print(f'{"ok  " if ok else "FAIL"} {name}' + ('' if ok else f': {detail}'))


def expect(name, proc, status, *fragments):
    """proc exited with status, and its stderr has each fragment."""
    err = proc.stderr
    missing = [f for f in fragments if f not in err]
    check(name, proc.returncode == status and not missing,
          f'exit {proc.returncode} (want {status}), stderr {err!r}, missing {missing}')


def idx_file(path, magic_rank, dims, data=b''):
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, 8, magic_rank]) + b''.join(struct.pack('>I', d) for d in dims) + data)


def data_cases(a, work):
    """The data readers: numbers beyond float range, empty and overflowing
    idx headers (undefined behaviour in the loader before)."""
    csv = os.path.join(work, 'd.csv')
    with open(csv, 'w') as f:
        f.write('1,2,3\n4,1e39,5\n')
    expect('csv: 1e39 is out of float range', run([a.driver, csv, '2', '1', '0', '0']), 1,
           f"{csv}:2:3: error: '1e39' is out of float range (3.4e38)")
    with open(csv, 'w') as f:
        f.write('1,2,-1e999\n')
    expect('csv: -1e999 is out of float range', run([a.driver, csv, '2', '1', '0', '0']), 1,
           f"{csv}:1:5: error: '-1e999' is out of float range")
    # rows of 100,000 numbers: linear in the line (a column counted for
    # every field made it quadratic: minutes for an image data set)
    with open(csv, 'w') as f:
        for _ in range(3):
            f.write(','.join(['0.5'] * 100000) + '\n')
    start = time.monotonic()
    proc = run([a.driver, csv, '99999', '1', '0', '0'], timeout=120)
    check('csv: rows of 100,000 numbers in under 5 s',
          proc.returncode == 0 and time.monotonic() - start < 5, proc.stderr)
    series = os.path.join(work, 's.csv')
    with open(series, 'w') as f:
        f.write('t\n1\n2\n3e50\n4\n')
    expect('series: 3e50 is out of float range',
           run([a.driver, f'series:{series}:t:2', '2', '1', '0', '0']), 1,
           f"{series}:4:1: error: column t: '3e50' is out of float range")
    # a 1 MB line of commas: each cell was given the line's room (4 GB, minutes)
    with open(series, 'w') as f:
        f.write('t\n' + ',' * (1 << 20) + '\n1\n')
    start = time.monotonic()
    limit = None if a.sanitize else (lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (1 << 29, 1 << 29)))
    proc = run([a.driver, f'series:{series}:t:1', '1', '1', '0', '0'], timeout=60,
               preexec_fn=limit)
    expect('series: a 1 MB line of commas, in 512 MB and seconds', proc, 1,
           f"{series}:2:1: error: column t: '' is not a number")
    check('... in under 10 s', time.monotonic() - start < 10)
    # 150,000 values in windows of 1,000: the windows were stored whole (600 MB)
    with open(series, 'w') as f:
        f.write('t\n' + ''.join(f'{i % 7}\n' for i in range(150000)))
    limit = None if a.sanitize else (lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (1 << 28, 1 << 28)))
    proc = run([a.driver, f'series:{series}:t:1000', '1000', '1', '0', '0'], timeout=60,
               preexec_fn=limit)
    check('series: windows of 1,000 over 150,000 values in 256 MB',
          proc.returncode == 0 and proc.stdout.startswith('149000 samples'),
          proc.stdout + proc.stderr)
    prefix = os.path.join(work, 'empty')
    idx_file(prefix + '-images-idx3-ubyte', 3, [0, 2, 2])
    idx_file(prefix + '-labels-idx1-ubyte', 1, [0])
    expect('idx: zero images is an error', run([a.driver, f'idx:{prefix}', '4', '1', '0', '0']),
           1, 'error: no samples (0 images)')
    # zero images of 2^32-1 x 2^32-1: rows times columns overflowed a long
    prefix = os.path.join(work, 'wide')
    idx_file(prefix + '-images-idx3-ubyte', 3, [0, 0xffffffff, 0xffffffff])
    idx_file(prefix + '-labels-idx1-ubyte', 1, [0])
    expect('idx: zero images of 2^32-1 x 2^32-1', run([a.driver, f'idx:{prefix}', '4', '1', '0',
                                                      '0']), 1, 'error: no samples (0 images)')
    # two of them: the product wraps 64 bits, and could match the data's size
    prefix = os.path.join(work, 'huge')
    idx_file(prefix + '-images-idx3-ubyte', 3, [2, 0xffffffff, 0xffffffff])
    idx_file(prefix + '-labels-idx1-ubyte', 1, [2], b'\0\0')
    expect('idx: a header whose sizes overflow', run([a.driver, f'idx:{prefix}', '4', '1', '0',
                                                      '0']), 1, "error: the header's sizes overflow")
    gzip_cases(a, work)


def idx_images(count, rows, cols, data):
    return bytes([0, 0, 8, 3]) + struct.pack('>III', count, rows, cols) + data


def gzip_cases(a, work):
    """A gzipped idx set cut off in its trailer (accepted before), with a
    bad CRC (no reason given before), a bomb (inflated whole before its
    size was checked), a header that declares terabytes."""
    packed = gzip.compress(idx_images(2, 1, 3, bytes(range(6))))
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    inflated = bomb.compress(idx_images(2, 1, 3, bytes(range(6))))
    for _ in range(512):  # 512 MB of zeros in 500 KB
        inflated += bomb.compress(bytes(1 << 20))
    bombed = inflated + bomb.flush()
    flipped = packed[:-8] + bytes([packed[-8] ^ 1]) + packed[-7:]
    cases = [('cut off in its trailer', packed[:-4], 2, 'unexpected end of file'),
             ('cut off before its trailer', packed[:-8], 2, 'unexpected end of file'),
             ('with a bad CRC', flipped, 2, 'incorrect data check'),
             ('a bomb: 512 MB of data for a header of 6 bytes, in 256 MB', bombed, 1,
              'more than 67108870 bytes of data; the header says 6')]
    limit = None if a.sanitize else (lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (1 << 28, 1 << 28)))
    for name, data, status, message in cases:
        prefix = os.path.join(work, 'gz' + str(len(data)))
        with open(prefix + '-images-idx3-ubyte.gz', 'wb') as f:
            f.write(data)
        idx_file(prefix + '-labels-idx1-ubyte', 1, [2], b'\0\1')
        expect(f'idx.gz {name}', run([a.driver, f'idx:{prefix}', '3', '1', '0', '0'],
                                     preexec_fn=limit), status, message)
    prefix = os.path.join(work, 'tera')
    with open(prefix + '-images-idx3-ubyte', 'wb') as f:
        f.write(idx_images(0xffffffff, 0xffff, 1, b'abc'))
    idx_file(prefix + '-labels-idx1-ubyte', 1, [2], b'\0\1')
    expect('idx: a header that declares 281 TB, in 256 MB',
           run([a.driver, f'idx:{prefix}', '3', '1', '0', '0'], preexec_fn=limit), 1,
           '3 bytes of data; the header says 281470681677825')


MODEL = '''model diverge
input [2]
dense(1)
train { optimizer = sgd(lr=1e10); epochs = 3; batch = 2; loss = mse }
'''


def program_cases(a, work):
    """The generated program: divergence, NaN starting weights, --epochs
    past a long; nothing saved over a good file."""
    model = os.path.join(work, 'diverge.cnn')
    with open(model, 'w') as f:
        f.write(MODEL)
    c_path, exe = os.path.join(work, 'diverge.c'), os.path.join(work, 'diverge')
    gen = run([a.cnngen, model, '--main', '-o', c_path])
    cc = run(['gcc'] + WARNINGS + sanitizer_flags(a) +
             [c_path, '-I', a.runtime_include, os.path.join(a.runtime_lib, 'libcnnrt.a'), '-lz',
              '-lm', '-o', exe])
    if gen.returncode or cc.returncode:
        check('build the diverging model', False, gen.stderr + cc.stderr)
        return
    data = os.path.join(work, 'train.csv')
    with open(data, 'w') as f:
        for i in range(40):
            f.write(f'{i},{2 * i},{3 * i + 1}\n')
    good = os.path.join(work, 'good.safetensors')
    write_safetensors(good, [('dense_1.kernel', [2, 1], [0.5, 0.25]), ('dense_1.bias', [1], [1])])
    before = open(good, 'rb').read()
    expect('training that diverges stops, exit 1',
           run([exe, 'train', '--data', data, '--save', good, '--quiet']), 1,
           'error: loss is ', 'try a smaller learning rate', 'nothing saved')
    check('nothing saved over the good file', open(good, 'rb').read() == before)
    bad = os.path.join(work, 'nan.safetensors')
    write_safetensors(bad, [('dense_1.kernel', [2, 1], [0.5, float('nan')]),
                            ('dense_1.bias', [1], [1])])
    expect('a NaN --init file is refused',
           run([exe, 'train', '--data', data, '--init', bad, '--save', good, '--quiet']), 1,
           f"{bad}: error: tensor 'dense_1.kernel' holds nan at element 1")
    expect('--epochs past a long is refused',
           run([exe, 'train', '--data', data, '--epochs', '99999999999999999999']), 2,
           "argument --epochs: '99999999999999999999' is too large")
    expect('predict with NaN weights is refused', run([exe, 'predict', '--weights', bad], input='1,2\n'),
           1, 'holds nan')
    save_cases(a, exe, data, good, work)
    device_cases(a, exe, model, good, work)
    folder = os.path.join(work, 'folder')
    os.mkdir(folder)
    expect('predict from a directory: exit 2, not 0 with nothing',
           run([exe, 'predict', '--weights', good, folder]), 2,
           f'{folder}: error: cannot read it: Is a directory')
    expect('--weights naming a directory says so', run([exe, 'predict', '--weights', folder]), 2,
           f'{folder}: error: cannot read the file: Is a directory')
    expect('cnngen on a directory says so', run([a.cnngen, folder, '--check']), 2,
           f"cannot read '{folder}': Is a directory")
    out = os.path.join(work, 'baked.c')
    expect('cnngen --weights with NaN: an error, not C that says nanf',
           run([a.cnngen, model, '--weights', bad, '-o', out]), 1, 'holds nan')
    check('no C written from NaN weights', not os.path.exists(out))


def save_cases(a, exe, data, good, work):
    """--save replaces a regular file only, keeps its mode, leaves no
    temporary file; the same for what cnngen writes."""
    # no epochs: what is saved is the starting weights (the model diverges)
    train = [exe, 'train', '--data', data, '--epochs', '0', '--quiet', '--init', good]
    target = os.path.join(work, 'target.safetensors')
    with open(target, 'wb') as f:
        f.write(b'keep')
    link = os.path.join(work, 'link.safetensors')
    os.symlink(target, link)
    expect('--save onto a symbolic link is refused', run(train + ['--save', link]), 2,
           f"cannot write '{link}': it is a symbolic link, not a regular file")
    check('the link and its target are left as they were',
          os.path.islink(link) and open(target, 'rb').read() == b'keep')
    fifo = os.path.join(work, 'pipe.safetensors')
    os.mkfifo(fifo)
    expect('--save onto a pipe (a device, say) is refused', run(train + ['--save', fifo]), 2,
           f"cannot write '{fifo}': it is a pipe, not a regular file")
    readonly = os.path.join(work, 'readonly.safetensors')
    with open(readonly, 'wb') as f:
        f.write(b'old')
    os.chmod(readonly, 0o440)
    saved = run(train + ['--save', readonly])
    check('--save over a read-only file keeps its mode',
          saved.returncode == 0 and (os.stat(readonly).st_mode & 0o777) == 0o440
          and open(readonly, 'rb').read()[8:9] == b'{', saved.stderr)
    new = os.path.join(work, 'new.safetensors')
    old_mask = os.umask(0o027)
    saved = run(train + ['--save', new])
    os.umask(old_mask)
    check('a new file gets the mode the umask gives', saved.returncode == 0 and
          (os.stat(new).st_mode & 0o777) == 0o640, f'{oct(os.stat(new).st_mode)} {saved.stderr}')
    left = [n for n in os.listdir(work) if '.tmp' in n]
    check('no temporary file is left behind', not left, left)
    # The temporary name was PATH.tmp<pid>: a link planted at the next
    # pids had the weights written through it, over the link's target.
    victim = os.path.join(work, 'victim')
    with open(victim, 'wb') as f:
        f.write(b'victim')
    planted = os.path.join(work, 'planted.safetensors')
    with open('/proc/sys/kernel/ns_last_pid') as f:
        last = int(f.read())
    links = [f'{planted}.tmp{pid}' for pid in range(last + 1, last + 500)]
    for link in links:
        os.symlink(victim, link)
    saved = run(train + ['--save', planted])
    for link in links:
        os.unlink(link)
    check('a link planted at the guessable temporary names is not followed',
          saved.returncode == 0 and open(victim, 'rb').read() == b'victim'
          and open(planted, 'rb').read()[8:9] == b'{', saved.stderr)
    model = os.path.join(work, 'diverge.cnn')
    source = os.path.join(work, 'm.c')  # a model whose file name is an output's
    with open(source, 'w') as f:
        f.write(MODEL)
    expect('cnngen m.c -o m.c does not write over the model', run([a.cnngen, source, '-o', source]),
           2, f"'{source}' would be written over the input '{source}'")
    expect('-MF naming the model is refused',
           run([a.cnngen, model, '-o', os.path.join(work, 'x.c'), '-MD', '-MF', model]), 2,
           f"'{model}' would be written over the input '{model}'")
    check('the models are intact', open(source).read() == MODEL and open(model).read() == MODEL)
    expect("-o '' is refused", run([a.cnngen, model, '-o', '']), 2,
           "-o takes a file name, not ''")
    expect('-o dir/ is refused', run([a.cnngen, model, '-o', work + '/']), 2,
           f"-o takes a file name, not '{work}/'")
    expect('-MF /dev/full: exit 2 with the reason (exit 2, no word before)',
           run([a.cnngen, model, '-o', os.path.join(work, 'dep.c'), '-MD', '-MF', '/dev/full']), 2,
           "cannot write '/dev/full': it is a device, not a regular file")
    check('... and the outputs are not written without it',
          not os.path.exists(os.path.join(work, 'dep.c')))
    os.mkfifo(os.path.join(work, 'pipe.c'))
    expect('cnngen -o onto a pipe is refused (it waited for a writer, reading it)',
           run([a.cnngen, model, '-o', os.path.join(work, 'pipe.c')], timeout=30), 2,
           "it is a pipe, not a regular file")
    os.mkdir(os.path.join(work, 'dir.c'))
    expect('cnngen -o onto a directory is refused',
           run([a.cnngen, model, '-o', os.path.join(work, 'dir.c')]), 2,
           "it is a directory, not a regular file")


def device_cases(a, exe, model, good, work):
    """/dev/zero as each kind of input: read up to a size limit (a model:
    1 GB; weights: until memory ran out) before; now its first NUL byte
    or the model's size ends it.  A sample line is bounded too."""
    limit = None if a.sanitize else (lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (1 << 29, 1 << 29)))
    cases = [('cnngen: /dev/zero as the model', [a.cnngen, '/dev/zero', '--check'], 1,
              "/dev/zero:1:1: error: unexpected character '\\x00'"),
             ('cnngen: /dev/zero as --weights', [a.cnngen, model, '--weights', '/dev/zero',
                                                 '-o', os.path.join(work, 'zero.c')], 1,
              "/dev/zero: error: the file is larger than its header and the model's 3 "
              "parameters can need"),
             ('predict --weights /dev/zero', [exe, 'predict', '--weights', '/dev/zero'], 1,
              'the file is larger than its header'),
             ('predict /dev/zero', [exe, 'predict', '--weights', good, '/dev/zero'], 1,
              '/dev/zero:1:1: error: a NUL byte: the input is not text'),
             ('train --data /dev/zero', [exe, 'train', '--data', '/dev/zero'], 1,
              '/dev/zero:1:1: error: a NUL byte: this is not a text file')]
    for name, cmd, status, message in cases:
        start = time.monotonic()
        expect(name + ', in 512 MB', run(cmd, timeout=60, preexec_fn=limit), status, message)
        check('... in under 5 s', time.monotonic() - start < 5)
    line = os.path.join(work, 'line.txt')
    with open(line, 'w') as f:
        f.write('1' * (1 << 20))
    expect('predict: a 1 MB line for 2 inputs', run([exe, 'predict', '--weights', good, line]), 1,
           f'{line}:1: error: the line is longer than 66048 bytes, the limit for 2 inputs')


def large_model_cases(a, work):
    """Past 2 GB of static memory the generated code did not link
    ("relocation truncated to fit"), with no word from cnngen; the
    parameter limit is in errors_golden (limit_params.cnn)."""
    model = os.path.join(work, 'activations.cnn')
    with open(model, 'w') as f:
        f.write('model big\ninput [10000, 10000, 1]\nconv2d(filters=8, kernel=1, activation=relu)\n'
                'conv2d(filters=1, kernel=1)\n')
    expect('activations of 3.2 GB: an error, nothing written',
           run([a.cnngen, model, '-o', os.path.join(work, 'activations.c')]), 1,
           f'{model}: error: the model needs 3200000100 bytes of static memory (its activations '
           '3200000000), more than the limit of 2000000000')
    check('... no C written', not os.path.exists(os.path.join(work, 'activations.c')))
    model = os.path.join(work, 'params.cnn')
    with open(model, 'w') as f:
        f.write('model big\ninput [1000]\ndense(300000, activation=relu)\ndense(1)\n')
    out = os.path.join(work, 'params.c')
    # (the model's static memory: parameters, arena and predict_batch's 52 arenas)
    proc = run([a.cnngen, model, '--main', '-o', out])
    expect('1.2 GB of parameters: no training code (its memory would pass 2 GB), with a warning',
           proc, 0, 'warning: training batch 32 needs 3722400640 bytes of static memory, '
           '4988403972 in all with the model\'s; no training code')
    check('... and the C has no training code', proc.returncode == 0 and
          'big_train_batch' not in open(out).read())


def full_disk_case(a, work, enospc):
    """A full disk while cnngen writes the .c: the .h was replaced and the
    .c not, a mismatched pair.  Now both are written before either is
    renamed into place.  enospc is a preloaded library that fails every
    write to a file whose name holds $CNNGEN_TEST_ENOSPC."""
    model = os.path.join(work, 'pair.cnn')
    out = os.path.join(work, 'pair.c')
    with open(model, 'w') as f:
        f.write(MODEL)
    first = run([a.cnngen, model, '-o', out])
    before = (open(out).read(), open(out[:-1] + 'h').read())
    with open(model, 'w') as f:
        f.write(MODEL.replace('input [2]', 'input [3]'))
    env = dict(os.environ, LD_PRELOAD=enospc, CNNGEN_TEST_ENOSPC='pair.c.tmp',
               ASAN_OPTIONS=os.environ.get('ASAN_OPTIONS', '') + ':verify_asan_link_order=0')
    expect('cnngen on a full disk: exit 2 with the reason', run([a.cnngen, model, '-o', out],
                                                                 env=env), 2,
           f"cannot write '{out}': No space left on device")
    after = (open(out).read(), open(out[:-1] + 'h').read())
    check('... the old .c and .h are left as a pair', first.returncode == 0 and after == before)
    left = [n for n in os.listdir(work) if n.startswith('pair.') and '.tmp' in n]
    check('... and no temporary file', not left, left)
    fine = run([a.cnngen, model, '-o', out])
    check('... then, with room, both are replaced', fine.returncode == 0 and
          open(out[:-1] + 'h').read() != before[1], fine.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cnngen', required=True)
    ap.add_argument('--driver', required=True)
    ap.add_argument('--runtime-include', required=True)
    ap.add_argument('--runtime-lib', required=True)
    ap.add_argument('--sanitize', action='store_true')
    ap.add_argument('--enospc', required=True, help='the preloaded library that fills the disk')
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data_cases(a, work)
        program_cases(a, work)
        full_disk_case(a, work, a.enospc)
        large_model_cases(a, work)
    passed = sum(results)
    print(f'{passed} passed, {len(results) - passed} failed')
    return 0 if passed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
