#!/usr/bin/python3
"""cnnref_train.py: the reference (cnnref.py, an unchanged copy of
../shared/oracle) with what the train block gained after the contract:
validation (`--val DATA`, `validation_split`), learning-rate schedules and
warmup, `adamw`, early stopping with the best epoch's weights, and
augmentation.  Each is built from PyTorch's own classes where PyTorch has
one: the schedules are torch.optim.lr_scheduler's StepLR, ExponentialLR,
CosineAnnealingLR, OneCycleLR (cycle_momentum=False), LinearLR and
SequentialLR, stepped on a stand-in optimizer whose learning rate the
training loop reads; adamw is torch.optim.AdamW.  The augmentation's
random draws are cnngen's (runtime/src/augment.c), which no library
makes, written again here from their description.

The command line is cnnref.py's, plus `train --val DATA`; a model without
the new settings trains exactly as in cnnref.py.  Tests use this file as
the oracle (tests/CMakeLists.txt).
"""
import dataclasses
import io
import math
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault('cnnref_train', sys.modules[__name__])  # one copy, run or imported
import cnnref  # noqa: E402
from cnnref import (Arg, Args, Call, CompileError, Fail, Name, Seq, bind_arguments,  # noqa: E402
                    fmt_g)

OPTIMIZERS = dict(cnnref.OPTIMIZERS)
OPTIMIZERS['adamw'] = (('lr', 0.001), ('beta1', 0.9), ('beta2', 0.999), ('epsilon', 1e-8),
                       ('weight_decay', 0.01))
SCHEDULES = {'step_decay': ('every', 'gamma', 'per'), 'exponential': ('gamma', 'per'),
             'cosine': ('length', 'min_lr', 'per'),
             'one_cycle': ('max_lr', 'pct_start', 'div_factor', 'final_div_factor')}
TRANSFORMS = {'shift': 'pixels', 'crop': 'padding', 'flip': None, 'noise': 'stddev', 'scale': 'range'}
MONITORS = ('loss', 'accuracy', 'mae', 'rmse', 'val_loss', 'val_accuracy', 'val_mae', 'val_rmse')
KEYS = ('loss, optimizer, batch, epochs, metrics, seed, schedule, warmup, validation_split, '
        'early_stopping, monitor, augment, quantize')


@dataclasses.dataclass
class TrainConfig(cnnref.TrainConfig):
    schedule: dict = None           # {'kind': ..., arguments..., 'per': 'epoch'|'step'}
    warmup: dict = None             # {'length': W, 'start_factor': f, 'per': ... or None}
    validation_split: float = 0.0
    patience: int = 0
    monitor: str = 'val_loss'
    augment: tuple = ()             # ((kind, amount), ...)
    quantize: bool = False          # quantize = int8: quantization-aware training


def call_args(node, positional):
    args = node.args if isinstance(node, Call) else []
    return bind_arguments(node.name, args, positional, ())


class Builder(cnnref.Builder):
    monitor_loc = augment_loc = warmup_loc = None

    def on_train(self, s, index):
        if self.train_stmt is not None:
            raise CompileError(s.loc, 'only one train block is allowed')
        self.train_stmt = s
        config = self.train = TrainConfig()
        seen = set()
        for entry in s.entries:
            try:
                key, node = entry.name, entry.value
                if key in seen:
                    raise CompileError(entry.loc, f"'{key}' is set twice")
                seen.add(key)
                a = Args('train', entry.loc, {key: entry}, self.consts)
                if key == 'loss':
                    config.loss = a.word('loss', cnnref.LOSSES)
                elif key == 'optimizer':
                    config.optimizer, config.options = self.optimizer(node)
                elif key in ('batch', 'epochs', 'seed'):
                    setattr(config, key, a.integer(key, minimum=1 if key == 'batch' else 0))
                elif key == 'metrics':
                    items = node.items if isinstance(node, Seq) and node.kind == 'list' else [node]
                    names = [Args('train', entry.loc, {'metrics': Arg(i.loc, 'metrics', i)}, {})
                             .word('metrics', cnnref.METRICS) for i in items]
                    if len(set(names)) != len(names):
                        raise CompileError(node.loc, 'a metric is listed twice')
                    config.metrics = tuple(names)
                    self.metrics_loc = node.loc
                elif key == 'schedule':
                    config.schedule = self.schedule(node)
                elif key == 'warmup':
                    self.warmup_loc = entry.loc
                    config.warmup = self.warmup(entry, a)
                elif key == 'validation_split':
                    config.validation_split = a.number(key, lo=0, hi=1, lo_open=True, hi_open=True)
                elif key == 'early_stopping':
                    config.patience = a.integer(key, minimum=1)
                elif key == 'monitor':
                    config.monitor = a.word(key, MONITORS)
                    self.monitor_loc = node.loc
                elif key == 'augment':
                    config.augment = self.augment(node)
                elif key == 'quantize':
                    a.word(key, ('int8',))
                    config.quantize = True
                    self.quantize_loc = entry.loc
                else:
                    raise CompileError(entry.loc, f"unknown train setting '{key}' ({KEYS})")
            except CompileError as error:
                self.diag.error(error.loc, error.message)

    def build(self, statements):
        model = super().build(statements)
        if model is not None and model.train.quantize:
            import cnnref_quant
            try:
                model.qat = QatPlan(model)
            except cnnref_quant.QuantizeError as error:
                self.diag.error(error.loc, error.message)
                self.diag.error(self.quantize_loc, 'quantize = int8: quantization-aware training '
                                'needs an int8 form of every layer (see the error above)')
                return None
        return model

    def optimizer(self, node):
        name = node.name if isinstance(node, (Name, Call)) else None
        if name not in OPTIMIZERS:
            raise CompileError(node.loc, 'optimizer must be sgd(...), adam(...) or adamw(...)')
        saved = cnnref.OPTIMIZERS
        cnnref.OPTIMIZERS = OPTIMIZERS
        try:
            return super().optimizer(node)
        finally:
            cnnref.OPTIMIZERS = saved

    def schedule(self, node):
        name = node.name if isinstance(node, (Name, Call)) else None
        if name not in SCHEDULES:
            raise CompileError(node.loc, 'schedule must be step_decay(...), exponential(...), '
                                         'cosine(...) or one_cycle(...)')
        a = Args(name, node.loc, call_args(node, SCHEDULES[name]), self.consts)
        s = {'kind': name, 'per': 'step' if name == 'one_cycle' else 'epoch'}
        if name == 'step_decay':
            s.update(every=a.integer('every', minimum=1), gamma=a.number('gamma', 0.1, lo=0, lo_open=True))
        elif name == 'exponential':
            s.update(gamma=a.number('gamma', lo=0, lo_open=True))
        elif name == 'cosine':
            s.update(length=a.integer('length', 0, minimum=1), min_lr=a.number('min_lr', 0.0, lo=0))
        else:
            s.update(max_lr=a.number('max_lr', 0.0, lo=0, lo_open=True),
                     pct_start=a.number('pct_start', 0.3, lo=0, hi=1, lo_open=True, hi_open=True),
                     div_factor=a.number('div_factor', 25.0, lo=0, lo_open=True),
                     final_div_factor=a.number('final_div_factor', 1e4, lo=0, lo_open=True))
        if name != 'one_cycle':
            s['per'] = a.word('per', ('epoch', 'step'), 'epoch')
        return s

    def warmup(self, entry, a):
        node = entry.value
        if isinstance(node, (Name, Call)) and node.name == 'linear':
            w = Args('linear', node.loc, call_args(node, ('length', 'start_factor', 'per')), self.consts)
            per = w.word('per', ('epoch', 'step'), 'epoch')
            return {'length': w.integer('length', minimum=1),
                    'start_factor': w.number('start_factor', 1 / 3, lo=0, hi=1, lo_open=True),
                    'per': per if w.given('per') else None, 'per_written': per}
        return {'length': a.integer('warmup', minimum=1), 'start_factor': 1 / 3, 'per': None,
                'per_written': 'epoch'}

    def augment(self, node):
        self.augment_loc = node.loc
        items = node.items if isinstance(node, Seq) and node.kind == 'list' else [node]
        if len(items) > 8:
            raise CompileError(node.loc, 'at most 8 transforms')
        out = []
        for item in items:
            name = item.name if isinstance(item, (Name, Call)) else None
            if name not in TRANSFORMS:
                raise CompileError(item.loc, 'a transform is shift(pixels), crop(padding), flip, '
                                             'noise(stddev) or scale(range)')
            arg = TRANSFORMS[name]
            a = Args(name, item.loc, call_args(item, (arg,) if arg else ()), self.consts)
            if name in ('shift', 'crop'):
                out.append((name, float(a.integer(arg, minimum=1))))
            elif name == 'noise':
                out.append((name, a.number(arg, lo=0, lo_open=True)))
            elif name == 'scale':
                out.append((name, a.number(arg, lo=0, hi=1, lo_open=True, hi_open=True)))
            else:
                out.append((name, 0.0))
        return tuple(out)

    def check_train(self):
        super().check_train()
        config = self.train
        if config is None:
            return
        if self.monitor_loc is not None:
            word = config.monitor.removeprefix('val_')
            if word != 'loss' and word not in config.metrics:
                self.diag.error(self.monitor_loc, f"monitor '{config.monitor}' is not computed: it "
                                                  "must be the loss or one of the train block's metrics")
        w, s = config.warmup, config.schedule
        if w and s and w['per'] and w['per'] != s['per']:
            self.diag.error(self.warmup_loc, f"the warmup counts {w['per']}s and the schedule "
                                             f"{s['per']}s: give both the same 'per'")
        shape = self.input_shape
        for kind, amount in config.augment:
            if kind in ('shift', 'crop', 'flip') and shape is not None and len(shape) not in (3, 4):
                self.diag.error(self.augment_loc, 'shift, crop and flip need an image [H, W, C] or a '
                                                  f'clip [D, H, W, C] input; the input has rank '
                                                  f'{len(shape)} (write input [H, W, 1] for a '
                                                  'one-channel image)')
                break
            if kind in ('shift', 'crop') and shape is not None and \
                    (amount >= shape[-3] or amount >= shape[-2]):
                self.diag.error(self.augment_loc, f'a shift of {int(amount)} pixels leaves nothing of '
                                                  f'a {shape[-3]} x {shape[-2]} image')
                break


# ===========================================================================
# The learning rate: PyTorch's schedulers on a stand-in optimizer
# ===========================================================================

class LearningRate:
    """lr(): the rate for the next step; advance() after each unit (a step
    or an epoch, as the schedule counts)."""

    def __init__(self, config, steps_per_epoch):
        base = config.options['lr']
        s, w = config.schedule, config.warmup
        self.per = (s or {}).get('per') or (w or {}).get('per_written') or 'epoch'
        self.active = bool(s or w)
        total = config.epochs * (steps_per_epoch if self.per == 'step' else 1)
        self.holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        warm = w['length'] if w else 0
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            schedulers = []
            if w:
                schedulers.append(torch.optim.lr_scheduler.LinearLR(
                    self.holder, start_factor=w['start_factor'], end_factor=1.0, total_iters=warm))
            if s:
                schedulers.append(self.main(s, base, total - warm))
            if len(schedulers) == 2:
                self.scheduler = torch.optim.lr_scheduler.SequentialLR(self.holder, schedulers, [warm])
            else:
                self.scheduler = schedulers[0] if schedulers else None

    def main(self, s, base, length):
        sched = torch.optim.lr_scheduler
        if s['kind'] == 'step_decay':
            return sched.StepLR(self.holder, step_size=s['every'], gamma=s['gamma'])
        if s['kind'] == 'exponential':
            return sched.ExponentialLR(self.holder, gamma=s['gamma'])
        if s['kind'] == 'cosine':
            return sched.CosineAnnealingLR(self.holder, T_max=s['length'] or max(length, 1),
                                           eta_min=s['min_lr'])
        return sched.OneCycleLR(self.holder, max_lr=s['max_lr'] or base, total_steps=max(length, 2),
                                pct_start=s['pct_start'], anneal_strategy='cos', cycle_momentum=False,
                                div_factor=s['div_factor'], final_div_factor=s['final_div_factor'])

    def lr(self):
        return self.holder.param_groups[0]['lr']

    def advance(self):
        if self.scheduler is not None:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                self.scheduler.step()


class AdamW:
    """torch.optim.AdamW over the trainable tensors, the rate set per step."""

    def __init__(self, lr, beta1, beta2, epsilon, weight_decay):
        self.lr, self.options = lr, dict(betas=(beta1, beta2), eps=epsilon, weight_decay=weight_decay)
        self.torch = None

    def step(self, P, grads):
        if self.torch is None:
            self.torch = torch.optim.AdamW([P[name] for name in grads], lr=self.lr, **self.options)
        for group in self.torch.param_groups:
            group['lr'] = self.lr
        for name, g in grads.items():
            P[name].grad = g
        self.torch.step()
        for name in grads:
            P[name].grad = None


def make_optimizer(config):
    if config.optimizer == 'adamw':
        return AdamW(**config.options)
    return cnnref.make_optimizer(config)


# ===========================================================================
# Augmentation: cnngen's draws (runtime/src/augment.c)
# ===========================================================================

MASK = (1 << 64) - 1


def finalize(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Stream:
    """splitmix64, keyed by (seed, epoch, position in the epoch)."""

    def __init__(self, seed, epoch, position):
        key = finalize(seed ^ 0x4155474D454E54)
        key = finalize((key + epoch) & MASK)
        self.state = finalize((key + position) & MASK)

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        return finalize(self.state)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def integer(self, amount):
        return self.next() % (2 * amount + 1) - amount

    def normal(self):
        u1 = ((self.next() >> 11) + 1) * 2.0 ** -53
        u2 = self.uniform()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def shift_image(x, dy, dx):
    """x: [..., H, W, C] (an image or a clip): out[y][x] = x[y - dy][x - dx],
    zero where that is outside."""
    out = np.zeros_like(x)
    h, w = x.shape[-3], x.shape[-2]
    if abs(dy) < h and abs(dx) < w:
        out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0), :] = \
            x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0), :]
    return out


def augment_sample(config, stream, x, t, value_targets, input_shape):
    """One sample (numpy float32 arrays), through the transforms in order."""
    image = x.reshape(input_shape)
    for kind, amount in config.augment:
        if kind in ('shift', 'crop'):
            dy, dx = stream.integer(int(amount)), stream.integer(int(amount))
            image = shift_image(image, dy, dx)
        elif kind == 'flip':
            if stream.next() >> 63:
                image = image[..., ::-1, :].copy()
        elif kind == 'noise':
            flat = image.reshape(-1)
            noise = np.array([amount * stream.normal() for _ in range(flat.size)], dtype=np.float64)
            image = (flat + noise.astype(np.float32)).reshape(image.shape)
        else:
            factor = 1 - amount + 2 * amount * stream.uniform()
            image = (image.astype(np.float64) * factor).astype(np.float32)
            if value_targets:
                t = (t.astype(np.float64) * factor).astype(np.float32)
    return image.reshape(-1), t


def augment_batch(model, config, seed, epoch, first, x, t):
    value_targets = config.loss in ('mse', 'mae')
    xs, ts = x.numpy().copy(), t.numpy().copy()
    for i in range(len(xs)):
        stream = Stream(seed, epoch, first + i)
        xs[i], ts[i] = augment_sample(config, stream, xs[i], ts[i], value_targets, model.input_shape)
    return torch.from_numpy(xs), torch.from_numpy(ts)


# ===========================================================================
# The training loop
# ===========================================================================

def improves(name, value, best):
    if best is None:
        return not math.isnan(value)
    return value > best if name.removeprefix('val_') == 'accuracy' else value < best


# ---------------------------------------------------------------------------
# Quantization-aware training (quantize = int8; docs/int8.md): PyTorch's
# fake quantization at the tensors the int8 plan (cnnref_quant.py) gives
# scales of their own, in training steps only.
# ---------------------------------------------------------------------------

AVERAGING_CONSTANT = 0.01     # MovingAverageMinMaxObserver's default


def trains_as_identity(layer):
    """flatten, a linear activation layer and dropout(0): cnngen's
    training shares their input's storage (what the loss reads as is)."""
    return layer.kind == 'flatten' or (layer.kind == 'linear') or \
        (layer.kind == 'dropout' and layer.rate == 0)


class QatPlan:
    """Which nodes are observed (each with its parameter NAME.quantize
    [min, max, seen]), which the layers after them read fake-quantized
    (all but the output) and which layers' kernels are fake-quantized (the
    linear maps without a batchnorm folded in)."""

    def __init__(self, model):
        import cnnref_quant
        P = {spec.name: torch.zeros(spec.shape) for spec in model.params}
        names = ['input'] + [layer.name for layer in model.layers]
        plan = cnnref_quant.QuantizedModel(model, P, {name: (0.0, 1.0) for name in names})
        self.observed = []
        for k, node in enumerate(plan.summary()['nodes']):
            if node['form'] == 'range':
                self.observed.append(k + 1 if k and k - 1 in plan.folds else k)
        self.observed.sort()
        self.kernels = {i for i, layer in enumerate(model.layers)
                        if layer.kind in cnnref.LINEAR_MAPS and i not in plan.folds}
        out = len(model.layers)
        while out > 0 and trains_as_identity(model.layers[out - 1]):
            out = model.layers[out - 1].srcs[0]
        self.fake = {k for k in self.observed if k != out and k < len(model.layers)}
        self.names = {k: f'{names[k]}.quantize' for k in self.observed}
        self.params = [cnnref.ParamSpec(self.names[k], (3,), False) for k in self.observed]


def model_params(model):
    """The layers' tensors, then quantization-aware training's observers."""
    qat = getattr(model, 'qat', None)
    return [p for layer in model.layers for p in layer.params] + (qat.params if qat else [])


cnnref.Model.params = property(model_params)
original_load_weights = cnnref.load_weights


def load_weights(path, model):
    """cnnref.load_weights, where the observers may be missing (a float
    model's weights starting quantization-aware training): they start
    unseen, zeros."""
    qat = getattr(model, 'qat', None)
    if qat is None:
        return original_load_weights(path, model)
    entries = cnnref.read_safetensors(path)
    every = qat.params
    qat.params = [spec for spec in every if spec.name in entries]
    try:
        weights = original_load_weights(path, model)
    finally:
        qat.params = every
    return {spec.name: weights.get(spec.name, np.zeros(spec.shape, np.float32))
            for spec in model.params}


cnnref.load_weights = load_weights


def observe(state, x):
    """The observer's step on x: MovingAverageMinMaxObserver over the
    state [min, max, seen] (updated in place), then its scale and zero
    point for int8 in [-128, 127]."""
    observer = torch.ao.quantization.MovingAverageMinMaxObserver(
        averaging_constant=AVERAGING_CONSTANT, dtype=torch.qint8, quant_min=-128, quant_max=127)
    if state[2] > 0:
        observer.min_val.copy_(state[0])
        observer.max_val.copy_(state[1])
    observer(x.detach())
    state[0], state[1], state[2] = observer.min_val, observer.max_val, 1.0
    scale, zero = observer.calculate_qparams()
    return scale, zero


def fake_quantize_kernel(kernel, channels):
    """Per output channel (the last axis; a depthwise kernel's last two),
    symmetric, [-127, 127]: the scale of the channel's largest magnitude,
    as the int8 plan takes it."""
    flat = kernel.reshape(-1, channels)
    amax = flat.detach().abs().amax(0)
    scale = torch.max(amax / 127.0, torch.tensor(torch.finfo(torch.float32).eps))
    zero = torch.zeros(channels, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(flat, scale, zero, 1, -127, 127) \
        .reshape(kernel.shape)


def qat_forward(model, P, x, ctx):
    """cnnref.forward in a training step of quantization-aware training."""
    qat = model.qat
    values = [x.reshape((len(x),) + model.input_shape)]
    reads = []

    def after(node):
        y = values[node]
        if node in qat.names:
            scale, zero = observe(P[qat.names[node]], y)
            if node in qat.fake:
                y = torch.fake_quantize_per_tensor_affine(y, float(scale), int(zero), -128, 127)
        reads.append(y)

    after(0)
    pre = None
    for i, layer in enumerate(model.layers):
        Pl = P
        if i in qat.kernels:    # a linear map: it does not write P
            Pl = dict(P)
            Pl[layer.kernel] = fake_quantize_kernel(P[layer.kernel], layer.out_shape[-1])
        y, pre = layer.forward([reads[s] for s in layer.srcs], Pl, ctx)
        values.append(y)
        after(i + 1)
    return values[-1], pre


def train(model, P, x, t, config, seed, shuffle, out, quiet, val=None):
    """cnnref.train, with validation after each epoch, the schedule, early
    stopping, the best epoch's weights and augmentation."""
    _, shuffle_rng, generator = cnnref.random_streams(seed)
    ctx = cnnref.Context(True, generator)
    names = [spec.name for spec in model.params if spec.trainable]
    for name in names:
        P[name].requires_grad_(True)
    optimizer = make_optimizer(config)
    n = len(x)
    steps_per_epoch = -(-n // config.batch)
    rate = LearningRate(config, steps_per_epoch)
    best, best_epoch, best_weights, wait = None, 0, None, 0
    for epoch in range(1, config.epochs + 1):
        order = shuffle_rng.permutation(n) if shuffle else np.arange(n)
        meter = cnnref.Meter(model)
        for start in range(0, n, config.batch):
            index = torch.from_numpy(order[start:start + config.batch])
            xb, tb = x[index], t[index]
            if config.augment:
                xb, tb = augment_batch(model, config, seed, epoch, start, xb, tb)
            lr = rate.lr()
            optimizer.lr = lr
            y, pre = qat_forward(model, P, xb, ctx) if config.quantize else \
                cnnref.forward(model, P, xb, ctx)
            loss = cnnref.compute_loss(model, y, pre, tb)
            params = [P[name] for name in names]
            grads = torch.autograd.grad(loss, params, allow_unused=True) \
                if params and loss.requires_grad else [None] * len(params)
            with torch.no_grad():
                optimizer.step(P, {name: torch.zeros_like(P[name]) if g is None else g
                                   for name, g in zip(names, grads)})
            meter.update(loss.detach(), y.detach(), tb)
            if rate.per == 'step':
                rate.advance()
        if rate.per == 'epoch':
            rate.advance()
        results = meter.results()
        if val is not None:
            results += [('val_' + k, v) for k, v in cnnref.evaluate_model(model, P, *val)]
        if not quiet:
            line = f'epoch {epoch}/{config.epochs} - {cnnref.format_results(results)}'
            if rate.active:
                line += f' - lr: {fmt_g(lr)}'
            out.write(line + '\n')
        values = dict(results)
        if config.monitor in values:
            value = values[config.monitor]
            if improves(config.monitor, value, best):
                best, best_epoch, wait = value, epoch, 0
                if val is not None:
                    best_weights = {k: v.detach().clone() for k, v in P.items()}
            else:
                wait += 1
                if config.patience and wait >= config.patience:
                    if not quiet:
                        out.write(f'early stopping: {config.monitor} has not improved for {wait} epochs\n')
                    break
    for name in names:
        P[name].requires_grad_(False)
    if best_weights is not None:
        for k, v in best_weights.items():
            P[k] = v
        if not quiet:
            out.write(f'best epoch: {best_epoch} - {config.monitor}: {fmt_g(best)} (its weights are saved)\n')
    out.flush()


def cmd_train(args, stdin, out, err):
    model = cnnref.load_model(args.model, err)
    config = model.train
    if args.epochs is not None:
        config.epochs = args.epochs
    seed = config.seed if args.seed is None else args.seed
    x, t = cnnref.load_data(args.data, model)
    val = None
    if args.val:
        val = cnnref.load_data(args.val, model)
    elif getattr(config, 'validation_split', 0):
        keep = math.floor(len(x) * (1 - config.validation_split))
        if keep < 1 or keep >= len(x):
            raise Fail(f'cnnref: error: validation_split = {config.validation_split:g} of {len(x)} '
                       f'samples leaves {"no training sample" if keep < 1 else "no validation sample"}'
                       ': the data needs more samples', 1)
        x, t, val = x[:keep], t[:keep], (x[keep:], t[keep:])
    if getattr(config, 'patience', 0) and config.monitor.startswith('val_') and val is None:
        raise Fail(f'cnnref: error: early_stopping watches {config.monitor}: give --val DATA or '
                   'validation_split in the train block', 2)
    weights = cnnref.load_weights(args.init, model) if args.init else cnnref.initial_weights(model, seed)
    P = cnnref.to_torch(weights)
    if isinstance(config, TrainConfig):
        train(model, P, x, t, config, seed, not args.no_shuffle, out, args.quiet, val)
    else:
        cnnref.train(model, P, x, t, config, seed, not args.no_shuffle, out, args.quiet)
    cnnref.save_weights(args.save or f'{model.name}.safetensors', model, P)
    return 0


def layer_outputs(model, P, x):
    """The evaluation forward pass of x [samples, input shape...]: x, then
    each layer's output."""
    outputs = [x]
    with torch.no_grad():
        for layer in model.layers:
            y, _ = layer.forward([outputs[i] for i in layer.srcs], P, cnnref.Context(False))
            outputs.append(y)
    return outputs


def dump_layers(model, P, samples, directory):
    """Each layer's outputs for the samples, as the generated program's
    `predict --dump DIR` writes them: DIR/LAYER.safetensors holding one
    tensor named by the layer, [samples, its shape...], channels last."""
    x = cnnref.float32_tensor(samples).reshape((len(samples),) + model.input_shape)
    outputs = layer_outputs(model, P, x)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise Fail(f"cnnref: error: cannot make the directory '{directory}': {e.strerror}", 2)
    for layer, y in zip(model.layers, outputs[1:]):
        cnnref.write_safetensors(os.path.join(directory, f'{layer.name}.safetensors'),
                                 [(layer.name, y.numpy())])


def cmd_predict(args, stdin, out, err):
    """cnnref.py's predict, and with --dump DIR each layer's outputs."""
    if not args.dump:
        return original_cmd_predict(args, stdin, out, err)
    model = cnnref.load_model(args.model, err)
    weights = cnnref.load_weights(args.weights, model) if args.weights else \
        cnnref.initial_weights(model, model.train.seed)
    P = cnnref.to_torch(weights)
    source = args.file or '-'
    where = '<stdin>' if source == '-' else source
    text = stdin.read() if source == '-' else '\n'.join(cnnref.read_lines(source))
    status = cnnref.predict_lines(model, P, io.StringIO(text), where, out)
    samples = [values for _, values in cnnref.sample_lines(io.StringIO(text), where,
                                                           model.input_size)]
    dump_layers(model, P, samples, args.dump)
    return status


def make_parser():
    parser = original_make_parser()
    parser.commands['train'].add_argument('--val', metavar='DATA', help='validation data')
    parser.commands['predict'].add_argument('--dump', metavar='DIR',
                                            help="each layer's outputs, DIR/LAYER.safetensors")
    return parser


cnnref.TrainConfig = TrainConfig
cnnref.Builder = Builder
original_make_parser = cnnref.make_parser
cnnref.make_parser = make_parser
cnnref.COMMANDS['train'] = cmd_train
original_cmd_predict = cnnref.COMMANDS['predict']
cnnref.COMMANDS['predict'] = cmd_predict

if __name__ == '__main__':
    if sys.argv[1:2] == ['batch']:
        sys.exit(cnnref.batch(sys.stdin, sys.stdout))
    sys.exit(cnnref.main())
