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
import io
import json
import math
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


# ---------------------------------------------------------------------------
# The int8 scheme (docs/int8.md): TensorFlow Lite's integer arithmetic.
# ---------------------------------------------------------------------------

QMIN, QMAX = -128, 127
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
SAME_SCALE = ('maxpool1d', 'maxpool2d', 'maxpool3d', 'avgpool1d', 'avgpool2d', 'avgpool3d',
              'global_maxpool', 'global_avgpool', 'upsample1d', 'upsample2d', 'upsample3d',
              'flatten', 'dropout', 'linear', 'relu')
FLOAT_HEADS = ('softmax', 'sigmoid', 'tanh')
MAX_INPUTS = 65536       # products in a linear map's int32 sum (255 * 127 each)
FLOAT_NODE = (1.0, 0)   # a float head's node: int32 sums, scaled per channel
FLOAT_ONLY_AT_END = ("%s is computed in float, so only at the model's end, right after a conv or "
                     'dense layer with a linear activation')


def round_half_away(x):
    """C's round(): halves away from zero (numpy's round goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_params(lo, hi):
    """A tensor's (scale, zero point) from its range, widened to hold 0
    (so that 0, a padding or a ReLU's floor, is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        return 1.0, 0
    scale = (hi - lo) / (QMAX - QMIN)
    zero = int(round_half_away(QMIN - lo / scale))
    return scale, max(QMIN, min(QMAX, zero))


def weight_params(kernel, depthwise):
    """Symmetric per output channel (the last axis; a depthwise kernel's
    [.., cin, multiplier] are its channels, in that order): int8 values in
    [-127, 127] and each channel's scale."""
    k = np.asarray(kernel, dtype=np.float64)
    channels = k.shape[-2] * k.shape[-1] if depthwise else k.shape[-1]
    flat = k.reshape(-1, channels)
    peak = np.abs(flat).max(axis=0)
    scales = np.where(peak > 0, peak / 127, 1.0)
    q = np.clip(round_half_away(flat / scales), -127, 127)
    return q.reshape(k.shape), scales


def quantize_multiplier(m):
    """A real multiplier m as (q, shift): m = q / 2^31 * 2^shift, |q| in
    [2^30, 2^31) (TFLite's QuantizeMultiplier; a negative m, a leaky_relu's
    negative alpha, gives a negative q)."""
    if m == 0:
        return 0, 0
    fraction, shift = math.frexp(m)
    q = int(round_half_away(fraction * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def c_divide(a, b):
    """C's integer division: toward zero."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (np.asarray(b) < 0), -q, q)


def saturating_rounding_doubling_high_mul(a, b):
    ab = a.astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    r = c_divide(ab + nudge, 1 << 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def rounding_divide_by_pot(x, exponent):
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, q, shift):
    """x * q / 2^31 * 2^shift, rounded as TFLite rounds; x int32 values (in
    an int64 array), q and shift per element or per channel.  A left shift
    saturates at int32's ends."""
    q, shift = np.asarray(q, dtype=np.int64), np.asarray(shift, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    x = np.clip(x.astype(np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, q), right)


def quantize_map(kernel, bias, in_scale, out_scale, depthwise=False):
    """A linear map as int8: its kernel per output channel, its int32 bias,
    the bias's scales (scale_in * scale_c) and the real requantization
    multipliers (scale_in * scale_c / scale_out)."""
    kernel, scales = weight_params(kernel, depthwise)
    bias_scales = in_scale * scales
    bias = np.clip(round_half_away(bias / bias_scales), INT32_MIN, INT32_MAX)
    return kernel, bias, bias_scales, bias_scales / out_scale


def batchnorm_gain(P, bn):
    """gamma / sqrt(variance + epsilon) per channel, float64: the batchnorm
    at inference is gain * (x - mean) + beta."""
    return P[bn.gamma].numpy().astype(np.float64) / np.sqrt(
        P[bn.moving_variance].numpy().astype(np.float64) + bn.epsilon)


def requantize(acc, multipliers, zero, lo, hi):
    """int32 accumulators to int8: each channel's (q, shift) from the real
    multipliers, the zero point added, clamped to [lo, hi]."""
    qs = np.array([quantize_multiplier(m) for m in np.atleast_1d(multipliers)], dtype=np.int64)
    y = multiply_by_quantized_multiplier(acc, qs[:, 0], qs[:, 1]) + zero
    return np.clip(y, lo, hi)


class QuantizeError(cnnref.Fail):
    def __init__(self, model, layer, why):
        self.loc, self.message = layer.loc, f"'{layer.name}' cannot be quantized: {why}"
        super().__init__(f'{model.filename}:{layer.loc.line}:{layer.loc.col}: error: '
                         f'{self.message}', 1)


class QuantizedModel:
    """The model's int8 plan: each node's (scale, zero point), and for the
    linear maps their int8 kernels, int32 biases and real multipliers."""

    def __init__(self, model, P, ranges):
        self.model = model
        self.head = None       # the index of a last layer whose output is float
        last = len(model.layers) - 1
        if last >= 0 and model.layers[last].activation in FLOAT_HEADS:
            self.head = last
            if model.layers[last].kind in FLOAT_HEADS:   # a softmax layer after a linear map
                before = model.layers[last - 1] if last > 0 else None
                self.head = last - 1 if before and before.kind in cnnref.LINEAR_MAPS and \
                    before.activation == 'linear' and model.layers[last].srcs == [last] else None
                if self.head is None:
                    raise QuantizeError(model, model.layers[last], FLOAT_ONLY_AT_END %
                                        model.layers[last].kind)
        self.folds = self.batchnorm_folds()
        self.nodes = [activation_params(*ranges['input'])]
        self.linear = {}
        for i, layer in enumerate(model.layers):
            self.nodes.append(self.plan(i, layer, P, ranges))

    def batchnorm_folds(self):
        """{linear map index: the batchnorm right after it}, where the map's
        activation is linear and the batchnorm is its output's only reader:
        the batchnorm folds into the map's kernel and bias."""
        layers, folds = self.model.layers, {}
        for i, layer in enumerate(layers[1:], 1):
            before = layers[i - 1]
            readers = [later for later in layers if i in later.srcs]
            if layer.kind == 'batchnorm' and before.kind in cnnref.LINEAR_MAPS and \
                    before.activation == 'linear' and readers == [layer]:
                folds[i - 1] = layer
        return folds

    def folded(self, i, layer, P):
        """The map's kernel and bias (float64), with the batchnorm after it
        folded in: kernel * g, (bias - mean) * g + beta, g = gamma /
        sqrt(variance + epsilon) per channel."""
        kernel = P[layer.kernel].numpy().astype(np.float64)
        channels = layer.out_shape[-1]
        bias = P[layer.bias].numpy().astype(np.float64) if layer.bias else np.zeros(channels)
        bn = self.folds.get(i)
        if bn:
            g = batchnorm_gain(P, bn)
            kernel = (kernel.reshape(-1, channels) * g).reshape(kernel.shape)
            bias = (bias - P[bn.moving_mean].numpy()) * g + P[bn.beta].numpy()
        return kernel, bias

    def plan(self, i, layer, P, ranges):
        model, src = self.model, self.nodes[layer.srcs[0]]
        if self.head is not None and i > self.head:     # the activation after a float head
            return FLOAT_NODE
        if layer.kind in cnnref.LINEAR_MAPS:
            if layer.activation not in ('linear', 'relu') and i != self.head:
                raise QuantizeError(model, layer, f'its activation {layer.activation} is not a '
                                    'clamp (int8 has relu and linear; sigmoid, tanh and softmax '
                                    "only at the model's end)")
            inputs = P[layer.kernel].numel() // layer.out_shape[-1]
            if inputs > MAX_INPUTS:
                raise QuantizeError(model, layer, f'each of its int32 sums adds {inputs} products '
                                    f'of up to 255 * 127, which can pass 2^31 (at most '
                                    f'{MAX_INPUTS})')
            kernel, bias = self.folded(i, layer, P)
            out_name = self.folds[i].name if i in self.folds else layer.name
            out = FLOAT_NODE if i == self.head else activation_params(*ranges[out_name])
            self.linear[i] = quantize_map(kernel, bias, src[0], out[0],
                                          getattr(layer, 'depthwise', False))
            return out
        if layer.kind in SAME_SCALE or layer in self.folds.values():
            return src
        if layer.kind in ('add', 'concat', 'leaky_relu'):
            return activation_params(*ranges[layer.name])
        if layer.kind == 'batchnorm':     # one that cannot fold: a per-channel map
            out = activation_params(*ranges[layer.name])
            g = batchnorm_gain(P, layer)
            shift = P[layer.beta].numpy().astype(np.float64) - P[layer.moving_mean].numpy() * g
            self.linear[i] = quantize_map(g.reshape(1, -1), shift, src[0], out[0])
            return out
        if layer.kind in FLOAT_HEADS:
            raise QuantizeError(model, layer, FLOAT_ONLY_AT_END % layer.kind)
        raise QuantizeError(model, layer, f'{layer.kind} has no int8 form yet (docs/int8.md)')

    def summary(self):
        """The plan as cnngen --summary --json --quantize gives it ("int8",
        without the memory plan's activation bytes)."""
        nodes = []
        for k, (scale, zero) in enumerate(self.nodes):
            layer = self.model.layers[k - 1] if k else None
            form = 'range' if not layer or layer.kind in cnnref.LINEAR_MAPS + (
                'add', 'concat', 'leaky_relu', 'batchnorm') else 'input'
            if layer and self.head is not None and k - 1 >= self.head:
                form = 'float'
            elif layer in self.folds.values():
                form = 'folded'
            nodes.append({'name': layer.name if layer else 'input', 'form': form,
                          'scale': scale, 'zero_point': zero})
        param_bytes = sum(kernel.size + 12 * len(bias) for kernel, bias, _, _ in self.linear.values())
        return {'param_bytes': param_bytes, 'nodes': nodes}

    def quantize_input(self, x):
        scale, zero = self.nodes[0]
        return np.clip(round_half_away(np.asarray(x, np.float64) / scale) + zero, QMIN, QMAX)

    def run(self, x):
        """int8 inputs [N, input shape] -> every node's values (int8; the
        float head's int32 accumulators), as int64 arrays."""
        model = self.model
        outputs = [np.asarray(x, dtype=np.int64)]
        for i, layer in enumerate(model.layers):
            xs = [outputs[j] for j in layer.srcs]
            outputs.append(self.layer(i, layer, xs))
        return outputs

    def layer(self, i, layer, xs):
        x, (scale, zero) = xs[0], self.nodes[layer.srcs[0]]
        out_scale, out_zero = self.nodes[i + 1]
        if layer.kind == 'batchnorm' and i in self.linear:
            kernel, bias, _, multipliers = self.linear[i]
            acc = (x - zero) * kernel[0].astype(np.int64) + bias.astype(np.int64)
            return requantize(acc.reshape(-1, len(bias)), multipliers, out_zero, QMIN,
                              QMAX).reshape(x.shape)
        if i in self.linear:
            kernel, bias, _, multipliers = self.linear[i]
            P = {layer.kernel: torch.from_numpy(kernel), layer.bias: torch.zeros(len(bias),
                                                                                 dtype=torch.float64)}
            _, z = layer.forward([torch.from_numpy((x - zero).astype(np.float64))], P,
                                 cnnref.Context(False))
            acc = np.clip(z.numpy().astype(np.int64) + bias.astype(np.int64), INT32_MIN, INT32_MAX)
            if i == self.head:
                return acc
            lo = out_zero if layer.activation == 'relu' else QMIN
            return requantize(acc, multipliers, out_zero, max(lo, QMIN), QMAX)
        if self.head is not None and i > self.head:
            return x                             # the float head's activation: to_float's
        if layer.kind.startswith('avgpool') or layer.kind == 'global_avgpool':
            return self.average(layer, x)
        if layer in self.folds.values():
            return x                             # folded into the map before it
        if layer.kind in ('relu', 'linear'):
            return np.maximum(x, zero) if layer.kind == 'relu' else x   # zero is real 0
        if layer.kind in SAME_SCALE:
            y, _ = layer.forward([torch.from_numpy(x.astype(np.float64))], {},
                                 cnnref.Context(False))
            return y.numpy().astype(np.int64)
        if layer.kind == 'add':
            return self.add(layer, xs, out_scale, out_zero)
        if layer.kind == 'leaky_relu':
            return self.leaky_relu(layer, x - zero, scale, out_scale, out_zero)
        return np.concatenate([self.rescale(v, self.nodes[j], out_scale, out_zero)
                               for v, j in zip(xs, layer.srcs)], axis=-1)

    def average(self, layer, x):
        """The window's int32 sum over its count of real inputs, rounded
        half away from zero (TFLite's average pooling)."""
        ones = np.ones(x.shape, dtype=np.float64)
        if layer.kind == 'global_avgpool':
            axes = tuple(range(1, x.ndim - 1))
            total, count = x.sum(axis=axes), np.prod([x.shape[a] for a in axes])
        else:
            total, _ = self.sum_pool(layer, x)
            count, _ = self.sum_pool(layer, ones)
        total, count = np.asarray(total, np.int64), np.asarray(count, np.int64)
        return c_divide(total + np.where(total > 0, count // 2, -(count // 2)), count)

    @staticmethod
    def sum_pool(layer, x):
        """The avgpool layer's window sums (exact: integers in float64)."""
        lead = 3 - layer.nd
        t = torch.from_numpy(np.asarray(x, np.float64))
        t = cnnref.channels_first(t.unsqueeze(-1) if layer.expand else t)
        t = t.reshape(t.shape[:2] + (1,) * lead + t.shape[2:])
        pads = cnnref.torch_padding(((0, 0),) * lead + layer.pads)
        y = torch.nn.functional.avg_pool3d(torch.nn.functional.pad(t, pads),
                                           (1,) * lead + layer.size, (1,) * lead + layer.stride,
                                           divisor_override=1)
        y = y.reshape(y.shape[:2] + y.shape[2 + lead:])
        return np.rint(cnnref.channels_last(y).numpy()), None

    def add(self, layer, xs, out_scale, out_zero):
        """TFLite's int8 add, for any number of terms: each term (its value
        less its zero point, shifted left by 20) scaled to twice the largest
        input scale, summed, then scaled to the output."""
        left_shift = 20
        params = [self.nodes[j] for j in layer.srcs]
        twice_max = 2 * max(scale for scale, _ in params)
        total = 0
        for v, (scale, zero) in zip(xs, params):
            q, shift = quantize_multiplier(scale / twice_max)
            total = total + multiply_by_quantized_multiplier((v - zero) << left_shift, q, shift)
        q, shift = quantize_multiplier(twice_max / ((1 << left_shift) * out_scale))
        y = multiply_by_quantized_multiplier(np.clip(total, INT32_MIN, INT32_MAX), q, shift)
        return np.clip(y + out_zero, QMIN, QMAX)

    @staticmethod
    def leaky_relu(layer, v, scale, out_scale, out_zero):
        """TFLite's int8 leaky ReLU: the input less its zero point, times
        scale_in / scale_out where it is >= 0, else alpha times that."""
        q, shift = quantize_multiplier(scale / out_scale)
        qa, shifta = quantize_multiplier(layer.alpha * scale / out_scale)
        y = np.where(v >= 0, multiply_by_quantized_multiplier(v, q, shift),
                     multiply_by_quantized_multiplier(v, qa, shifta))
        return np.clip(y + out_zero, QMIN, QMAX)

    @staticmethod
    def rescale(v, params, out_scale, out_zero):
        """A concat's input in the output's scale and zero point."""
        scale, zero = params
        if (scale, zero) == (out_scale, out_zero):
            return v
        q, shift = quantize_multiplier(scale / out_scale)
        return np.clip(multiply_by_quantized_multiplier(v - zero, q, shift) + out_zero, QMIN, QMAX)

    def to_float(self, y):
        """The outputs as floats: an int8 output dequantized (in float32), a
        float head's accumulators times their scales, then its activation."""
        model = self.model
        if self.head is None:
            scale, zero = self.nodes[-1]
            return (y - zero).astype(np.float32) * np.float32(scale)
        layer = model.layers[self.head]
        z = torch.from_numpy(y.astype(np.float32) * self.linear[self.head][2].astype(np.float32))
        activation = model.layers[-1].kind if self.head != len(model.layers) - 1 \
            else layer.activation
        return cnnref.activate(activation, z).numpy()


def observed_ranges(path, model):
    """The ranges quantization-aware training's observers hold in the
    weights it saved (NAME.quantize: min, max, seen), or None when path
    holds no weights of the model."""
    try:
        P = cnnref.load_weights(path, model)
    except cnnref.Fail:
        return None
    ranges = {}
    for spec in model.qat.params:
        lo, hi, seen = P[spec.name].astype(np.float64)
        if seen != 1 or not lo <= hi:
            raise cnnref.Fail(f"{path}: error: '{spec.name}' holds no range: train with "
                              'quantize = int8 first', 1)
        ranges[spec.name.removesuffix('.quantize')] = (lo, hi)
    for name in ['input'] + [layer.name for layer in model.layers]:
        ranges.setdefault(name, (0.0, 0.0))
    return ranges


def load_ranges(path, model):
    """RANGES as calibrate writes it: {tensor name: (min, max)}; or for a
    model that trains with quantize = int8, its observers' (as cnngen
    takes them)."""
    if getattr(model, 'qat', None):
        ranges = observed_ranges(path, model)
        if ranges is not None:
            return ranges
    tensors = cnnref.read_safetensors(path)
    ranges = {}
    for name, (dtype, shape, raw) in tensors.items():
        if dtype != 'F32' or list(shape) != [2]:
            raise cnnref.Fail(f"{path}: error: tensor '{name}' is not F32 [2]", 1)
        ranges[name] = tuple(np.frombuffer(raw, dtype='<f4').astype(np.float64))
    for name in ['input'] + [layer.name for layer in model.layers]:
        if name not in ranges:
            raise cnnref.Fail(f"{path}: error: no range for '{name}'", 1)
    return ranges


def cmd_predict(args, stdin, out, err):
    """predict, and with --quantize RANGES the int8 model's outputs (with
    --raw its integer outputs: int8, or a float head's int32 sums)."""
    if not args.quantize:
        if args.raw:
            raise cnnref.Fail('cnnref: error: --raw goes with --quantize', 2)
        return original_cmd_predict(args, stdin, out, err)
    model = cnnref.load_model(args.model, err)
    weights = cnnref.load_weights(args.weights, model) if args.weights else \
        cnnref.initial_weights(model, model.train.seed)
    plan = QuantizedModel(model, cnnref.to_torch(weights), load_ranges(args.quantize, model))
    source = args.file or '-'
    where = '<stdin>' if source == '-' else source
    text = stdin.read() if source == '-' else '\n'.join(cnnref.read_lines(source))
    samples = [values for _, values in cnnref.sample_lines(io.StringIO(text), where,
                                                           model.input_size)]
    if not samples:
        return 0
    x = cnnref.float32_tensor(samples).numpy().reshape((len(samples),) + model.input_shape)
    y = plan.run(plan.quantize_input(x))[-1].reshape(len(samples), -1)
    rows = y if args.raw else plan.to_float(y).reshape(len(samples), -1)
    for row in rows.tolist():
        out.write(','.join(str(int(v)) if args.raw else cnnref.fmt_g(v) for v in row) + '\n')
    return 0


def cmd_summary(args, stdin, out, err):
    """summary, and with --quantize RANGES (and --json) the int8 plan."""
    if not args.quantize:
        return original_cmd_summary(args, stdin, out, err)
    if not args.json:
        raise cnnref.Fail('cnnref: error: --quantize goes with --json here', 2)
    text = io.StringIO()
    status = original_cmd_summary(args, stdin, text, err)
    model = cnnref.load_model(args.model, err)
    P = cnnref.to_torch(cnnref.initial_weights(model, 1))   # the plan needs no weights
    summary = json.loads(text.getvalue())
    summary['int8'] = QuantizedModel(model, P, load_ranges(args.quantize, model)).summary()
    out.write(json.dumps(summary, indent=1) + '\n')
    return status


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
    parser.commands['summary'].add_argument('--quantize', metavar='RANGES.safetensors',
                                            help='with --json: the int8 plan from these ranges')
    p = parser.commands['predict']
    p.add_argument('--quantize', metavar='RANGES.safetensors',
                   help="the int8 model's outputs, its scales from these ranges")
    p.add_argument('--raw', action='store_true',
                   help="with --quantize: the integer outputs (a float output's int32 sums)")
    return parser


original_make_parser = cnnref.make_parser
cnnref.make_parser = make_parser
cnnref.COMMANDS['calibrate'] = cmd_calibrate
original_cmd_predict = cnnref.COMMANDS['predict']
original_cmd_summary = cnnref.COMMANDS['summary']
cnnref.COMMANDS['summary'] = cmd_summary
cnnref.COMMANDS['predict'] = cmd_predict

if __name__ == '__main__':
    if sys.argv[1:2] == ['batch']:
        sys.exit(cnnref.batch(sys.stdin, sys.stdout))
    sys.exit(cnnref.main())
