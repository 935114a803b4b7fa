"""ONNX in and out (docs/onnx.md), against PyTorch and ONNX's own tools.

  export     every model of the examples and the gradient check, with the
             oracle's initial weights: --emit=onnx passes onnx.checker (with
             shape inference), and the ONNX graph run in PyTorch operator by
             operator (tests/reference/onnx_torch.py) gives the oracle's
             outputs (1e-5).
  roundtrip  each exported model imported back: exported again, the bytes
             are the same; and a model trained by cnngen's own program,
             exported and imported, predicts the same bits in C.
  pytorch    PyTorch models of every supported kind (tests/reference/
             onnx_models.py), exported by torch.onnx.export, imported,
             compiled to C and run: within 1e-5 of PyTorch.
  errors     a model with several unsupported nodes: each named with its
             operator and attribute, in one run, exit 1, nothing written;
             hostile files: a clear error, never a crash.
  nodetests  Debian's libonnx-testdata node tests: every case the importer
             takes runs through the generated predictor against the
             suite's expected outputs (1e-5); the count is reported, and
             the others with the reason each is not expressible.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'reference'))
sys.path.insert(0, HERE)
import e2e_common as common  # noqa: E402

NODE_TESTS = '/usr/share/libonnx-testdata/data/node'
TOLERANCE = 1e-5
# Operators whose inputs after the first are weights or settings (scales,
# ratio, shape, axes): constants in an exported model.
PARAMETER_OPS = {'Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'PRelu',
                 'InstanceNormalization', 'LayerNormalization', 'Resize', 'Upsample',
                 'Dropout', 'Reshape', 'Unsqueeze'}


def fail(msg):
    print('FAIL', msg)
    return 1


def close(got, want):
    """Within TOLERANCE, relative to the size of the numbers."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return got.shape == want.shape and \
        bool(np.all(np.abs(got - want) <= TOLERANCE * np.maximum(1, np.abs(want))))


def rows(array):
    """A [N, ...] array as predict's input lines."""
    return '\n'.join(' '.join('%.9g' % v for v in r.ravel()) for r in array) + '\n'


def channels_last(array):
    """ONNX's [N, C, spatial...] as cnngen's [N, spatial..., C]."""
    return np.moveaxis(array, 1, -1) if array.ndim > 2 else array


def layouts(cnn_text, x, y):
    """An ONNX input and output as an imported model reads and gives them:
    as they are, or with the channels moved last, as its first comment
    says (`# Input: ONNX's 'x', in this order.`)."""
    x_in = x if "# Input: ONNX's" in cnn_text and \
        cnn_text.split("# Input: ONNX's", 1)[1].split('\n', 1)[0].endswith('in this order.') \
        else channels_last(x)
    out_line = cnn_text.split("# Output: ONNX's", 1)[1].split('\n', 1)[0]
    y_out = y if out_line.endswith('in this order.') else channels_last(y)
    return x_in, y_out.reshape(len(y), -1)


def parse_outputs(text):
    return np.array([[float(v) for v in line.replace(',', ' ').split()]
                     for line in text.strip().splitlines()])


def frozen_inputs(model, out):
    """A node test's model with its parameters as initializers, from its
    first test data set: the suite passes them (Conv's W, BatchNormalization's
    statistics, Gemm's B, Resize's scales) as graph inputs, where an
    exported model holds them as constants."""
    import onnx
    m = onnx.load(model)
    data = os.path.join(os.path.dirname(model), 'test_data_set_0')
    inputs = [i for i in m.graph.input
              if i.name not in {t.name for t in m.graph.initializer}]
    weights = {n.input[k] for n in m.graph.node if n.op_type in PARAMETER_OPS
               for k in range(1, len(n.input))}
    for k, value in enumerate(inputs[1:], start=1):
        if value.name not in weights:
            continue
        t = onnx.TensorProto()
        path = os.path.join(data, f'input_{k}.pb')
        if not os.path.exists(path):
            return model
        t.ParseFromString(open(path, 'rb').read())
        t.name = value.name
        m.graph.initializer.append(t)
        m.graph.input.remove(value)
    onnx.save(m, out)
    return out


class Suite:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp

    def path(self, name):
        return os.path.join(self.tmp, name)

    def cnngen(self, *argv):
        return common.run([self.args.cnngen] + list(argv))

    def predict_c(self, model, weights, inputs, tag):
        """Build MODEL with its weights baked in, predict on inputs
        (channels-last rows): the output array, or an error string."""
        exe = self.path(tag)
        err = common.build_with_runtime(self.args, model, exe + '.c', exe,
                                        ['--weights', weights, '--no-train'])
        if err:
            return err
        out = common.run([exe, 'predict', '-'], input=rows(inputs))
        if out.returncode != 0:
            return f'predict failed: {out.stderr}'
        return parse_outputs(out.stdout)

    # ---- export ---------------------------------------------------------
    def export(self, models):
        import onnx
        import onnx_torch
        failures, lines, jobs = 0, [], []
        for k, model in enumerate(models):
            w = self.path(f'w{k}.safetensors')
            lines.append(f'{self.path(f"i{k}.out")} {self.path(f"i{k}.err")} init {model} '
                         f'--seed {k + 1} --out {w}')
        common.oracle_batch(self.args.oracle, lines)
        predict = []
        for k, model in enumerate(models):
            w, o = self.path(f'w{k}.safetensors'), self.path(f'm{k}.onnx')
            gen = self.cnngen(model, '--weights', w, '--emit=onnx', '-o', o)
            if gen.returncode != 0:
                failures += fail(f'{model}: --emit=onnx: {gen.stderr}')
                continue
            m = onnx.load(o)
            try:
                onnx.checker.check_model(m, full_check=True)
            except Exception as e:  # the checker's own exceptions
                failures += fail(f'{model}: onnx.checker: {e}')
                continue
            shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
            x = np.random.default_rng(k).standard_normal([3] + shape).astype(np.float32)
            with open(self.path(f'x{k}.txt'), 'w') as f:
                f.write(rows(channels_last(x)))
            predict.append(f'{self.path(f"p{k}.out")} {self.path(f"p{k}.err")} predict {model} '
                           f'--weights {w} {self.path(f"x{k}.txt")}')
            jobs.append((k, model, m, x))
        common.oracle_batch(self.args.oracle, predict)
        for k, model, m, x in jobs:
            want = parse_outputs(open(self.path(f'p{k}.out')).read())
            got = channels_last(onnx_torch.run(m, {m.graph.input[0].name: x})[0])
            if not close(got.reshape(len(x), -1), want):
                failures += fail(f'{model}: the ONNX model in PyTorch differs from the oracle by '
                                 f'{np.abs(got.reshape(len(x), -1) - want).max():.3g}')
        print(f'export: {len(jobs) - failures} of {len(models)} models pass onnx.checker and '
              f'compute the oracle\'s outputs in PyTorch')
        return failures

    # ---- round trip -----------------------------------------------------
    def roundtrip(self, models):
        """Needs export's files (m{k}.onnx, w{k}.safetensors)."""
        failures = 0
        for k, model in enumerate(models):
            name = json.loads(self.cnngen(model, '--summary', '--json').stdout)['model']
            d = self.path(f'rt{k}')
            os.makedirs(d, exist_ok=True)
            cnn = os.path.join(d, name + '.cnn')
            imp = self.cnngen('import', self.path(f'm{k}.onnx'), '-o', cnn)
            if imp.returncode != 0:
                failures += fail(f'{model}: import of its export: {imp.stderr}')
                continue
            same = self.same_model(model, cnn, self.path(f'w{k}.safetensors'))
            if same:
                failures += fail(f'{model}: imported back, {same}')
                continue
            again = os.path.join(d, 'again.onnx')
            gen = self.cnngen(cnn, '--weights', cnn[:-4] + '.safetensors', '--emit=onnx',
                              '-o', again)
            if gen.returncode != 0 or open(again, 'rb').read() != \
                    open(self.path(f'm{k}.onnx'), 'rb').read():
                failures += fail(f'{model}: exported, imported and exported again, the ONNX '
                                 f'bytes differ {gen.stderr}')
        print(f'roundtrip: {len(models) - failures} of {len(models)} models come back with the '
              f'same layers, names, shapes and weights, and export the same bytes again')
        return failures

    def same_model(self, model, imported, weights):
        """None, or how the imported model differs from the original: each
        layer's kind, name, output shape and parameter count, and each
        weights tensor bit for bit (ONNX does not hold trainable=false, nor
        a train block: those are not compared)."""
        def layers(path):
            summary = json.loads(self.cnngen(path, '--summary', '--json').stdout)
            return [(l['layer'], l['name'], l['output_shape'], l['params'])
                    for l in summary['layers']]
        a, b = layers(model), layers(imported)
        if a != b:
            return f'its layers differ:\n  {a}\n  {b}'
        original = common.read_tensors(weights)
        back = common.read_tensors(imported[:-4] + '.safetensors')
        if list(original) != list(back):
            return f'its tensors differ: {list(original)} against {list(back)}'
        for name, (shape, values) in original.items():
            if back[name][0] != shape or np.asarray(back[name][1], np.float32).tobytes() != \
                    np.asarray(values, np.float32).tobytes():
                return f'tensor {name} differs'
        return None

    def trained_roundtrip(self, model):
        """Trained by its generated program, exported, imported: the same bits."""
        summary = json.loads(self.cnngen(model, '--summary', '--json').stdout)
        import random
        data = self.path('train.csv')
        common.write_train_data(data, summary, random.Random(7))
        exe = self.path('trainer')
        err = common.build_with_runtime(self.args, model, exe + '.c', exe)
        if err:
            return fail(f'{model}: {err}')
        w = self.path('trained.safetensors')
        tr = common.run([exe, 'train', '--data', data, '--save', w])
        if tr.returncode != 0:
            return fail(f'{model}: train: {tr.stderr}')
        onnx_path, cnn = self.path('trained.onnx'), self.path('trained_back.cnn')
        steps = [self.cnngen(model, '--weights', w, '--emit=onnx', '-o', onnx_path),
                 self.cnngen('import', onnx_path, '-o', cnn)]
        for s in steps:
            if s.returncode != 0:
                return fail(f'{model}: {s.stderr}')
        x = np.random.default_rng(3).uniform(-1, 1, [5, int(np.prod(summary['input']))])
        a = self.predict_c(model, w, x, 'orig')
        b = self.predict_c(cnn, cnn[:-4] + '.safetensors', x, 'back')
        if isinstance(a, str) or isinstance(b, str):
            return fail(f'{model}: {a if isinstance(a, str) else b}')
        if not np.array_equal(a, b):
            return fail(f'{model}: trained, exported and imported, it predicts differently '
                        f'(by {np.abs(a - b).max():.3g})')
        print(f'trained roundtrip: {os.path.basename(model)} trained by its program, exported '
              f'and imported, predicts the same bits on {len(x)} samples')
        return 0

    # ---- PyTorch models -------------------------------------------------
    def pytorch(self):
        import onnx_models
        failures, count = 0, 0
        for (name, x, y, cnn_expect), layout in [(m, layout) for m in onnx_models.export_all(self.tmp)
                                                 for layout in ('nhwc', 'nchw')]:
            count += 1
            o = self.path(f'{name}.onnx')
            cnn = self.path(f'{name}_{layout}.cnn')
            imp = self.cnngen('import', o, '--input-layout', layout, '-o', cnn)
            name = f'{name} (--input-layout {layout})'
            if imp.returncode != 0:
                failures += fail(f'pytorch {name}: import: {imp.stderr}')
                continue
            text = open(cnn).read()
            if layout == 'nchw':
                # ONNX's input as it is, then cnngen's order
                cnn_expect = [s for s in cnn_expect if not s.startswith('input [')] + \
                    ["# Input: ONNX's 'x', in this order."]
            missing = [s for s in cnn_expect if s not in text]
            if missing:
                failures += fail(f'pytorch {name}: the .cnn lacks {missing}:\n{text}')
                continue
            x_in, y_want = layouts(text, x, y)
            got = self.predict_c(cnn, cnn[:-4] + '.safetensors', x_in, name)
            if isinstance(got, str):
                failures += fail(f'pytorch {name}: {got}')
            elif not close(got, y_want):
                failures += fail(f'pytorch {name}: differs from PyTorch by '
                                 f'{np.abs(got - y_want).max():.3g}')
        print(f'pytorch: {count - failures} of {count} imports of PyTorch models (each input '
              f'layout) compiled and within {TOLERANCE} of PyTorch')
        return failures

    # ---- errors and hostile files --------------------------------------
    def expect_error(self, what, path, needles, status=1):
        out = self.path('err_out.cnn')
        for leftover in (out, out[:-4] + '.safetensors'):
            if os.path.exists(leftover):
                os.remove(leftover)
        r = self.cnngen('import', path, '-o', out)
        problems = []
        if r.returncode != status:
            problems.append(f'exit {r.returncode}, not {status}')
        if r.returncode < 0 or 'Sanitizer' in r.stderr or 'runtime error' in r.stderr:
            problems.append('crashed')
        problems += [f'no "{n}" in the message' for n in needles if n not in r.stderr]
        if os.path.exists(out) or os.path.exists(out[:-4] + '.safetensors'):
            problems.append('wrote files')
        if problems:
            return fail(f'errors {what}: {"; ".join(problems)}:\n{r.stderr}')
        return 0

    def errors(self):
        import onnx_models
        failures = 0
        cases = onnx_models.bad_models(self.tmp)
        for what, path, needles in cases:
            failures += self.expect_error(what, path, needles)
        print(f'errors: {len(cases) - failures} of {len(cases)} bad or hostile files rejected '
              f'with their message, nothing written')
        # a producer name that would end the .cnn's first comment early
        r = self.cnngen('import', onnx_models.hostile_producer(self.tmp), '-o',
                        self.path('producer.cnn'))
        if r.returncode != 0 or '(written by evil?model other?input [1]??' not in \
                open(self.path('producer.cnn')).read():
            failures += fail(f'a producer name with newlines: exit {r.returncode} {r.stderr}')
        cnn = self.path('long.cnn')
        r = self.cnngen('import', onnx_models.long_chain(self.tmp), '-o', cnn)
        if r.returncode != 0 or open(cnn).read().count(': relu\n') != 3000:
            failures += fail(f'a chain of 3000 ReLUs named alike: exit {r.returncode} {r.stderr}')
        return failures

    # ---- Debian's ONNX node tests --------------------------------------
    def nodetests(self):
        import onnx
        from onnx import numpy_helper
        if not os.path.isdir(NODE_TESTS):
            print(f'SKIP nodetests: {NODE_TESTS} is missing (Debian\'s libonnx-testdata)')
            return 0
        cases = sorted(glob.glob(os.path.join(NODE_TESTS, '*', 'model.onnx')))
        passed, failures, refused = [], 0, {}
        for model in cases:
            case = os.path.basename(os.path.dirname(model))
            cnn = self.path(f'node_{case}.cnn')
            imp = self.cnngen('import', frozen_inputs(model, self.path(f'{case}.onnx')), '-o', cnn)
            if imp.returncode != 0:
                if imp.returncode not in (1, 2) or 'Sanitizer' in imp.stderr:
                    failures += fail(f'node test {case}: import crashed:\n{imp.stderr}')
                    continue
                reason = imp.stderr.strip().splitlines()[0].split('error: ', 1)[-1]
                refused[case] = reason
                continue
            sets = sorted(glob.glob(os.path.join(os.path.dirname(model), 'test_data_set_*')))
            ok = True
            for s in sets:
                t = onnx.TensorProto()
                t.ParseFromString(open(os.path.join(s, 'input_0.pb'), 'rb').read())
                x = numpy_helper.to_array(t).astype(np.float32)
                t = onnx.TensorProto()
                t.ParseFromString(open(os.path.join(s, 'output_0.pb'), 'rb').read())
                y = numpy_helper.to_array(t)
                x_in, y_want = layouts(open(cnn).read(), x, y)
                got = self.predict_c(cnn, cnn[:-4] + '.safetensors', x_in, 'node')
                if isinstance(got, str) or not close(got, y_want):
                    failures += fail(f'node test {case} ({os.path.basename(s)}): '
                                     f'{got if isinstance(got, str) else "outputs differ"}')
                    ok = False
                    break
            if ok:
                passed.append(case)
        print(f'nodetests: {len(passed)} of {len(cases)} cases imported and pass: '
              f'{" ".join(passed)}')
        print(f'nodetests: {len(refused)} refused, each with its reason:')
        for case, reason in refused.items():
            print(f'  {case}: {reason}')
        return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    common.add_build_arguments(ap, '-O1')
    ap.add_argument('--only', action='append',
                    choices=['export', 'roundtrip', 'pytorch', 'errors', 'nodetests'])
    ap.add_argument('models', nargs='*')
    args = ap.parse_args()
    if 'ONNX: import and export' not in common.run([args.cnngen, '--version']).stdout:
        print('SKIP: this cnngen was built without ONNX (CNNGEN_ONNX)')
        return common.SKIP
    parts = args.only or ['export', 'roundtrip', 'pytorch', 'errors', 'nodetests']
    models = common.model_files(args.models)
    tmp = tempfile.mkdtemp(prefix='cnngen_onnx_')
    suite = Suite(args, tmp)
    failures = 0
    try:
        if 'export' in parts or 'roundtrip' in parts:
            failures += suite.export(models)
        if 'roundtrip' in parts:
            failures += suite.roundtrip(models)
            failures += suite.trained_roundtrip(models[0])
        if 'pytorch' in parts:
            failures += suite.pytorch()
        if 'errors' in parts:
            failures += suite.errors()
        if 'nodetests' in parts:
            failures += suite.nodetests()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS' if failures == 0 else f'{failures} FAILED')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
