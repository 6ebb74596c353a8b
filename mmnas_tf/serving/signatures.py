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

from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, TEXT_IDS
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


_TRIM = {
    TEXT_IDS: "trim longer questions",
    IMAGE_FEATURES: "keep the most confident regions",
    BOXES: "keep the boxes of the regions kept",
}


def shape_str(shape, max_length: int | None = None) -> str:
    dims = ["?" if d is None else str(d) for d in shape]
    if max_length is not None and len(dims) > 1 and shape[1] is None:
        dims[1] = f"<={max_length}"
    return "[" + ", ".join(dims) + "]"


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """What a variable-size export takes: at most ``max_tokens`` tokens and ``max_regions`` regions
    (axis 1 of ``text_ids`` / ``image_features`` and ``boxes``), token ids in [0, vocab_size).

    The export stores them as its ``input_limits`` function and checks them in-graph with the
    messages below; the server reads them to refuse a request before it reaches a batch. The
    messages hold no quotes: an in-graph assertion prints its message with quotes escaped.
    """

    max_tokens: int
    max_regions: int
    vocab_size: int

    @classmethod
    def of_saved_model(cls, loaded) -> InputLimits | None:
        """The limits a ``tf.saved_model.load``'ed export stores (None for models without them)."""
        fn = getattr(loaded, "input_limits", None)
        if fn is None:
            return None
        return cls(**{k: int(v) for k, v in fn().items()})

    def max_length(self, name: str) -> int | None:
        """The most entries ``name`` takes on axis 1 (None: not limited)."""
        regions = self.max_regions
        return {TEXT_IDS: self.max_tokens, IMAGE_FEATURES: regions, BOXES: regions}.get(name)

    def too_long(self, name: str, have: int | None = None) -> str:
        what = _AXES[name][1]
        count = f"{have} {what}" if have is not None else f"more {what} than that"
        return (
            f"input {name} takes at most {self.max_length(name)} {what} (the maximum of this "
            f"model); got {count}: {_TRIM[name]}"
        )

    def ids_out_of_range(self, bad=None) -> str:
        got = f"; got {bad}" if bad is not None else ""
        return (
            f"input {TEXT_IDS} must hold token ids in the range [0, {self.vocab_size}) of the "
            f"vocabulary{got}"
        )

    @staticmethod
    def no_regions() -> str:
        return f"input {IMAGE_FEATURES} needs at least 1 region"

    @staticmethod
    def regions_differ(features: int | None = None, boxes: int | None = None) -> str:
        got = f"; got {features} and {boxes}" if features is not None else ""
        return f"inputs {IMAGE_FEATURES} and {BOXES} must have the same number of regions{got}"

    def validate(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raises INVALID_ARGUMENT with the messages above (inputs already match their specs)."""
        for name in (TEXT_IDS, IMAGE_FEATURES, BOXES):
            if name in inputs and np.shape(inputs[name])[1] > self.max_length(name):
                raise invalid_argument(self.too_long(name, np.shape(inputs[name])[1]))
        if TEXT_IDS in inputs:
            ids = np.asarray(inputs[TEXT_IDS])
            bad = ids[(ids < 0) | (ids >= self.vocab_size)]
            if bad.size:
                raise invalid_argument(self.ids_out_of_range(sorted(set(bad.tolist()))[:5]))
        if IMAGE_FEATURES in inputs and BOXES in inputs:
            n, b = np.shape(inputs[IMAGE_FEATURES])[1], np.shape(inputs[BOXES])[1]
            if n != b:
                raise invalid_argument(self.regions_differ(n, b))
            if n == 0:
                raise invalid_argument(self.no_regions())


@dataclasses.dataclass(frozen=True)
class TensorSpecInfo:
    """dtype and shape (None = any) of one signature input or output."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...]
    max_length: int | None = None  # the most entries on a variable axis 1

    def describe(self) -> str:
        axes = _AXES.get(self.name)
        meaning = f" ({', '.join(axes)})" if axes and len(axes) == len(self.shape) else ""
        return f"{self.dtype.name} {shape_str(self.shape, self.max_length)}{meaning}"


@dataclasses.dataclass
class Signature:
    """One callable signature of a loaded model: its input/output specs and the function."""

    name: str
    inputs: dict[str, TensorSpecInfo]
    outputs: dict[str, TensorSpecInfo]
    fn: Callable[..., Mapping[str, tf.Tensor]]
    limits: InputLimits | None = None

    @classmethod
    def from_concrete_function(cls, name: str, fn, limits: InputLimits | None = None) -> Signature:
        _, kwargs = fn.structured_input_signature
        inputs = {k: _info(k, s, limits) for k, s in kwargs.items()}
        outputs = {k: _info(k, s) for k, s in fn.structured_outputs.items()}
        return cls(name=name, inputs=inputs, outputs=outputs, fn=fn, limits=limits)

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
        if self.limits is not None:
            self.limits.validate(inputs)
        return size


def _info(name: str, spec: tf.TensorSpec, limits: InputLimits | None = None) -> TensorSpecInfo:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else ()
    longest = limits.max_length(name) if limits and len(shape) > 1 and shape[1] is None else None
    return TensorSpecInfo(name=name, dtype=spec.dtype, shape=shape, max_length=longest)


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
