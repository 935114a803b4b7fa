#!/usr/bin/python3
"""The DATA forms against the reference: the same files give the same
errors (word for word, exit status too) or the same samples.

    compare_data.py --driver data_driver --oracle cnnref.py

Each case is a model (which fixes the layout: input size, output size,
loss) and a data file.  The reference runs `eval --data D --weights W`
(which loads the data after the weights); the driver loads it with
libcnnrt.  For good data both must load the same number of samples, and
the driver's sums must match the reference's arrays.
"""
import argparse
import gzip
import os
import struct
import subprocess
import sys
import tempfile

MODELS = {
    'reg': 'model reg\ninput [3]\ndense(2)\n',                       # 3 inputs, 2 targets
    'cls': 'model cls\ninput [3]\ndense(4, activation=softmax)\n',   # class index 0..3
    'win': 'model win\ninput [4]\ndense(1)\n',                       # series window 4
    'img': 'model img\ninput [2, 3]\nflatten\ndense(5, activation=softmax)\n',
    'img1': 'model img1\ninput [2, 3]\nflatten\ndense(1)\n',
    'img2': 'model img2\ninput [2, 3]\nflatten\ndense(2)\n',
}
LAYOUTS = {'reg': (3, 2, 0, 0), 'cls': (3, 4, 4, 1), 'win': (4, 1, 0, 0), 'img': (6, 5, 5, 1),
           'img1': (6, 1, 0, 0), 'img2': (6, 2, 0, 0)}


def idx(images, labels, rows=2, cols=3, magic_images=None, extra=b''):
    img = struct.pack('>BBBBIII', 0, 0, 8, 3, len(images), rows, cols) if magic_images is None \
        else magic_images
    img += bytes(p for image in images for p in image) + extra
    lab = struct.pack('>BBBBI', 0, 0, 8, 1, len(labels)) + bytes(labels)
    return img, lab


def idx_files(pair, gz=False):
    """{file name: bytes} of an images/labels pair with PREFIX p."""
    names = ('p-images-idx3-ubyte', 'p-labels-idx1-ubyte')
    if gz:
        return {name + '.gz': gzip.compress(data) for name, data in zip(names, pair)}
    return dict(zip(names, pair))


CASES = [  # (name, model, files {suffix: bytes}, spec relative to the directory)
    ('csv good', 'reg', {'d.csv': b'a,b,c,t1,t2\n1,2,3,4,5\n# skip\n\n0.5 1e1 -2 0 1\n'}, 'd.csv'),
    ('csv classes', 'cls', {'d.csv': b'1,2,3,0\n4 5 6 3\n'}, 'd.csv'),
    ('csv bad class', 'cls', {'d.csv': b'1,2,3,0\n4 5 6 4\n'}, 'd.csv'),
    ('csv fractional class', 'cls', {'d.csv': b'1,2,3,1.5\n'}, 'd.csv'),
    ('csv count', 'reg', {'d.csv': b'1,2,3,4\n'}, 'd.csv'),
    ('csv count classes', 'cls', {'d.csv': b'1,2,3\n'}, 'd.csv'),
    ('csv empty field', 'reg', {'d.csv': b'1,,3,4,5\n'}, 'd.csv'),
    ('csv not a number', 'reg', {'d.csv': b'1,2,3,4,5\n1,2,x,4,5\n'}, 'd.csv'),
    ('csv nan', 'reg', {'d.csv': b'1,2,3,4,nan\n'}, 'd.csv'),
    ('csv no samples', 'reg', {'d.csv': b'# only a comment\na,b,c,d,e\n'}, 'd.csv'),
    ('csv not utf-8', 'reg', {'d.csv': b'1,2,3,4,5 # caf\xe9\n'}, 'd.csv'),
    ('csv missing', 'reg', {}, 'missing.csv'),
    ('series by name', 'win', {'s.csv': b'date,temp,x\n1,10,a\n2,11,b\n3,12,c\n4,13,d\n5,14,e\n6,"15",f\n'},
     'series:s.csv:temp:4'),
    ('series by number', 'win', {'s.csv': b'date,temp\n1,10\n2,11\n3,12\n4,13\n5,14\n'},
     'series:s.csv:2:4'),
    ('series no header', 'win', {'s.csv': b'10\n11\n12\n13\n14\n15\n'}, 'series:s.csv:1:4'),
    ('series window', 'win', {'s.csv': b'1\n2\n'}, 'series:s.csv:1:3'),
    ('series spec', 'win', {'s.csv': b'1\n'}, 'series:s.csv:4'),
    ('series bad n', 'win', {'s.csv': b'1\n'}, 'series:s.csv:1:x'),
    ('series column 0', 'win', {'s.csv': b'1\n'}, 'series:s.csv:0:4'),
    ('series no column', 'win', {'s.csv': b'a,b\n1,2\n'}, 'series:s.csv:c:4'),
    ('series column number too big', 'win', {'s.csv': b'1,2\n'}, 'series:s.csv:3:4'),
    ('series not a number', 'win', {'s.csv': b't\n1\n2\nx\n'}, 'series:s.csv:t:4'),
    ('series short row', 'win', {'s.csv': b'a,t\n1,2\n3\n'}, 'series:s.csv:t:4'),
    ('series too few', 'win', {'s.csv': b'1\n2\n3\n4\n'}, 'series:s.csv:1:4'),
    ('series classes', 'cls', {'s.csv': b'1\n'}, 'series:s.csv:1:3'),
    ('idx good', 'img', idx_files(idx([[0, 51, 102, 153, 204, 255], [1, 2, 3, 4, 5, 6]], [4, 0])),
     'idx:p'),
    ('idx gzipped', 'img1', idx_files(idx([[9, 8, 7, 6, 5, 4]], [200]), gz=True), 'idx:p'),
    ('idx missing', 'img', {}, 'idx:nothing'),
    ('idx bad magic', 'img',
     idx_files(idx([[0] * 6], [0], magic_images=b'\0\0\x09\x03' + b'\0' * 12)), 'idx:p'),
    ('idx size', 'img', idx_files(idx([[0] * 6], [0], extra=b'\0')), 'idx:p'),
    ('idx count', 'img', idx_files(idx([[0] * 6], [0, 1])), 'idx:p'),
    ('idx shape', 'img', idx_files(idx([[0] * 4], [0], rows=2, cols=2)), 'idx:p'),
    ('idx label', 'img', idx_files(idx([[0] * 6], [5])), 'idx:p'),
    ('idx labels not classes', 'img2', idx_files(idx([[0] * 6], [1])), 'idx:p'),
]


def absolute_spec(spec, d):
    """A DATA spec with its file named from the root: FILE, series:FILE:..,
    idx:PREFIX."""
    for form in ('series:', 'idx:'):
        if spec.startswith(form):
            return form + os.path.join(d, spec[len(form):])
    return os.path.join(d, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--driver', required=True)
    ap.add_argument('--oracle', required=True)
    args = ap.parse_args()
    args.driver = os.path.abspath(args.driver)
    args.oracle = os.path.abspath(args.oracle)
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        lines = []
        for name, model in MODELS.items():
            with open(os.path.join(work, name + '.cnn'), 'w') as f:
                f.write(model)
            lines.append(f'/dev/null {work}/{name}.init.err init {work}/{name}.cnn --out {work}/{name}.st')
        for i, (label, model, files, spec) in enumerate(CASES):
            d = os.path.join(work, f'case{i}')
            os.makedirs(d)
            for fname, data in files.items():
                with open(os.path.join(d, fname), 'wb') as f:
                    f.write(data)
        # Every reference command in one process (importing torch takes a
        # second each): the models' weights, then each case's eval, with the
        # data named by its full path (the driver gets the same spec).
        specs = [absolute_spec(spec, os.path.join(work, f'case{i}'))
                 for i, (_, _, _, spec) in enumerate(CASES)]
        for i, (label, model, files, spec) in enumerate(CASES):
            d = os.path.join(work, f'case{i}')
            lines.append(f'{d}/ref.out {d}/ref.err eval {work}/{model}.cnn --data {specs[i]} '
                         f'--weights {work}/{model}.st')
        env = dict(os.environ, CNNREF_THREADS='1')
        batch = subprocess.run(['/usr/bin/python3', args.oracle, 'batch'],
                               input='\n'.join(lines) + '\n', text=True, capture_output=True,
                               env=env, cwd=work)
        statuses = [int(v) for v in batch.stdout.split()][len(MODELS):]
        if len(statuses) != len(CASES):
            print(f'FAIL the reference batch: {batch.stdout} {batch.stderr}')
            return 1
        for i, (label, model, files, spec) in enumerate(CASES):
            d = os.path.join(work, f'case{i}')
            with open(os.path.join(d, 'ref.err')) as f:
                ref_err, ref_status = f.read(), statuses[i]
            ours = subprocess.run([args.driver, specs[i]] + [str(v) for v in LAYOUTS[model]],
                                  capture_output=True, text=True, cwd=d)
            problems = []
            if ours.returncode != ref_status:
                problems.append(f'exit {ours.returncode}, the reference {ref_status}')
            want = ref_err.replace('cnnref: ', 'data_driver: ')
            if ref_status != 0 and ours.stderr != want:
                problems.append(f'cnngen:    {ours.stderr.strip()}\n  reference: {want.strip()}')
            if problems:
                failures += 1
                print(f'FAIL {label}: ' + '\n  '.join(problems))
            elif ref_status == 0:
                print(f'ok   {label}: {ours.stdout.strip()}')
    print(f'{len(CASES) - failures} passed, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
