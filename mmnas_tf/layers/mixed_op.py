"""MixedOp: a supernet block slot holding every candidate op and the architecture logits theta."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR
from mmnas_tf.layers import make_op

#: Name of the architecture-logits weight; the search model partitions variables by it.
ARCH_LOGITS_NAME = "arch_logits"


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MixedOp(keras.layers.Layer):
    """A searchable block slot (paper Sec. 4): every candidate op of the pool with its own weights,
    plus architecture logits theta [P] (a trainable weight named ``arch_logits`` that the search
    model gives to the architecture optimizer only).

    Every candidate has the op call interface ``op(y, context, training)``, so ops with different
    inputs (SA: the stream, GA: ``context["guide"]``, RSA: ``context["relation"]``) share one
    slot.

    Args:
      candidates: tuple of op names (e.g. ``("SA", "GA", "RSA", "FFN")``), at least two.
      hidden_size: int, width d. num_heads: int, heads h. ffn_size: int, FFN inner width.
      dropout: float, dropout rate of every candidate.
      dropout_generator: str, their mask generator (``layers.dropout``).
      initial_logits: optional list of P floats, the initial theta (default zeros = uniform).

    Call: ``mixed(y, context, training=None, choice=None, all_paths=False)``:
      - ``choice=None``: the softmax(theta)-weighted sum of every candidate (DARTS-style; used to
        build every candidate's weights and for inspection, not by the estimators);
      - ``choice`` an int scalar k: ONLY candidate k runs (``switch`` on k: one branch executes in
        a ``tf.function`` and under XLA);
      - ``choice`` a float gate vector [P] (hard one-hot forward with straight-through gradient):
        only candidate k = argmax(gate) runs and its output is multiplied by ``gate[k]`` (1.0
        forward, the gradient flows to theta through the gate);
      - ``all_paths=True`` with a gate vector: every candidate runs, outputs of the candidates
        other than k are stop-gradient'ed, and the output is ``sum_j gate_j o_j``, so
        ``dL/dgate_j = <o_j, dL/dout>`` for every j (ProxylessNAS binary gates;
        docs/original_behaviour.md, "Search"). Candidate k runs forward and backward (``switch``),
        the others forward only (each under a ``cond`` on j != k): no backward pass through a
        candidate whose output only meets the gradient in an inner product.

    Attribute ``all_paths_form`` (read when a call is traced): ``"forward_only"`` (default, above)
    or ``"where"``, the reference form ``sum_j gate_j where(j == k, o_j, stop_gradient(o_j))``
    whose graph runs every candidate's backward pass (on zeros for j != k): the same value and
    gradients, kept for tests and benchmarks (``SearchModel.set_all_paths_form``).

    Example::

        mixed = MixedOp(("SA", "FFN"), hidden_size=32, num_heads=4, ffn_size=64)
        y = mixed(y, {"mask": mask}, choice=1)  # runs FFN only
    """

    def __init__(
        self,
        candidates,
        hidden_size: int,
        num_heads: int,
        ffn_size: int,
        dropout: float = 0.1,
        initial_logits=None,
        dropout_generator: str = DEFAULT_DROPOUT_GENERATOR,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.candidates = tuple(candidates)
        if len(self.candidates) < 2:
            raise ValueError(f"a MixedOp needs at least two candidate ops, got {self.candidates}")
        if initial_logits is not None and len(initial_logits) != len(self.candidates):
            raise ValueError(
                f"initial_logits has {len(initial_logits)} values for {len(self.candidates)} ops"
            )
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.ffn_size = ffn_size
        self.dropout = dropout
        self.dropout_generator = dropout_generator
        self.initial_logits = None if initial_logits is None else list(initial_logits)
        self.candidate_ops = [
            make_op(
                op,
                hidden_size,
                num_heads,
                ffn_size,
                dropout,
                name=op,
                dropout_generator=dropout_generator,
            )
            for op in self.candidates
        ]
        self.all_paths_form = "forward_only"

    def build(self, y_shape, context_shape=None):
        for op in self.candidate_ops:
            op.build(y_shape, context_shape or {})
        initializer = (
            keras.initializers.Constant(self.initial_logits)
            if self.initial_logits is not None
            else "zeros"
        )
        self.arch_logits = self.add_weight(
            shape=(len(self.candidates),), initializer=initializer, name=ARCH_LOGITS_NAME
        )

    def probabilities(self):
        """softmax(theta) [P]."""
        return ops.softmax(ops.convert_to_tensor(self.arch_logits))

    def call(self, y, context, training=None, choice=None, all_paths=False):
        if choice is None:
            probs = ops.cast(self.probabilities(), y.dtype)
            outs = [op(y, context, training=training) for op in self.candidate_ops]
            return sum(probs[j] * o for j, o in enumerate(outs))
        choice = ops.convert_to_tensor(choice)
        if len(choice.shape) == 0:
            return self._run_one(ops.cast(choice, "int32"), y, context, training)
        if choice.shape[-1] != len(self.candidates):
            raise ValueError(
                f"choice gate has {choice.shape[-1]} entries, the slot {len(self.candidate_ops)}"
            )
        gate = ops.cast(choice, y.dtype)
        index = ops.cast(ops.argmax(gate), "int32")
        if _static_bool(all_paths) and self.all_paths_form == "where":
            total = 0.0
            for j, op in enumerate(self.candidate_ops):
                out = op(y, context, training=training)
                total = total + gate[j] * ops.where(
                    ops.equal(index, j), out, ops.stop_gradient(out)
                )
            return total
        sampled = self._run_one(index, y, context, training) * ops.take(gate, index)
        if not _static_bool(all_paths):
            return sampled
        # Every other candidate: forward only. Its output enters the loss only through
        # gate[j] * o_j, so it needs no backward pass (stop_gradient), and the sampled one is
        # not computed twice (cond). Value gate[k] o_k + sum_{j != k} 0 * o_j, gradients
        # dL/dgate_j = <o_j, dL/dout> and dL/dy = gate[k] do_k/dy: those of
        # sum_j gate[j] (o_k if j == k else stop_gradient(o_j)), without the P - 1 backward
        # passes of zeros that the where() form of that sum runs through the others.
        for j, op in enumerate(self.candidate_ops):
            other = ops.cond(
                ops.equal(index, j),
                lambda: ops.zeros_like(y),
                lambda op=op: op(y, context, training=training),
            )
            sampled = sampled + gate[j] * ops.stop_gradient(other)
        return sampled

    def _run_one(self, index, y, context, training):
        branches = [
            (lambda y, op=op: op(y, context, training=training)) for op in self.candidate_ops
        ]  # context and training are closed over: only tensors go through switch
        return ops.switch(index, branches, y)

    def get_config(self):
        return {
            **super().get_config(),
            "candidates": list(self.candidates),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "ffn_size": self.ffn_size,
            "dropout": self.dropout,
            "initial_logits": self.initial_logits,
            "dropout_generator": self.dropout_generator,
        }


def _static_bool(value) -> bool:
    """A Python bool from a bool or a constant bool tensor (the flag selects the graph to build)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    import tensorflow as tf  # only a TF graph constant can arrive here

    static = tf.get_static_value(value)
    if static is None:
        raise ValueError("all_paths must be a Python bool or a constant tensor, not a computed one")
    return bool(static)
