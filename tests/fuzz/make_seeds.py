#!/usr/bin/python3
"""Write the fuzz targets' seed corpus (tests/fuzz/seeds/TARGET/), one
small file per shape of input each reader knows; the front end's seeds are
the examples and the error corpus (run_fuzz.sh adds them).

    make_seeds.py [DIR]      default: the seeds folder beside this script
"""
import gzip
import json
import os
import struct
import sys


def safetensors(tensors, odd=False, metadata=None):
    """tensors: (name, shape, values); the layout cnnrt_parse_safetensors
    reads.  odd: a header of odd length (the fuzz target reads those
    through a file); metadata: a header of length 2 mod 4 (the target
    reads those as checkpoints)."""
    header, data = ({'__metadata__': metadata} if metadata else {}), b''
    for name, shape, values in tensors:
        header[name] = {'dtype': 'F32', 'shape': shape,
                        'data_offsets': [len(data), len(data) + 4 * len(values)]}
        data += struct.pack(f'<{len(values)}f', *values)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8 + (1 if odd else 2 if metadata else 0))
    return struct.pack('<Q', len(text)) + text + data


def idx(rank, dims, data):
    return bytes([0, 0, 8, rank]) + b''.join(struct.pack('>I', d) for d in dims) + data


def idx_pair(images, labels):
    return struct.pack('>H', len(images)) + images + labels


def seeds():
    good = [('conv1d_1.kernel', [3, 1, 2], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
            ('conv1d_1.bias', [2], [0.0, 1.0]), ('dense_1.kernel', [2, 1], [2.0, -1.0])]
    images = idx(3, [2, 2, 3], bytes(range(12)))
    yield 'safetensors', 'good', safetensors(good)
    yield 'safetensors', 'good_file', safetensors(good, odd=True)
    yield 'safetensors', 'metadata', safetensors(good).replace(b'{"conv', b'{"__metadata__":{"a":"b"},"conv', 1)
    yield 'safetensors', 'checkpoint', safetensors(good, metadata={'format': 'cnngen checkpoint 1',
                                                                   'epoch': '3'})
    yield 'safetensors', 'missing', safetensors(good[:2])
    yield 'safetensors', 'nan', safetensors(good[:2] + [('dense_1.kernel', [2, 1], [float('nan'), 1])])
    yield 'safetensors', 'short', b'\x08\0\0\0'
    yield 'data', 'csv', b'\0' + b'# inputs, then targets\n1,2,3,4,5\n0.5 1e3 -2 0 1\n'
    yield 'data', 'csv_header', b'\0' + b'a,b,c,d,e\n1,2,3,4,5\n'
    yield 'data', 'csv_classes', b'\5' + b'1,2,3,2\n4,5,6,0\n'
    yield 'data', 'series_name', b'\1' + b't,u\n1,2\n2,3\n3,4\n4,5\n5,6\n'
    yield 'data', 'series_number', b'\2' + b'1\n2\n3\n4\n5\n6\n'
    yield 'data', 'idx', b'\3' + idx_pair(images, idx(1, [2], b'\1\3'))
    yield 'data', 'idx_classes', b'\10' + idx_pair(images, idx(1, [2], b'\1\3'))
    yield 'data', 'idx_gz', b'\4' + idx_pair(gzip.compress(images, mtime=0), idx(1, [2], b'\1\0'))
    yield 'predict_lines', 'samples', b'\2' + b'1,2,3\n# a comment\n\n4 5 6\n-1e3, 2.5e-2, 0\n'
    yield 'predict_lines', 'bad', b'\2' + b'1,2\n1,,3\nx,y,z\n'
    yield 'predict_lines', 'utf8', b'\0' + '\u00e9\n1\n'.encode()
    for name, args in [('predict', ['predict', '--weights', 'w.safetensors', 'd.csv']),
                       ('predict_stdin', ['predict', '-']),
                       ('train', ['train', '--data', 'd.csv', '--epochs', '3', '--save', 'o.st']),
                       ('train_init', ['train', '--data', 'd.csv', '--init', 'w.safetensors',
                                       '--seed', '7', '--no-shuffle', '--quiet']),
                       ('train_series', ['train', '--data', 'series:d.csv:1:2', '--epochs', '1']),
                       ('eval', ['eval', '--data', 'd.csv', '--weights', 'w.safetensors']),
                       ('help', ['--help']), ('unknown', ['fly', '--to', 'moon'])]:
        yield 'program_args', name, '\0'.join(args).encode()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), 'seeds')
    for target, name, data in seeds():
        os.makedirs(os.path.join(root, target), exist_ok=True)
        with open(os.path.join(root, target, name), 'wb') as f:
            f.write(data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
