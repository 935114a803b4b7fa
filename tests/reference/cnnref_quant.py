#!/usr/bin/python3
"""The reference of cnngen's int8 work (issue 17), on top of
cnnref_train.py (so every command of the oracle is here too):

    cnnref_quant.py calibrate MODEL --data DATA --weights W.safetensors
                              [--save RANGES.safetensors] [--percentile P]

The range of each tensor over the data: the input's, and each layer's
output in the evaluation forward pass.  Its min and max; with
--percentile P, the range of the histogram bins that hold the middle P%
of its values (2048 bins between the min and the max; each end is the
outer edge of the bin where the count from that side reaches
(100 - P)%), as the generated program computes it.
RANGES holds one F32 tensor [2] (min, max) per tensor, named "input" and
by its layer, in the model's order.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnref  # noqa: E402
import cnnref_train  # noqa: E402  (the train block's settings, predict --dump)

CHUNK = 256   # samples per forward pass: the memory of a big dataset's layers
BINS = 2048   # the histogram's, as calibrate.c's


def tensor_values(model, P, inputs):
    """{tensor name: every value of it over the samples, float32}, the
    input first, then the layers in order."""
    names = ['input'] + [layer.name for layer in model.layers]
    chunks = {name: [] for name in names}
    for first in range(0, len(inputs), CHUNK):
        x = torch.as_tensor(inputs[first:first + CHUNK]).reshape((-1,) + model.input_shape)
        for name, y in zip(names, cnnref_train.layer_outputs(model, P, x)):
            chunks[name].append(y.numpy().astype(np.float32).ravel())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def percentile_range(v, lo, hi, percentile):
    """The ends of the bins where the count of values reaches 100 - P and
    P percent of them, in BINS bins from the min lo to the max hi: the
    lower edge of the first bin whose count from the bottom passes
    (100 - P)%, the upper edge of the first whose count reaches P%."""
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / BINS
    if width <= 0:
        return lo, hi
    bins = np.clip(((v.astype(np.float64) - lo) / width).astype(np.int64), 0, BINS - 1)
    counts = np.cumsum(np.bincount(bins, minlength=BINS)).astype(np.float64)
    low = int(np.argmax(counts > (1 - percentile / 100) * len(v)))
    high = int(np.argmax(counts >= percentile / 100 * len(v)))
    return lo + width * low, min(hi, lo + width * (high + 1))


def cmd_calibrate(args, stdin, out, err):
    model = cnnref.load_model(args.model, err)
    P = cnnref.to_torch(cnnref.load_weights(args.weights, model))
    inputs, _ = cnnref.load_data(args.data, model)
    if args.percentile is not None and not 50 < args.percentile <= 100:
        raise cnnref.Fail('cnnref: error: argument --percentile: not a number above 50 and at '
                          'most 100', 2)
    ranges = []
    for name, v in tensor_values(model, P, inputs).items():
        lo, hi = v.min(), v.max()
        if args.percentile is not None:
            lo, hi = percentile_range(v, lo, hi, args.percentile)
        ranges.append((name, np.array([lo, hi], dtype=np.float32)))
    cnnref.write_safetensors(args.save or f'{model.name}.ranges.safetensors', ranges)
    return 0


def make_parser():
    parser = original_make_parser()
    subparsers = next(a for a in parser._actions if a.dest == 'command')
    help = "each tensor's range over the data, for cnngen --quantize"
    p = parser.commands['calibrate'] = subparsers.add_parser('calibrate', help=help,
                                                             description=help, allow_abbrev=False)
    p.add_argument('model', metavar='MODEL.cnn')
    p.add_argument('--data', required=True, metavar='DATA')
    p.add_argument('--weights', required=True, metavar='W.safetensors')
    p.add_argument('--save', metavar='RANGES.safetensors',
                   help='output file (default: NAME.ranges.safetensors)')
    p.add_argument('--percentile', type=float, metavar='P',
                   help='the (100-P)-th to the P-th percentile, not the min and max')
    return parser


original_make_parser = cnnref.make_parser
cnnref.make_parser = make_parser
cnnref.COMMANDS['calibrate'] = cmd_calibrate

if __name__ == '__main__':
    if sys.argv[1:2] == ['batch']:
        sys.exit(cnnref.batch(sys.stdin, sys.stdout))
    sys.exit(cnnref.main())
