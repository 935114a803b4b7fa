"""permute(dims), Keras' Permute, against the model without it.

The reference has no permute (the contract's layer table lacks it), so
the layer is held to an identity instead: a model that reads
channels-first input and permutes it to channels-last must compute, bit
for bit, what the same model without the permute computes on the input
already transposed.  For each float clone (CNNGEN_ISA; one the CPU cannot
run is skipped), the LLVM object, training (the same weights after two
epochs), and the int8 predictor.  A permute inside a network, where its
backward pass carries gradients, is checked against finite differences
(tests/helpers/grad_check.c), and bad dims against their messages.
With ONNX built in, each model is exported (a Transpose), run in PyTorch
against the C program, and imported back to the same bytes.
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e_common as common  # noqa: E402

BODY = """conv2d(4, 3, activation=relu)
maxpool2d(2)
dense(3)
train { loss = mse; optimizer = sgd(lr=0.1); batch = 4; epochs = 2 }
"""
PERMUTED = 'model p\ninput [3, 8, 6]\npermute((2, 3, 1))\n' + BODY
PLAIN = 'model p\ninput [8, 6, 3]\n' + BODY
# permutes inside networks, of rank 2, 3 and 4, for the gradient check
INSIDE = [
    'model m\ninput [6, 4]\nconv1d(3, 2, activation=tanh)\npermute((2, 1))\n'
    'conv1d(2, 2, activation=tanh)\ndense(2)\ntrain { loss = mse; optimizer = sgd(lr=1); batch = 3 }\n',
    'model m\ninput [5, 4, 2]\nconv2d(3, 2, activation=tanh)\npermute((3, 1, 2))\n'
    'conv2d(2, 2, activation=tanh)\ndense(2)\ntrain { loss = mse; optimizer = sgd(lr=1); batch = 3 }\n',
    'model m\ninput [3, 4, 3, 2]\nconv3d(2, 2, activation=tanh)\npermute((4, 2, 3, 1))\n'
    'dense(2)\ntrain { loss = mse; optimizer = sgd(lr=1); batch = 3 }\n',
]
BAD = [('permute((2, 2, 1))', "'permute_1': dims must name each axis of its input [3, 8, 6] once"),
       ('permute((1, 2))', "'permute_1': dims must name each axis of its input [3, 8, 6] once"),
       ('permute(3)', "permute's dims must be a tuple of the input's axes"),
       ('permute((1, 5, 2))', "permute's axis 5 is past the 3 axes its dims name")]
FLOAT_CLONES = ['avx512', 'avx2', 'generic', 'scalar']


def lines(rows):
    return '\n'.join(' '.join('%.9g' % v for v in r) for r in rows) + '\n'


class Suite:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.failures = 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def fail(self, msg):
        print('FAIL', msg)
        self.failures += 1

    def build(self, text, name, options=(), obj=False):
        model = self.path(name + '.cnn')
        with open(model, 'w') as f:
            f.write(text)
        exe = self.path(name)
        build = common.build_object_with_runtime if obj else common.build_with_runtime
        err = build(self.args, model, exe + ('.o' if obj else '.c'), exe, options)
        if err:
            self.fail(f'{name}: {err}')
            return None
        return exe

    def run(self, exe, argv, env=None):
        r = common.run([exe] + argv, env=env)
        if r.returncode != 0:
            self.fail(f'{os.path.basename(exe)} {" ".join(argv)}: {r.stderr}')
        return r.stdout

    def data(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal([9, 3, 8, 6]).astype(np.float32)
        t = rng.standard_normal([9, 3]).astype(np.float32)
        nhwc = np.moveaxis(x, 1, -1)
        files = {'p_in': x.reshape(9, -1), 'q_in': nhwc.reshape(9, -1),
                 'p_train': np.concatenate([x.reshape(9, -1), t], 1),
                 'q_train': np.concatenate([nhwc.reshape(9, -1), t], 1)}
        for name, rows in files.items():
            with open(self.path(name + '.txt'), 'w') as f:
                f.write(lines(rows))

    def same(self, what, a, b):
        if a != b or not a:
            self.fail(f'{what}: with permute and without differ:\n{a[:300]}\n{b[:300]}')
            return False
        return True

    def predict_and_train(self):
        self.data()
        w = self.path('w.safetensors')
        model = self.path('plain_init.cnn')
        with open(model, 'w') as f:
            f.write(PLAIN)
        common.run(['/usr/bin/python3', self.args.oracle, 'init', model, '--seed', '3', '--out', w])
        p, q = self.build(PERMUTED, 'permuted'), self.build(PLAIN, 'plain')
        if not p or not q:
            return
        flags = common.cpu_flags()
        runs = 0
        for isa in FLOAT_CLONES:
            missing = common.missing_for(isa, flags)
            if missing:
                print(f'SKIP the {isa} clone: this CPU lacks {" ".join(missing)}')
                continue
            env = dict(os.environ, CNNGEN_ISA=isa)
            runs += self.same(f'predict ({isa})',
                              self.run(p, ['predict', '--weights', w, self.path('p_in.txt')], env),
                              self.run(q, ['predict', '--weights', w, self.path('q_in.txt')], env))
        if common.has_llvm(self.args.cnngen):
            po, qo = self.build(PERMUTED, 'permuted_obj', obj=True), \
                self.build(PLAIN, 'plain_obj', obj=True)
            if po and qo:
                runs += self.same('predict (LLVM object)',
                                  self.run(po, ['predict', '--weights', w, self.path('p_in.txt')]),
                                  self.run(qo, ['predict', '--weights', w, self.path('q_in.txt')]))
        saved = []
        for exe, data in ((p, 'p_train'), (q, 'q_train')):
            out = self.path(os.path.basename(exe) + '_trained.safetensors')
            self.run(exe, ['train', '--data', self.path(data + '.txt'), '--init', w, '--save', out])
            saved.append(open(out, 'rb').read() if os.path.exists(out) else b'')
        runs += self.same('training (the weights after two epochs)', saved[0], saved[1])
        runs += self.int8(p, q, w)
        print(f'permute: {runs} runs with the permute equal, bit for bit, to the model without it')

    def int8(self, p, q, w):
        """The int8 predictors, each calibrated on its own order of the data."""
        outputs = []
        for exe, text, data, name in ((p, PERMUTED, 'p', 'permuted_q'), (q, PLAIN, 'q', 'plain_q')):
            ranges = self.path(name + '.ranges.safetensors')
            self.run(exe, ['calibrate', '--data', self.path(data + '_train.txt'), '--weights', w,
                           '--save', ranges])
            qexe = self.build(text, name, ['--weights', w, '--quantize', ranges, '--no-train'])
            outputs.append(self.run(qexe, ['predict', '--raw', self.path(data + '_in.txt')])
                           if qexe else '')
        return self.same('the int8 predictor (predict --raw)', outputs[0], outputs[1])

    def gradients(self):
        for k, text in enumerate(INSIDE):
            d = self.path(f'grad{k}')
            os.makedirs(d)
            model = os.path.join(d, 'g.cnn')
            with open(model, 'w') as f:
                f.write(text)
            gen = common.run([self.args.cnngen, model, '--prefix', 'm', '-o', os.path.join(d, 'm.c')])
            cc = common.run([self.args.cc, '-std=c99', '-O1', '-I', d, '-I', self.args.runtime_include,
                             os.path.join(HERE, '..', 'helpers', 'grad_check.c'),
                             os.path.join(d, 'm.c'),
                             os.path.join(self.args.runtime_lib, 'libcnnrt.a'), '-lz', '-lm', '-o',
                             os.path.join(d, 'check')] + common.sanitizer_flags(self.args))
            if gen.returncode or cc.returncode:
                self.fail(f'gradient model {k}: {gen.stderr}{cc.stderr}')
                continue
            r = common.run([os.path.join(d, 'check'), 'real'])
            if r.returncode != 0:
                self.fail(f'gradient model {k} ({text.splitlines()[3]}): {r.stdout}{r.stderr}')
            else:
                print(f'gradients through {text.splitlines()[3]}: {r.stdout.strip()}')

    def onnx(self):
        """Exported as a Transpose: onnx.checker passes, PyTorch running the
        ONNX graph (tests/reference/onnx_torch.py) gives the C program's
        outputs, and the import gives back the same model, byte for byte."""
        if 'ONNX: import and export' not in common.run([self.args.cnngen, '--version']).stdout:
            print('SKIP onnx: this cnngen was built without ONNX')
            return
        sys.path.insert(0, os.path.join(HERE, '..', 'reference'))
        import onnx
        import onnx_torch
        for k, text in enumerate([PERMUTED] + INSIDE):
            model = self.path(f'x{k}.cnn')
            with open(model, 'w') as f:
                f.write(text.replace('model m\n', 'model x\n').replace('model p\n', 'model x\n'))
            exported, back = self.path(f'x{k}.onnx'), self.path(f'back{k}/x.cnn')
            again = self.path(f'back{k}/again.onnx')
            os.makedirs(os.path.dirname(back))
            steps = [[model, '--emit=onnx', '-o', exported], ['import', exported, '-o', back],
                     [back, '--weights', back[:-4] + '.safetensors', '--emit=onnx', '-o', again]]
            if any(common.run([self.args.cnngen] + s).returncode for s in steps):
                self.fail(f'model {k}: export, import or export again failed')
                continue
            if open(exported, 'rb').read() != open(again, 'rb').read():
                self.fail(f'model {k}: exported, imported and exported again, the bytes differ')
            m = onnx.load(exported)
            onnx.checker.check_model(m, full_check=True)
            shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
            x = np.random.default_rng(k).standard_normal([3] + shape).astype(np.float32)
            exe = self.build(open(model).read(), f'x{k}_program', ['--no-train'])
            if not exe:
                continue
            rows = np.moveaxis(x, 1, -1) if x.ndim > 2 else x
            with open(self.path('x_in.txt'), 'w') as f:
                f.write(lines(rows.reshape(3, -1)))
            got = np.array([[float(v) for v in line.split(',')]
                            for line in self.run(exe, ['predict', self.path('x_in.txt')]).split()])
            y = onnx_torch.run(m, {'input': x})[0]
            y = np.moveaxis(y, 1, -1) if y.ndim > 2 else y
            if np.abs(got - y.reshape(3, -1)).max() > 1e-5:
                self.fail(f'model {k}: the ONNX graph in PyTorch differs from the C program')
        print(f'onnx: {1 + len(INSIDE)} models with a permute exported, checked, run in PyTorch '
              f'and imported back to the same bytes')

    def errors(self):
        for layer, message in BAD:
            model = self.path('bad.cnn')
            with open(model, 'w') as f:
                f.write(f'model b\ninput [3, 8, 6]\n{layer}\n')
            r = common.run([self.args.cnngen, model, '--check'])
            if r.returncode != 1 or message not in r.stderr:
                self.fail(f'{layer}: exit {r.returncode}, wanted "{message}":\n{r.stderr}')
        print(f'errors: {len(BAD)} bad dims, each with its message')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    common.add_build_arguments(ap, '-O1')
    args = ap.parse_args()
    args.isa = 'auto'
    tmp = tempfile.mkdtemp(prefix='cnngen_permute_')
    suite = Suite(args, tmp)
    try:
        suite.predict_and_train()
        suite.gradients()
        suite.onnx()
        suite.errors()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS' if suite.failures == 0 else f'{suite.failures} FAILED')
    return 1 if suite.failures else 0


if __name__ == '__main__':
    sys.exit(main())
