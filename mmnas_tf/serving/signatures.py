"""Signature specs of a loaded SavedModel and validation of request tensors against them.

Every request is checked here BEFORE it reaches the model (or a server-side batch), so a bad request
gets an INVALID_ARGUMENT naming the input and the expected dtype/shape, and cannot poison a batch
shared with good requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from mmnas_tf.serving.errors import invalid_argument

# What each axis of a contract input means, to word shape errors for people, not for tensors.
_AXES = {
    "text_ids": ("batch", "tokens"),
    "text": ("batch",),
    "image_features": ("batch", "regions", "features"),
    "boxes": ("batch", "regions", "coordinates"),
    "image_size": ("batch", "sizes"),
}
_HINTS = {
    ("text_ids", 1): "pad shorter questions with 0 (PAD) and trim longer ones",
    ("image_features", 1): "pad fewer regions with all-zero rows; keep the most confident ones",
    ("boxes", 1): "pad boxes to the same number of regions as image_features",
}


def shape_str(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclasses.dataclass(frozen=True)
class TensorSpecInfo:
    """dtype and shape (None = any) of one signature input or output."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        axes = _AXES.get(self.name)
        meaning = f" ({', '.join(axes)})" if axes and len(axes) == len(self.shape) else ""
        return f"{self.dtype.name} {shape_str(self.shape)}{meaning}"


@dataclasses.dataclass
class Signature:
    """One callable signature of a loaded model: its input/output specs and the function."""

    name: str
    inputs: dict[str, TensorSpecInfo]
    outputs: dict[str, TensorSpecInfo]
    fn: Callable[..., Mapping[str, tf.Tensor]]

    @classmethod
    def from_concrete_function(cls, name: str, fn) -> Signature:
        _, kwargs = fn.structured_input_signature
        inputs = {k: _info(k, s) for k, s in kwargs.items()}
        outputs = {k: _info(k, s) for k, s in fn.structured_outputs.items()}
        return cls(name=name, inputs=inputs, outputs=outputs, fn=fn)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {k: tf.constant(v, dtype=self.inputs[k].dtype) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in self.fn(**tensors).items()}

    def validate(self, inputs: Mapping[str, np.ndarray]) -> int:
        """Checks names, dtypes, ranks, shapes, batch sizes and finiteness; returns the batch size."""
        expected = ", ".join(f"{k}: {s.describe()}" for k, s in self.inputs.items())
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            raise invalid_argument(
                f"unexpected input(s) {unknown} for signature '{self.name}'; it takes {expected}"
            )
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise invalid_argument(
                f"missing input(s) {missing} for signature '{self.name}'; it takes {expected}"
            )
        batch = {}
        for key, spec in self.inputs.items():
            _check_tensor(spec, np.asarray(inputs[key]))
            batch[key] = np.shape(inputs[key])[0]
        sizes = set(batch.values())
        if len(sizes) > 1:
            raise invalid_argument(
                f"inputs have different batch sizes {batch}: every input needs the same first dimension"
            )
        size = sizes.pop()
        if size == 0:
            raise invalid_argument("empty batch: every input has batch size 0")
        return size


def _info(name: str, spec: tf.TensorSpec) -> TensorSpecInfo:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else ()
    return TensorSpecInfo(name=name, dtype=spec.dtype, shape=shape)


def numpy_dtype_matches(spec: TensorSpecInfo, array: np.ndarray) -> bool:
    if spec.dtype == tf.string:
        return array.dtype.kind in "OSU"
    return array.dtype == spec.dtype.as_numpy_dtype


def _check_tensor(spec: TensorSpecInfo, array: np.ndarray) -> None:
    got = (
        f"got {array.dtype.name if array.dtype.kind not in 'OSU' else 'string'} {list(array.shape)}"
    )
    if not numpy_dtype_matches(spec, array):
        raise invalid_argument(f"input '{spec.name}' must be {spec.describe()}; {got}")
    if array.ndim != len(spec.shape):
        raise invalid_argument(
            f"input '{spec.name}' must have rank {len(spec.shape)}: {spec.describe()}; {got}"
        )
    for axis, (want, have) in enumerate(zip(spec.shape, array.shape)):
        if want is not None and want != have:
            axes = _AXES.get(spec.name)
            what = (
                axes[axis] if axes and len(axes) == len(spec.shape) else f"entries on axis {axis}"
            )
            hint = _HINTS.get((spec.name, axis))
            raise invalid_argument(
                f"input '{spec.name}' has {have} {what} but the model takes exactly {want} "
                f"({'too many' if have > want else 'too few'}): expected {spec.describe()}; {got}"
                + (f"; {hint}" if hint else "")
            )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise invalid_argument(
            f"input '{spec.name}' contains NaN or infinite values: every value must be finite"
        )
