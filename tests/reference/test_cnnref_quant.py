"""Self-tests of cnnref_quant.py, the int8 reference: its fixed-point
arithmetic against values worked by hand from TensorFlow Lite's
definitions, its scales, and its int8 models against the float ones.

    cd tests/reference && /usr/bin/python3 -m unittest -q test_cnnref_quant
"""
import io
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnref  # noqa: E402
import cnnref_quant as q  # noqa: E402
import cnnref_train  # noqa: E402

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def ints(*values):
    return np.array(values, dtype=np.int64)


class FixedPoint(unittest.TestCase):
    def test_round_half_away_from_zero(self):
        self.assertEqual(list(q.round_half_away([0.5, 1.5, 2.5, -0.5, -2.5, 0.49])),
                         [1, 2, 3, -1, -3, 0])

    def test_quantize_multiplier(self):
        self.assertEqual(q.quantize_multiplier(0.5), (1 << 30, 0))
        self.assertEqual(q.quantize_multiplier(1.0), (1 << 30, 1))
        self.assertEqual(q.quantize_multiplier(0.25), (1 << 30, -1))
        self.assertEqual(q.quantize_multiplier(0.75), (3 << 29, 0))
        # 1 - 2^-40 rounds up to 2^31, which becomes 2^30 and one more shift
        self.assertEqual(q.quantize_multiplier(1 - 2 ** -40), (1 << 30, 1))
        self.assertEqual(q.quantize_multiplier(2 ** -40), (0, 0))   # below 2^-31: zero
        self.assertEqual(q.quantize_multiplier(0.0), (0, 0))

    def test_doubling_high_mul(self):
        srdhm = q.saturating_rounding_doubling_high_mul
        self.assertEqual(int(srdhm(ints(I32_MIN), I32_MIN)[0]), I32_MAX)
        self.assertEqual(int(srdhm(ints(1 << 30), 1 << 30)[0]), 1 << 29)
        # 3 * 2^30 * 2 / 2^32 = 1.5: up to 2; -1.5: to -1 (ties toward +infinity)
        self.assertEqual(list(srdhm(ints(3, -3), 1 << 30)), [2, -1])

    def test_rounding_divide_by_power_of_two(self):
        rdbpot = q.rounding_divide_by_pot
        self.assertEqual(list(rdbpot(ints(5, -5, 7, 6, -6, -7, 4), 1)), [3, -3, 4, 3, -3, -4, 2])
        self.assertEqual(list(rdbpot(ints(7, 6, -6, 5, -5), 2)), [2, 2, -2, 1, -1])

    def test_multiply_by_quantized_multiplier(self):
        mbqm = q.multiply_by_quantized_multiplier
        self.assertEqual(list(mbqm(ints(100, -100, 3), 1 << 30, 0)), [50, -50, 2])
        self.assertEqual(list(mbqm(ints(100), 1 << 30, -2)), [13])      # 12.5 up
        self.assertEqual(list(mbqm(ints(100), 1 << 30, 3)), [400])      # a left shift
        self.assertEqual(list(mbqm(ints(1 << 30), 1 << 30, 3)), [I32_MAX // 2 + 1])   # saturates

    def test_c_division_truncates(self):
        self.assertEqual(list(q.c_divide(ints(7, -7, 7, -7), ints(2, 2, -2, -2))), [3, -3, -3, 3])


class Scales(unittest.TestCase):
    def test_activation_params(self):
        self.assertEqual(q.activation_params(0, 1), (1 / 255, -128))
        scale, zero = q.activation_params(-1, 1)
        self.assertEqual((scale, zero), (2 / 255, -1))          # -128 + 127.5 = -0.5: -1
        self.assertEqual(q.activation_params(0.5, 2)[1], -128)  # widened to hold 0
        self.assertEqual(q.activation_params(-2, -0.5)[1], 127)
        self.assertEqual(q.activation_params(0, 0), (1.0, 0))

    def test_weight_params_per_channel(self):
        kernel, scales = q.weight_params(np.array([[1, -0.5], [0.25, 2]]), False)
        self.assertEqual(kernel.tolist(), [[127, -32], [32, 127]])
        self.assertEqual(list(scales), [1 / 127, 2 / 127])
        _, scales = q.weight_params(np.zeros((3, 2)), False)
        self.assertEqual(list(scales), [1.0, 1.0])

    def test_depthwise_channels(self):
        # [kh, kw, cin=2, multiplier=2]: channel c*2 + j, four scales
        kernel = np.zeros((1, 1, 2, 2))
        kernel[0, 0] = [[1, 2], [3, 4]]
        _, scales = q.weight_params(kernel, True)
        self.assertEqual(list(scales * 127), [1, 2, 3, 4])


class Models(unittest.TestCase):
    """The int8 models against the float ones: each tensor within a few
    int8 steps, on the examples with random weights and inputs."""

    def int8_against_float(self, path, steps):
        model = cnnref.load_model(path, io.StringIO())
        P = cnnref.to_torch(cnnref.initial_weights(model, 5))
        rng = np.random.default_rng(3)
        x = rng.uniform(-1, 1, (64,) + model.input_shape).astype(np.float32)
        values = [y.numpy() for y in cnnref_train.layer_outputs(model, P, torch.from_numpy(x))]
        ranges = {name: (v.min(), v.max()) for name, v in
                  zip(['input'] + [layer.name for layer in model.layers], values)}
        plan = q.QuantizedModel(model, P, ranges)
        outputs = plan.run(plan.quantize_input(x))
        for k, (ours, exact) in enumerate(zip(outputs, values)):
            if plan.head is not None and k > plan.head:
                break
            scale, zero = plan.nodes[k]
            error = np.abs((ours - zero) * scale - exact).max() / scale
            self.assertLessEqual(error, steps, f'{path}: node {k}')
        y = plan.to_float(outputs[-1]).reshape(len(x), -1)
        return np.abs(y - values[-1].reshape(len(x), -1)).max()

    def test_examples(self):
        examples = os.path.join(os.path.dirname(__file__), '..', '..', 'examples')
        for name in ('lenet', 'edges', 'residual', 'series_filters', 'seed42', 'depthwise'):
            with self.subTest(name):
                self.assertLess(self.int8_against_float(os.path.join(examples, name + '.cnn'), 4),
                                0.05)

    def test_int8_models(self):
        here = os.path.join(os.path.dirname(__file__), '..', 'int8')
        for name in ('pools_head', 'branches', 'clips', 'standalone'):
            with self.subTest(name):
                self.assertLess(self.int8_against_float(os.path.join(here, name + '.cnn'), 4),
                                0.05)

    def test_unquantizable_layer_is_an_error(self):
        with tempfile.NamedTemporaryFile('w', suffix='.cnn', delete=False) as f:
            f.write('model m\ninput [4]\ndense(3, activation=tanh)\ndense(2)\n')
        try:
            model = cnnref.load_model(f.name, io.StringIO())
            P = cnnref.to_torch(cnnref.initial_weights(model, 1))
            ranges = {name: (-1.0, 1.0) for name in ('input', 'dense_1', 'dense_2')}
            with self.assertRaises(cnnref.Fail) as caught:
                q.QuantizedModel(model, P, ranges)
            self.assertEqual(str(caught.exception.args[0]),
                             f"{f.name}:3:1: error: 'dense_1' cannot be quantized: its activation "
                             'tanh is not a clamp (int8 has relu and linear; sigmoid, tanh and '
                             "softmax only at the model's end)")
        finally:
            os.unlink(f.name)


if __name__ == '__main__':
    unittest.main()
