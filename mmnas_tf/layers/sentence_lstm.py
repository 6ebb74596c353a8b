"""A one-layer LSTM with PyTorch's parameterisation (two bias vectors)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmnas_tf")
class SentenceLSTM(keras.layers.Layer):
    """Unidirectional one-layer LSTM over every position, padding included (the original runs
    ``nn.LSTM`` on the padded batch without packing).

    Gate order i, f, g, o (PyTorch's, the same as Keras's i, f, c, o). It keeps PyTorch's two bias
    vectors (``bias_ih``, ``bias_hh``) so imported checkpoints and parameter counts match the
    original exactly; their sum is what ``keras.layers.LSTM`` would hold as its single bias.

    Args:
      units: int, hidden width d.

    Call: ``SentenceLSTM(512)(x)``, ``x`` [B, T, e] with a static T -> all hidden states [B, T, d].
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        e, u = input_shape[-1], self.units
        self.kernel = self.add_weight(name="kernel", shape=(e, 4 * u), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(u, 4 * u), initializer="orthogonal"
        )
        self.bias_ih = self.add_weight(name="bias_ih", shape=(4 * u,), initializer="zeros")
        self.bias_hh = self.add_weight(name="bias_hh", shape=(4 * u,), initializer="zeros")

    def call(self, x):
        steps = x.shape[1]
        if steps is None:
            raise ValueError("SentenceLSTM needs a static sequence length (pad text to max_tokens)")
        u = self.units
        # One big input matmul for all steps; only the recurrent matmul stays in the loop.
        # Under a mixed policy the matmuls run in the compute dtype and the gates and the cell
        # state in float32 (c sums over every step); h is cast back for the next matmul.
        z_in = ops.cast(ops.matmul(x, self.kernel), "float32")
        z_in = z_in + ops.cast(self.bias_ih + self.bias_hh, "float32")
        batch = ops.shape(x)[0]
        h = ops.zeros((batch, u), dtype=x.dtype)
        c = ops.zeros((batch, u), dtype="float32")
        outputs = []
        for t in range(steps):
            z = z_in[:, t] + ops.cast(ops.matmul(h, self.recurrent_kernel), "float32")
            i = ops.sigmoid(z[:, :u])
            f = ops.sigmoid(z[:, u : 2 * u])
            g = ops.tanh(z[:, 2 * u : 3 * u])
            o = ops.sigmoid(z[:, 3 * u :])
            c = f * c + i * g
            h = ops.cast(o * ops.tanh(c), x.dtype)
            outputs.append(h)
        return ops.stack(outputs, axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
