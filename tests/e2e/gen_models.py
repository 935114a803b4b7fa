#!/usr/bin/python3
"""Random .cnn models for the differential tests against the reference.

    gen_models.py valid  N SEED OUTDIR     N models that should compile
    gen_models.py broken N SEED OUTDIR     N models with one random mistake

Valid models cover every layer kind (upsampling too), rank, padding mode, stride, dilation,
kernel shape, labels with from/add/concat, literal weights (nested, flat,
with trailing axes of size 1 left out), constants and constant expressions,
and train blocks.  The generator tracks shapes with the contract's rules
only to keep the models valid; what the shapes are is decided by comparing
cnngen with the reference, not by this file.

Broken models are valid ones with one token-level mistake (a token deleted,
duplicated or replaced, a bracket dropped, a bad value), so that syntax and
semantic errors are compared too.
"""

import os
import random
import re
import sys

ACTS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'leaky_relu']
INITS = ['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_normal', 'zeros',
         'ones']


def out_size(n, k, s, d, pad):
    span = d * (k - 1) + 1
    if pad == 'valid':
        b = a = 0
    elif pad == 'same':
        out = -(-n // s)
        total = max((out - 1) * s + span - n, 0)
        b, a = total // 2, total - total // 2
    elif pad == 'causal':
        b, a = d * (k - 1), 0
    else:
        b = a = pad
    return (n + b + a - span) // s + 1


class Gen:
    def __init__(self, rng, index, train=False):
        self.r = rng
        self.index = index
        self.train = train      # for training against the reference: no random dropout
        self.lines = []
        self.consts = {}
        self.labels = {}        # label -> shape
        self.shape = None
        self.counter = 0

    # -- value spelling ----------------------------------------------------
    def num(self, v):
        """An integer written plainly or as a constant expression."""
        r = self.r.random()
        if r < 0.6 or v < 1:
            return str(v)
        if r < 0.7 and self.consts:
            for name, value in self.consts.items():
                if value == v:
                    return name
        if r < 0.8:
            return f'{v - 1}+1'
        if r < 0.9 and v % 2 == 0:
            return f'2*{v // 2}'
        return f'({v})'

    def tup(self, vals):
        if len(set(vals)) == 1 and self.r.random() < 0.5:
            return self.num(vals[0])
        if len(vals) == 1 and self.r.random() < 0.5:
            return f'({self.num(vals[0])},)'
        inner = ', '.join(self.num(v) for v in vals)
        return f'({inner}{"," if self.r.random() < 0.1 else ""})'

    def real(self):
        v = self.r.choice([0.5, -1, 1, 0.25, 2, -0.5, 1 / 3])
        if v == 1 / 3:
            return '1/3'
        return str(v)

    def literal(self, shape, flat=False):
        if flat:
            n = 1
            for d in shape:
                n *= d
            return '[' + ', '.join(self.real() for _ in range(n)) + ']'
        if not shape:
            return self.real()
        return '[' + ', '.join(self.literal(shape[1:]) for _ in range(shape[0])) + ']'

    def label(self):
        self.counter += 1
        return f'l{self.counter}'

    # -- layers -------------------------------------------------------------
    def emit(self, text, shape, label=None):
        if label is None and self.r.random() < 0.2:
            label = self.label()
        if label:
            self.labels[label] = shape
            text = f'{label}: {text}'
        self.lines.append(text)
        self.shape = shape

    def args(self, positional, named):
        """positional: [(name, text)]; some go by name, in random order."""
        parts, by_name = [], []
        cut = self.r.randint(0, len(positional))
        for i, (name, text) in enumerate(positional):
            if i < cut:
                parts.append(text)
            else:
                by_name.append(f'{name}={text}')
        by_name += [f'{k}={v}' for k, v in named]
        self.r.shuffle(by_name)
        return '(' + ', '.join(parts + by_name) + ')'

    def conv(self, nd, depthwise=False):
        shape = self.shape
        spatial, cin = (shape[:nd], shape[nd]) if len(shape) == nd + 1 else (shape, 1)
        for _ in range(20):
            k = [self.r.randint(1, 4) for _ in range(nd)]
            s = [self.r.choice([1, 1, 2, 3]) for _ in range(nd)]
            d = [self.r.choice([1, 1, 2]) for _ in range(nd)]
            pads = ['valid', 'same'] + (['causal'] if nd == 1 and not depthwise else []) + ['int']
            pad = self.r.choice(pads)
            pv = [self.r.randint(0, 2) for _ in range(nd)] if pad == 'int' else None
            sizes = [out_size(n, k[i], s[i], d[i], pad if pv is None else pv[i])
                     for i, n in enumerate(spatial)]
            if all(x > 0 for x in sizes):
                break
        else:
            return False
        filters = self.r.randint(1, 4)
        mult = self.r.randint(1, 3)
        cout = cin * mult if depthwise else filters
        named = []
        if s != [1] * nd or self.r.random() < 0.1:
            named.append(('stride', self.tup(s)))
        if d != [1] * nd or self.r.random() < 0.1:
            named.append(('dilation', self.tup(d)))
        if pad != 'valid' or self.r.random() < 0.1:
            named.append(('padding', self.tup(pv) if pv else pad))
        if self.r.random() < 0.5:
            named.append(('activation', self.r.choice(ACTS)))
        if self.r.random() < 0.3:
            named.append(('init', self.r.choice(INITS)))
        kshape = k + [cin, mult if depthwise else filters]
        if self.r.random() < 0.2:
            size = 1
            for x in kshape:
                size *= x
            if size <= 64:
                form = self.r.random()
                if form < 0.4:
                    lit = self.literal(kshape, flat=True)
                else:
                    trimmed = list(kshape)
                    while form > 0.7 and len(trimmed) > 1 and trimmed[-1] == 1:
                        trimmed.pop()
                    lit = self.literal(trimmed)
                named.append(('weights', lit))
                if self.r.random() < 0.5:
                    named.append(('trainable', 'false'))
        b = self.r.random()
        if b < 0.2:
            named.append(('bias', 'false'))
        elif b < 0.3:
            named.append(('bias', self.literal([cout])))
        if depthwise:
            if mult != 1 or self.r.random() < 0.3:
                named.append(('multiplier', self.num(mult)))
            text = 'depthwise_conv2d' + self.args([('kernel', self.tup(k))], named)
        else:
            text = f'conv{nd}d' + self.args([('filters', self.num(filters)),
                                               ('kernel', self.tup(k))], named)
        self.emit(text, tuple(sizes) + (cout,))
        return True

    def pool(self, nd):
        shape = self.shape
        spatial, c = (shape[:nd], shape[nd]) if len(shape) == nd + 1 else (shape, 1)
        for _ in range(20):
            k = [self.r.randint(1, 3) for _ in range(nd)]
            s = [self.r.choice([None, 1, 2]) for _ in range(nd)]
            s = k if s[0] is None else [x or 1 for x in s]
            pad = self.r.choice(['valid', 'same', 'int'])
            pv = [self.r.randint(0, kk - 1) for kk in k] if pad == 'int' else None
            sizes = [out_size(n, k[i], s[i], 1, pad if pv is None else pv[i])
                     for i, n in enumerate(spatial)]
            if all(x > 0 for x in sizes):
                break
        else:
            return False
        named = []
        if s != k:
            named.append(('stride', self.tup(s)))
        if pad != 'valid':
            named.append(('padding', self.tup(pv) if pv else pad))
        kind = self.r.choice(['max', 'avg'])
        self.emit(f'{kind}pool{nd}d' + self.args([('size', self.tup(k))], named),
                  tuple(sizes) + (c,))
        return True

    def upsample(self, nd):
        shape = self.shape
        spatial, c = (shape[:nd], shape[nd]) if len(shape) == nd + 1 else (shape, 1)
        k = [self.r.randint(1, 3) for _ in range(nd)]
        sizes = [n * f for n, f in zip(spatial, k)]
        total = c
        for x in sizes:
            total *= x
        if total > 4096:
            return False
        self.emit(f'upsample{nd}d' + self.args([('size', self.tup(k))], []), tuple(sizes) + (c,))
        return True

    def dense(self):
        units = self.r.randint(1, 6)
        named = []
        if self.r.random() < 0.5:
            named.append(('activation', self.r.choice(ACTS)))
        n = 1
        for x in self.shape:
            n *= x
        if self.r.random() < 0.15 and n * units <= 48:
            named.append(('weights', self.literal([n, units], flat=self.r.random() < 0.5)))
        if self.r.random() < 0.2:
            named.append(('bias', self.r.choice(['false', 'true', self.literal([units])])))
        self.emit('dense' + self.args([('units', self.num(units))], named), (units,))
        return True

    def elementwise(self):
        kind = self.r.choice(['relu', 'sigmoid', 'tanh', 'softmax', 'linear', 'leaky_relu',
                              'batchnorm', 'dropout'])
        text = kind
        if kind == 'leaky_relu' and self.r.random() < 0.5:
            text += self.r.choice(['(0.2)', '(alpha=0.1)'])
        elif kind == 'batchnorm' and self.r.random() < 0.5:
            text += self.args([], [('momentum', '0.9'), ('epsilon', '1e-3')][:self.r.randint(1, 2)]
                              + ([('trainable', 'false')] if self.r.random() < 0.3 else []))
        elif kind == 'dropout':
            text += '(0)' if self.train else self.r.choice(['(0.5)', '(rate=0.25)', '(0)'])
        self.emit(text, self.shape)
        return True

    def merge(self):
        same = [l for l, s in self.labels.items() if s == self.shape]
        cat = [l for l, s in self.labels.items()
               if len(s) == len(self.shape) and s[:-1] == self.shape[:-1]]
        if same and self.r.random() < 0.5:
            picks = self.r.sample(same, self.r.randint(1, min(2, len(same))))
            self.emit(f'add({", ".join(picks)})', self.shape)
            return True
        if cat:
            picks = self.r.sample(cat, self.r.randint(1, min(2, len(cat))))
            channels = self.shape[-1] + sum(self.labels[p][-1] for p in picks)
            self.emit(f'concat({", ".join(picks)})', self.shape[:-1] + (channels,))
            return True
        return False

    def branch(self):
        if not self.labels:
            return False
        label = self.r.choice(sorted(self.labels))
        self.lines.append(f'from {label}')
        self.shape = self.labels[label]
        return True

    def step(self):
        rank = len(self.shape)
        choices = ['dense', 'elementwise', 'elementwise']
        if 2 <= rank <= 4:
            choices += ['conv', 'conv', 'pool', 'global', 'flatten', 'upsample']
        if rank == 1 and self.r.random() < 0.3:
            choices += ['conv1']            # a rank-1 tensor read as [n, 1]
        if rank == 1 and self.r.random() < 0.1:
            choices += ['upsample1']
        if rank == 3 or (rank == 2 and self.r.random() < 0.3):
            choices += ['depthwise']
        if self.labels:
            choices += ['merge', 'branch']
        what = self.r.choice(choices)
        nd = rank - 1
        if what == 'conv1':
            return self.conv(1)
        if what == 'conv':
            return self.conv(nd)
        if what == 'depthwise':
            return self.conv(2, depthwise=True)
        if what == 'pool':
            return self.pool(nd)
        if what == 'upsample':
            return self.upsample(nd)
        if what == 'upsample1':
            return self.upsample(1)
        if what == 'global':
            self.emit(self.r.choice(['global_maxpool', 'global_avgpool']), (self.shape[-1],))
            return True
        if what == 'flatten':
            n = 1
            for x in self.shape:
                n *= x
            self.emit('flatten', (n,))
            return True
        return getattr(self, what)()

    def model(self):
        self.lines.append(f'model m{self.index}')
        if self.r.random() < 0.3:
            self.consts['k3'] = 3
            self.lines.append('const k3 = 3')
        rank = self.r.choice([1, 2, 2, 3, 3, 4])
        sizes = {1: (4, 30), 2: (3, 16), 3: (3, 10), 4: (2, 6)}[rank]
        shape = tuple(self.r.randint(*sizes) for _ in range(rank))
        if rank >= 2 and self.r.random() < 0.6:
            shape = shape[:-1] + (self.r.randint(1, 3),)
        self.shape = shape
        self.lines.append(f'input [{", ".join(self.num(x) for x in shape)}]')
        if self.r.random() < 0.15:
            label = self.label()
            self.lines.append(f'{label}: linear')
            self.labels[label] = shape
        for _ in range(self.r.randint(1, 8)):
            for _attempt in range(5):
                if self.step():
                    break
        if self.train:
            self.lines.append(self.training_head())
        elif self.r.random() < 0.5:
            self.lines.append(self.train_block())
        sep = '\n'
        if self.r.random() < 0.1:
            return '; '.join(self.lines) + '\n'
        return sep.join(self.lines) + sep

    def training_head(self):
        """An output layer and a train block for every loss and optimizer:
        softmax with crossentropy, sigmoid with binary crossentropy (from
        the logits, or clipped after another layer), mse and mae."""
        head = self.r.choice(['softmax', 'softmax_layer', 'sigmoid', 'sigmoid_layer', 'mse', 'mae',
                              'clipped'])
        units = self.r.randint(2, 5)
        if head == 'softmax':
            self.lines.append(f'dense({units}, activation=softmax)')
            loss = 'crossentropy'
        elif head == 'softmax_layer':
            if len(self.shape) == 1:
                self.lines.append(f'dense({units})')
            self.lines.append('softmax')
            loss = 'crossentropy'
        elif head == 'sigmoid':
            self.lines.append(f'dense({units}, activation=sigmoid)')
            loss = 'binary_crossentropy'
        elif head == 'sigmoid_layer':
            self.lines.append('sigmoid')
            loss = 'binary_crossentropy'
        elif head == 'clipped':     # probabilities not from the last layer's logits
            self.lines.append(f'dense({units}, activation=sigmoid)')
            self.lines.append('dropout(0)')
            loss = 'binary_crossentropy'
        else:
            loss = head
        optimizer = self.r.choice(['sgd(lr=0.05, momentum=0.9)', 'adam(lr=1e-3)', 'sgd',
                                   'adam(0.01, 0.8, 0.99, weight_decay=0.01)',
                                   'sgd(0.1, 0.5, true)', 'sgd(0.02, weight_decay=0.1)'])
        return (f'train {{\n  loss = {loss}\n  optimizer = {optimizer}\n'
                f'  batch = {self.r.randint(1, 12)}\n}}')

    def train_block(self):
        entries = []
        if self.r.random() < 0.5:
            entries.append(f'loss = {self.r.choice(["mse", "mae"])}')
        if self.r.random() < 0.6:
            entries.append(self.r.choice(['optimizer = sgd(lr=0.05, momentum=0.9)',
                                          'optimizer = adam(lr=1e-3)', 'optimizer = sgd',
                                          'optimizer = adam(0.01, 0.8, 0.99, weight_decay=0.01)',
                                          'optimizer = sgd(0.1, 0.5, true)']))
        if self.r.random() < 0.5:
            entries.append(f'batch = {self.r.randint(1, 64)}')
        if self.r.random() < 0.5:
            entries.append(f'epochs = {self.r.randint(0, 20)}')
        if self.r.random() < 0.4:
            entries.append(self.r.choice(['metrics = [mae]', 'metrics = rmse',
                                          'metrics = [mae, rmse]', 'metrics = []']))
        if self.r.random() < 0.3:
            entries.append(f'seed = {self.r.randint(0, 99)}')
        self.r.shuffle(entries)
        if self.r.random() < 0.3:
            return 'train { ' + '; '.join(entries) + ' }'
        return 'train {\n  ' + '\n  '.join(entries) + '\n}'


TOKEN_RE = re.compile(r'\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+|.',
                      re.S)
JUNK = ['(', ')', '[', ']', '{', '}', ',', '=', ':', ';', '+', '-', '*', '/', '\n', '0', '-1',
        '2.5', '1e400', 'same', 'valid', 'causal', 'foo', 'dense', 'model', 'input', 'const',
        'from', 'train', 'true', 'relu', 'l1', '$', '"', '.', '1/0', '99999', '[1, 2]', '(2, 2)',
        '3000000000', 'x:', 'int', 'é', '\t', 'add(l1)', 'concat(nope)', 'padding=same',
        'weights=[1]', 'bias=[1, 2]', 'kernel=(1, 2, 3)', 'stride=0']


def mutate(rng, text):
    tokens = [t for t in TOKEN_RE.findall(text)]
    spots = [i for i, t in enumerate(tokens) if not t.isspace() and not t.startswith('#')]
    if not spots:
        return text + rng.choice(JUNK)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        i = rng.choice(spots)
        how = rng.random()
        if how < 0.3:
            tokens[i] = ''
        elif how < 0.45:
            tokens[i] = tokens[i] + ' ' + tokens[i]
        elif how < 0.85:
            tokens[i] = rng.choice(JUNK)
        else:
            tokens[i] = tokens[i] + ' ' + rng.choice(JUNK)
    return ''.join(tokens)


def main():
    what, count, seed, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(seed)
    for i in range(count):
        text = Gen(rng, i, train=what == 'train').model()
        if what == 'broken':
            text = mutate(rng, text)
        with open(os.path.join(outdir, f'{what}_{seed}_{i:04d}.cnn'), 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
