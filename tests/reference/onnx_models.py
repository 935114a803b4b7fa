"""PyTorch models of every kind cnngen's ONNX importer supports, exported
with torch.onnx.export, and ONNX files it must refuse (tests/e2e/
test_onnx.py).

export_all(dir) -> [(name, x, y, fragments)]: DIR/NAME.onnx written, x the
    input as the ONNX model takes it, y PyTorch's output, fragments what
    the imported .cnn must say (so a test fails if the importer maps a node
    to the wrong layer, even where the numbers would agree).
bad_models(dir) -> [(what, path, needles)]: files with the words each
    error message must hold.
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper


class Series(nn.Module):
    """1-D: padding, dilation, max pooling, flatten, linear."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(4, 4, 3, dilation=2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.tanh(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


class Image(nn.Module):
    """2-D: stride, leaky ReLU, average pooling without the padding in its
    count, an uneven kernel, sigmoid, softmax."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2, padding=1, count_include_pad=False)
        self.conv2 = nn.Conv2d(6, 5, (3, 1))
        self.fc = nn.Linear(5 * 2 * 6, 4)

    def forward(self, x):
        x = self.pool(nn.functional.leaky_relu(self.conv1(x), 0.2))
        x = torch.sigmoid(self.conv2(x))
        return torch.softmax(self.fc(x.flatten(1)), dim=1)


class Depthwise(nn.Module):
    """group = channels (depthwise, multiplier 2), global average pooling."""
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, groups=4, padding=1)
        self.pw = nn.Conv2d(8, 6, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = torch.relu(self.pw(torch.relu(self.dw(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


class Video(nn.Module):
    """3-D: convolution, max pooling, global max pooling, sigmoid."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2)
        self.gmp = nn.AdaptiveMaxPool3d(1)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return torch.sigmoid(self.fc(torch.flatten(self.gmp(x), 1)))


class Norm(nn.Module):
    """BatchNormalization kept as a node (not folded into a conv): after
    a linear layer, and after a convolution exported without folding."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.bn1 = nn.BatchNorm1d(4)
        self.fc1 = nn.Linear(4 * 6, 8)
        self.bn2 = nn.BatchNorm1d(8, eps=1e-3)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv(x)))
        x = torch.relu(self.bn2(self.fc1(x.flatten(1))))
        return self.fc2(x)


class Residual(nn.Module):
    """add (a skip connection) and concat of two branches."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.body = nn.Conv2d(4, 4, 3, padding=1)
        self.side = nn.Conv2d(4, 3, 1)
        self.fc = nn.Linear(7, 3)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        r = torch.relu(self.body(s) + s)
        y = torch.cat([r, torch.tanh(self.side(r))], dim=1)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class MatMulAdd(nn.Module):
    """x @ W + b (MatMul then Add), and a Reshape that flattens."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 2)
        self.w = nn.Parameter(torch.randn(18, 3))
        self.b = nn.Parameter(torch.randn(3))

    def forward(self, x):
        x = torch.relu(self.conv(x)).view(-1, 18)
        return x @ self.w + self.b


class ImageUp(nn.Module):
    """2-D upsampling by (2, 3) between convolutions."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=(2, 3), mode='nearest')
        self.conv2 = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.conv2(torch.relu(self.up(self.conv1(x))))


class ChannelsLast(nn.Module):
    """a permute to channels-last before the flatten: cnngen's own order."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.permute(0, 2, 3, 1).flatten(1))


class KerasStyle(nn.Module):
    """A channels-last input, transposed to channels-first first and back
    before the flatten, as Keras models exported by tf2onnx are."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x.permute(0, 3, 1, 2))))
        return torch.softmax(self.fc(x.permute(0, 2, 3, 1).reshape(-1, 36)), dim=1)


# name, module, input shape (batch first), export options, what the .cnn says
MODELS = [
    ('series', Series, [3, 2, 16], {},
     ['input [16, 2]', 'conv1d(4, 3, padding=1, activation=relu)', 'maxpool1d(2)',
      'conv1d(4, 3, dilation=2, activation=tanh)', 'dense(3)']),
    ('image', Image, [2, 3, 12, 20], {},
     ['conv2d(6, 3, stride=2, padding=1)', 'leaky_relu(alpha=0.2)', 'avgpool2d(2, padding=1)',
      'conv2d(5, (3, 1), activation=sigmoid)', 'dense(4, activation=softmax)']),
    ('depthwise', Depthwise, [2, 4, 6, 6], {},
     ['depthwise_conv2d(3, padding=1, multiplier=2, activation=relu)', 'global_avgpool']),
    ('video', Video, [2, 2, 4, 6, 6], {},
     ['conv3d(4, 3, padding=1, activation=relu)', 'maxpool3d(2)', 'maxpool3d((2, 3, 3))',
      'dense(1, activation=sigmoid)']),
    ('norm', Norm, [4, 3, 8], {'training': torch.onnx.TrainingMode.PRESERVE},
     ['batchnorm(momentum=0.9, epsilon=1e-05)', 'batchnorm(momentum=0.9)', 'relu']),
    ('residual', Residual, [2, 2, 5, 5], {},
     ['add(', 'concat(', 'global_avgpool']),
    ('matmul', MatMulAdd, [3, 1, 10], {},
     ['conv1d(2, 2, activation=relu)', 'dense(3)']),
    ('upsample', ImageUp, [2, 2, 4, 3], {},
     ['upsample2d((2, 3))', 'conv2d(2, 3)']),
    ('channels_last', ChannelsLast, [2, 1, 6, 6], {},
     ['input [6, 6]', 'flatten', 'dense(2)']),
    ('keras_style', KerasStyle, [2, 6, 6, 2], {},
     ['input [6, 6, 2]', 'conv2d(4, 3, padding=1, activation=relu)', 'flatten',
      'dense(3, activation=softmax)']),
]


def export_all(directory):
    torch.manual_seed(0)
    out = []
    for name, cls, shape, options, fragments in MODELS:
        model = cls()
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                # statistics that are not the identity, so the layer counts
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        torch.onnx.export(model, x, os.path.join(directory, name + '.onnx'), opset_version=13,
                          input_names=['x'], output_names=['y'],
                          dynamic_axes={'x': {0: 'N'}, 'y': {0: 'N'}}, **options)
        out.append((name, x.numpy(), y.numpy(), fragments))
    return out


# ---- files the importer must refuse ---------------------------------------

def _tensor(name, array):
    return helper.make_tensor(name, TensorProto.FLOAT, array.shape, array.ravel().tolist())


def _model(nodes, inits, in_shape, out_shape, opset=13):
    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT,
                                                                     in_shape)],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, out_shape)],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])


def _save(directory, name, model_or_bytes):
    path = os.path.join(directory, name + '.onnx')
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else \
        model_or_bytes.SerializeToString()
    with open(path, 'wb') as f:
        f.write(data)
    return path


def bad_models(directory):
    rng = np.random.default_rng(0)
    w = _tensor('w', rng.standard_normal([4, 2, 3, 3]).astype(np.float32))
    cases = []
    # several nodes cnngen cannot write: each is reported, in one run
    nodes = [helper.make_node('Conv', ['x', 'w'], ['c'], name='grouped', group=2),
             helper.make_node('Mul', ['c', 'c'], ['m'], name='square'),
             helper.make_node('MaxPool', ['m'], ['y'], name='ceil', kernel_shape=[2, 2],
                              ceil_mode=1)]
    good = _model(nodes, [w], ['N', 4, 6, 6], ['N', 4, 2, 2])
    cases.append(('three unsupported nodes', _save(directory, 'unsupported', good),
                  ["node 'grouped' (Conv): attribute group=2", "node 'square' (Mul): operator Mul",
                   "node 'ceil' (MaxPool): attribute ceil_mode=1"]))
    nodes = [helper.make_node('Conv', ['x', 'w'], ['y'], name='odd', pads=[0, 0, 1, 1])]
    cases.append(('uneven pads', _save(directory, 'pads', _model(
        nodes, [_tensor('w', rng.standard_normal([4, 4, 3, 3]).astype(np.float32))],
        ['N', 4, 6, 6], ['N', 4, 5, 5])), ["node 'odd' (Conv): attribute pads=[0, 0, 1, 1]"]))
    whole = good.SerializeToString()
    cases.append(('a truncated file', _save(directory, 'truncated', whole[:len(whole) // 2]),
                  ['not an ONNX model']))
    cases.append(('random bytes', _save(directory, 'random', rng.bytes(4000)),
                  ['not an ONNX model']))
    cases.append(('an empty file', _save(directory, 'empty', b''), ['the model has no graph']))
    # a cycle: relu reads what tanh, after it, makes from relu
    nodes = [helper.make_node('Relu', ['t'], ['r'], name='first'),
             helper.make_node('Tanh', ['r'], ['t'], name='second'),
             helper.make_node('Sigmoid', ['x'], ['y'], name='out')]
    cyc = _model(nodes, [], ['N', 4], ['N', 4])
    cyc.graph.node[2].input[0] = 'r'
    cases.append(('a cycle', _save(directory, 'cycle', cyc),
                  ["node 'first' (Relu): input 't' is not made by an earlier node"]))
    # weights outside the model's folder, and declared sizes the data lacks
    for what, location in (('external data going up', '../outside.bin'),
                           ('external data at an absolute path', '/etc/passwd')):
        t = onnx.TensorProto(name='w', data_type=TensorProto.FLOAT, dims=[4, 2, 3, 3],
                             data_location=TensorProto.EXTERNAL)
        t.external_data.add(key='location', value=location)
        m = _model([helper.make_node('Conv', ['x', 'w'], ['y'], name='conv')], [t],
                   ['N', 2, 5, 5], ['N', 4, 3, 3])
        cases.append((what, _save(directory, what.split()[-1], m),
                       [f"external data at '{location}' is outside the model's folder"]))
    t = onnx.TensorProto(name='w', data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 3, 3],
                         raw_data=b'\0' * 64)
    m = _model([helper.make_node('Conv', ['x', 'w'], ['y'], name='huge')], [t],
               ['N', 2, 5, 5], ['N', 4, 3, 3])
    cases.append(('a huge declared size', _save(directory, 'huge', m),
                  ["tensor 'w' has a bad size"]))
    t = onnx.TensorProto(name='w', data_type=TensorProto.FLOAT, dims=[4, 2, 3, 3],
                         raw_data=b'\0' * 64)
    m = _model([helper.make_node('Conv', ['x', 'w'], ['y'], name='short')], [t],
               ['N', 2, 5, 5], ['N', 4, 3, 3])
    cases.append(('data shorter than its shape', _save(directory, 'short', m),
                  ["tensor 'w' holds 64 bytes, not the 288 of its shape"]))
    # values the language has no room for (found by fuzz_onnx)
    c = rng.standard_normal([2]).astype(np.float32)
    stats = [_tensor(n, v) for n, v in (('s', c), ('b', c), ('m', c), ('v', np.abs(c) + 1))]
    m = _model([helper.make_node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'],
                                 name='bn', momentum=-0.9)], stats, ['N', 2, 4], ['N', 2, 4])
    cases.append(('a negative momentum', _save(directory, 'momentum', m),
                  ["node 'bn' (BatchNormalization): attributes momentum=-0.9"]))
    nan = rng.standard_normal([4, 2, 3, 3]).astype(np.float32)
    nan[1, 1, 1, 1] = np.nan
    m = _model([helper.make_node('Conv', ['x', 'w'], ['y'], name='nan')], [_tensor('w', nan)],
               ['N', 2, 5, 5], ['N', 4, 3, 3])
    cases.append(('a NaN weight', _save(directory, 'nan', m),
                  ["tensor 'w' holds a value that is not a finite number"]))
    m = _model([helper.make_node('MaxPool', ['x'], ['y'], name='wide', kernel_shape=[7],
                                 strides=[2])], [], ['N', 2, 4], ['N', 2, 1])
    cases.append(('a window wider than its input', _save(directory, 'wide', m),
                  ["node 'wide' (MaxPool): its window (7) is larger than its padded input (4)"]))
    # thousands of refused nodes: the first 50 printed, the rest counted
    nodes = [helper.make_node('Mul', ['x', 'x'], [f'm{k}'], name=f'mul{k}') for k in range(3000)]
    nodes.append(helper.make_node('Sum', [f'm{k}' for k in range(3000)], ['y'], name='sum'))
    cases.append(('3000 refused nodes', _save(directory, 'many', _model(nodes, [], ['N', 4],
                                                                          ['N', 4])),
                  ["node 'mul49' (Mul)", '2950 more errors not shown']))
    return cases


def long_chain(directory, length=3000):
    """A model of `length` ReLUs all named alike: the importer's tables
    grow many times, and the names are made unique without a quadratic
    search."""
    nodes = [helper.make_node('Relu', ['x' if k == 0 else f'v{k - 1}'], [f'v{k}'], name='same')
             for k in range(length)]
    nodes.append(helper.make_node('Identity', [f'v{length - 1}'], ['y'], name='out'))
    return _save(directory, 'long', _model(nodes, [], ['N', 4], ['N', 4]))


def hostile_producer(directory):
    """A good model whose producer name holds newlines and a byte that is
    not UTF-8: the .cnn's first comment must stay one comment."""
    m = _model([helper.make_node('Relu', ['x'], ['y'], name='r')], [], ['N', 4], ['N', 4])
    m.producer_name = 'evil\nmodel other\ninput [1]\n\u00ff'
    return _save(directory, 'producer', m)
