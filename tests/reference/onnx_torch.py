"""Runs an ONNX model in PyTorch, operator by operator, from ONNX's own
definitions (https://onnx.ai/onnx/operators/): the oracle for what cnngen
exports and for the models it imports.  Only the operators cnngen's
bridge knows are here; any other is an error, never a guess.

    run(path_or_model, {name: array}) -> [arrays of the graph's outputs]

Debian's python3-onnx reads the file (onnx.load, numpy_helper); the
arithmetic is torch's, in float32.
"""
import math

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _window_pads(x, a, nd):
    """ONNX's pads (begins then ends) of a window op, auto_pad resolved."""
    kernel = list(a['kernel_shape'])
    strides = list(a.get('strides', [1] * nd))
    dil = list(a.get('dilations', [1] * nd))
    auto = _text(a.get('auto_pad', 'NOTSET'))
    if auto in ('SAME_UPPER', 'SAME_LOWER'):
        begins, ends = [], []
        for i in range(nd):
            size = x.shape[2 + i]
            out = -(-size // strides[i])
            total = max((out - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto == 'SAME_UPPER' else big)
            ends.append(big if auto == 'SAME_UPPER' else small)
        return begins + ends
    if auto == 'VALID':
        return [0] * (2 * nd)
    return list(a.get('pads', [0] * (2 * nd)))


def _torch_pad(pads, nd):
    """F.pad's order: the last axis first, (begin, end) each."""
    out = []
    for i in reversed(range(nd)):
        out += [pads[i], pads[nd + i]]
    return out


def _conv(x, w, b, a):
    nd = x.dim() - 2
    pads = _window_pads(x, dict(a, kernel_shape=a.get('kernel_shape', list(w.shape[2:]))), nd)
    x = F.pad(x, _torch_pad(pads, nd))
    fn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    return fn(x, w, b, stride=a.get('strides', 1), dilation=a.get('dilations', 1),
              groups=a.get('group', 1))


def _max_pool(x, a):
    nd = x.dim() - 2
    if a.get('ceil_mode', 0) or any(d != 1 for d in a.get('dilations', [1] * nd)):
        raise ValueError('MaxPool: ceil_mode and dilations are not in this runner')
    pads = _window_pads(x, a, nd)
    x = F.pad(x, _torch_pad(pads, nd), value=-math.inf)
    fn = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nd - 1]
    return fn(x, a['kernel_shape'], a.get('strides', 1))


def _avg_pool(x, a):
    """AveragePool: the sum over the window by convolution with ones, and the
    count of real inputs (or of the whole window with count_include_pad)."""
    nd = x.dim() - 2
    if a.get('ceil_mode', 0):
        raise ValueError('AveragePool: ceil_mode is not in this runner')
    pads = _window_pads(x, a, nd)
    kernel, strides = list(a['kernel_shape']), list(a.get('strides', [1] * nd))
    channels = x.shape[1]
    ones = torch.ones([channels, 1] + kernel, dtype=x.dtype)
    fn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    sums = fn(F.pad(x, _torch_pad(pads, nd)), ones, stride=strides, groups=channels)
    if a.get('count_include_pad', 0):
        count = float(np.prod(kernel))
        return sums / count
    real = F.pad(torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype), _torch_pad(pads, nd))
    counts = fn(real, torch.ones([1, 1] + kernel, dtype=x.dtype), stride=strides)
    return sums / counts


def _resize(x, scales, a):
    mode = _text(a.get('mode', 'nearest'))
    ctm = _text(a.get('coordinate_transformation_mode', 'half_pixel'))
    nearest = _text(a.get('nearest_mode', 'round_prefer_floor'))
    if mode != 'nearest' or ctm != 'asymmetric' or nearest != 'floor':
        raise ValueError('Resize: only nearest, asymmetric, floor is in this runner')
    for axis, s in enumerate(scales[2:]):
        index = torch.div(torch.arange(int(x.shape[2 + axis] * s)), s, rounding_mode='floor')
        x = torch.index_select(x, 2 + axis, index.long())
    return x


def _gemm(a_, b, c, at):
    if at.get('transA', 0):
        a_ = a_.t()
    if at.get('transB', 0):
        b = b.t()
    y = at.get('alpha', 1.0) * (a_ @ b)
    if c is not None:
        y = y + at.get('beta', 1.0) * c
    return y


def _softmax(x, a, opset):
    axis = a.get('axis', -1 if opset >= 13 else 1)
    if opset >= 13:
        return torch.softmax(x, axis)
    shape = x.shape
    axis = axis % x.dim()
    flat = x.reshape(int(np.prod(shape[:axis])), -1)
    return torch.softmax(flat, 1).reshape(shape)


def _reshape(x, shape):
    shape = [int(v) for v in shape]
    shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _node(op, x, a, opset):
    """x: the node's inputs (None where left out)."""
    if op == 'Conv':
        return _conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op == 'Gemm':
        return _gemm(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op == 'MatMul':
        return x[0] @ x[1]
    if op in ('Add', 'Sum'):
        y = x[0]
        for t in x[1:]:
            y = y + t
        return y
    if op == 'Relu':
        return torch.relu(x[0])
    if op == 'LeakyRelu':
        return F.leaky_relu(x[0], a.get('alpha', 0.01))
    if op == 'Sigmoid':
        return torch.sigmoid(x[0])
    if op == 'Tanh':
        return torch.tanh(x[0])
    if op == 'Softmax':
        return _softmax(x[0], a, opset)
    if op == 'MaxPool':
        return _max_pool(x[0], a)
    if op == 'AveragePool':
        return _avg_pool(x[0], a)
    if op == 'GlobalAveragePool':
        return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)
    if op == 'GlobalMaxPool':
        return x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True)
    if op == 'BatchNormalization':
        shape = [1, -1] + [1] * (x[0].dim() - 2)
        scale, bias, mean, var = (t.reshape(shape) for t in x[1:5])
        return (x[0] - mean) / torch.sqrt(var + a.get('epsilon', 1e-5)) * scale + bias
    if op == 'Concat':
        return torch.cat(x, dim=a['axis'])
    if op == 'Flatten':
        axis = a.get('axis', 1)
        return x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
    if op == 'Reshape':
        return _reshape(x[0], x[1].tolist())
    if op in ('Dropout', 'Identity'):
        return x[0]
    if op == 'Transpose':
        return x[0].permute(*a['perm'])
    if op == 'Unsqueeze':
        axes = a['axes'] if 'axes' in a else [int(v) for v in x[1].tolist()]
        y = x[0]
        for axis in sorted(v % (y.dim() + len(axes)) for v in axes):
            y = y.unsqueeze(axis)
        return y
    if op == 'Resize':
        return _resize(x[0], [float(v) for v in x[2].tolist()], a)
    raise ValueError(f'operator {op} is not in this runner')


def run(model, inputs):
    """The graph's outputs for inputs ({name: numpy array}), as numpy."""
    if isinstance(model, str):
        model = onnx.load(model)
    opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), 13)
    values = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
              for t in model.graph.initializer}
    for name, array in inputs.items():
        values[name] = torch.from_numpy(np.asarray(array, dtype=np.float32))
    with torch.no_grad():
        for node in model.graph.node:
            a = _attrs(node)
            if node.op_type == 'Constant':
                values[node.output[0]] = torch.from_numpy(numpy_helper.to_array(a['value']).copy())
                continue
            x = [values[n] if n else None for n in node.input]
            values[node.output[0]] = _node(node.op_type, x, a, opset)
    return [values[o.name].numpy() for o in model.graph.output]
