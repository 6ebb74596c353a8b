"""Genotypes (one op per block), op pools, and the op registry: one definition per op of the search
space, read by the layers, the FLOPs count, the pictures, the genotype formats and the importer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

PROJECT_FORMAT = "mmnas_tf.genotype/1"
STAGES = ("encoder", "decoder")


# ---- the op registry ---------------------------------------------------------------------------
def dense_flops(rows: int, fan_in: int, fan_out: int) -> int:
    """A dense layer applied to ``rows`` vectors (a multiply-add being 2 FLOPs)."""
    return 2 * rows * fan_in * fan_out


def attention_flops(queries: int, keys: int, d: int) -> int:
    """Q and output projections of the queries, K and V of the keys, scores and their product
    with the values (summed over heads: the head sizes add up to d)."""
    projections = 2 * dense_flops(queries, d, d) + 2 * dense_flops(keys, d, d)
    return projections + 2 * (2 * queries * keys * d)


@dataclass(frozen=True)
class OpDef:
    """Everything the library knows about one op; :func:`register_op` adds it to the search space.

    Args:
      name: str, the op's name in genotypes, configs and pictures' block ids (``"SA"``).
      layer: str, the Keras registered name of its layer class (``"mmnas_tf>SelfAttention"``:
        the class is decorated with ``keras.saving.register_keras_serializable``). The class
        follows the op call interface (``layers.PostNormOp``) and builds from the model's sizes
        with ``from_sizes(hidden_size, num_heads, ffn_size, dropout, **kwargs)``.
      flops: function ``(d, length, guide_length, ffn_size, relation_size, heads) -> int``, the
        forward FLOPs per example of one op on a sequence of ``length`` (matrix products only,
        as ``models.flops`` counts).
      encoder, decoder: bool, whether the op may fill an encoder (sentence) or decoder (image)
        block.
      colour: str, its matplotlib colour in every picture; label: str, the text drawn on its
        blocks and in legends (default: ``name``).
      needs: tuple of the context entries the op reads besides ``"mask"``: ``"guide"`` (the
        encoder output: a GA-like op, linked to the encoder in the genotype diagram and its
        attention kept by ``return_attention``), ``"relation"`` (the relation embedding, which the
        backbone computes and the FLOPs count only when some op needs it).
      original: str, its name in the original-format genotype files (``genotypes.json``, the
        original code's ``arch/*.json``), where ``{head_size}`` stands for the head size the name
        carries (``"self_att_{head_size}"``); default: ``name`` (an op the original code lacks).
      original_weights: tuple of ``(original key, Keras variable path, transpose)``, the op's
        weights in an original checkpoint (keys after the block prefix, paths attribute by
        attribute from the op layer, ``transpose`` for a PyTorch ``Linear`` weight).
    """

    name: str
    layer: str
    flops: Callable[..., int]
    encoder: bool
    decoder: bool
    colour: str
    label: str | None = None
    needs: tuple[str, ...] = ()
    original: str = ""
    original_weights: tuple[tuple[str, str, bool], ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
            raise ValueError(f"an op name is a word of letters, digits and _, got {self.name!r}")
        if not (self.encoder or self.decoder):
            raise ValueError(f"op {self.name!r} may appear nowhere: set encoder and/or decoder")
        bad = [n for n in self.needs if n not in ("guide", "relation")]
        if bad:
            raise ValueError(f"op {self.name!r} needs {bad}; accepted: 'guide', 'relation'")
        if self.encoder and self.needs:
            raise ValueError(
                f"op {self.name!r} needs {list(self.needs)}, which only decoder blocks have: "
                "set encoder=False"
            )
        object.__setattr__(self, "needs", tuple(self.needs))
        object.__setattr__(self, "label", self.label or self.name)
        object.__setattr__(self, "original", self.original or self.name)

    def stages(self) -> tuple[str, ...]:
        return tuple(s for s, ok in zip(STAGES, (self.encoder, self.decoder)) if ok)

    def original_name(self, head_size: int) -> str:
        return self.original.format(head_size=head_size)


_OPS: dict[str, OpDef] = {}


def register_op(definition: OpDef) -> OpDef:
    """Adds an op to the registry (its name and original name must be new); returns it."""
    if definition.name in _OPS:
        raise ValueError(f"op {definition.name!r} is already registered")
    for other in _OPS.values():
        if other.original == definition.original:
            raise ValueError(
                f"op {definition.name!r}: original name {definition.original!r} is already "
                f"{other.name!r}'s"
            )
    _OPS[definition.name] = definition
    return definition


def unregister_op(name: str) -> None:
    """Removes an op (a test's or a plugin's); genotypes naming it stop validating."""
    get_op(name)
    del _OPS[name]


def get_op(name: str) -> OpDef:
    """The registered definition of ``name``; ValueError naming the accepted ops otherwise."""
    try:
        return _OPS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {name!r}; accepted: {', '.join(_OPS)}") from None


def op_names(stage: str | None = None) -> tuple[str, ...]:
    """Registered ops in registration order; with ``stage``, those that may appear there."""
    if stage is None:
        return tuple(_OPS)
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; accepted: {', '.join(STAGES)}")
    return tuple(name for name, d in _OPS.items() if stage in d.stages())


def op_for_layer(registered_name: str) -> OpDef:
    """The op whose layer class is registered with Keras as ``registered_name``."""
    for definition in _OPS.values():
        if definition.layer == registered_name:
            return definition
    raise ValueError(
        f"layer {registered_name!r} is no registered op's layer; registered: "
        f"{', '.join(d.layer for d in _OPS.values())}"
    )


def _attention_weights(extra=()) -> tuple[tuple[str, str, bool], ...]:
    projections = (("linear_q", "query"), ("linear_k", "key"), ("linear_v", "value"))
    keys = tuple((f"mhatt.{o}.weight", f"attention.{k}_dense.kernel", True) for o, k in projections)
    merge = (("mhatt.linear_merge.weight", "attention.output_dense.kernel", True),)
    return keys + merge + tuple(extra) + _NORM_WEIGHTS


_NORM_WEIGHTS = (("ln.a_2", "norm.gamma", False), ("ln.b_2", "norm.beta", False))


def _linear_weights(original: str, path: str) -> tuple[tuple[str, str, bool], ...]:
    return (
        (f"{original}.weight", f"{path}.kernel", True),
        (f"{original}.bias", f"{path}.bias", False),
    )


# The paper's four ops (Sec. 3.1), in the order of its decoder pool.
register_op(
    OpDef(
        "SA",
        "mmnas_tf>SelfAttention",
        encoder=True,
        decoder=True,
        colour="#1f77b4",
        flops=lambda d, length, **_: attention_flops(length, length, d),
        original="self_att_{head_size}",
        original_weights=_attention_weights(),
    )
)
register_op(
    OpDef(
        "GA",
        "mmnas_tf>GuidedAttention",
        encoder=False,
        decoder=True,
        colour="#ff7f0e",
        needs=("guide",),
        flops=lambda d, length, guide_length, **_: attention_flops(length, guide_length, d),
        original="guided_att_{head_size}",
        original_weights=_attention_weights(),
    )
)
register_op(
    OpDef(
        "RSA",
        "mmnas_tf>RelationSelfAttention",
        encoder=False,
        decoder=True,
        colour="#2ca02c",
        needs=("relation",),
        # the attention plus the op's own Linear(r -> heads) over the n x n relation embedding
        flops=lambda d, length, relation_size, heads, **_: (
            attention_flops(length, length, d) + dense_flops(length * length, relation_size, heads)
        ),
        original="rel_self_att_{head_size}",
        original_weights=_attention_weights(_linear_weights("mhatt.linear_r", "relation_dense")),
    )
)
register_op(
    OpDef(
        "FFN",
        "mmnas_tf>FeedForward",
        encoder=True,
        decoder=True,
        colour="#7f7f7f",
        # Linear(d -> ffn_size) then Linear(ffn_size -> d)
        flops=lambda d, length, ffn_size, **_: (
            dense_flops(length, d, ffn_size) + dense_flops(length, ffn_size, d)
        ),
        original="feed_forward",
        original_weights=_linear_weights("mlp.fc.linear", "inner_dense")
        + _linear_weights("mlp.linear", "outer_dense")
        + _NORM_WEIGHTS,
    )
)

#: The paper's pools, the default search space: the four ops above by stage. An op registered
#: later joins a search only when a config's ``pools`` name it.
ENCODER_OPS = op_names("encoder")
DECODER_OPS = op_names("decoder")


@dataclass(frozen=True)
class OpPools:
    """The candidate ops of encoder and decoder blocks (paper: {SA, FFN} and {SA, GA, RSA, FFN})."""

    encoder: tuple[str, ...] = ENCODER_OPS
    decoder: tuple[str, ...] = DECODER_OPS

    def __post_init__(self):
        for stage, pool in (("encoder", self.encoder), ("decoder", self.decoder)):
            allowed = op_names(stage)
            if not pool:
                raise ValueError(f"the {stage} op pool is empty; accepted ops: {allowed}")
            bad = [op for op in pool if op not in allowed]
            if bad:
                raise ValueError(f"unknown {stage} ops {bad}; accepted: {allowed}")
            if len(set(pool)) != len(pool):
                raise ValueError(f"duplicate ops in the {stage} pool {pool}")

    def search_space_size(self, num_encoder: int, num_decoder: int) -> int:
        return len(self.encoder) ** num_encoder * len(self.decoder) ** num_decoder


def _parse_original_op(name: str, where: str) -> tuple[str, int | None]:
    for definition in _OPS.values():
        pattern = re.escape(definition.original).replace(r"\{head_size\}", r"(\d+)")
        match = re.fullmatch(pattern, name)
        if match:
            return definition.name, int(match.group(1)) if match.groups() else None
    accepted = [d.original_name("<head size>") for d in _OPS.values()]
    raise ValueError(f"{where}: unknown op {name!r}; accepted: {', '.join(accepted)}")


@dataclass(frozen=True)
class Genotype:
    """One op name per encoder block and per decoder block.

    Args:
      encoder: tuple of op names (registered ops that may fill an encoder block: "SA" or "FFN"
        among the paper's), one per encoder block (M of them).
      decoder: tuple of op names (the paper's "SA", "GA", "RSA" or "FFN", or a registered op
        that may fill a decoder block), one per decoder block (N).
      head_size: optional int, the attention head size carried by the original op names
        (``self_att_64`` -> 64); the number of heads is then hidden_size / head_size.
    """

    encoder: tuple[str, ...]
    decoder: tuple[str, ...]
    head_size: int | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "encoder", tuple(self.encoder))
        object.__setattr__(self, "decoder", tuple(self.decoder))
        self.validate()

    def validate(self, pools: OpPools | None = None, num_encoder=None, num_decoder=None):
        """Every op in its stage's pool (default: any registered op that may appear there) and,
        when given, the block counts."""
        for stage, ops, want in (
            ("encoder", self.encoder, num_encoder),
            ("decoder", self.decoder, num_decoder),
        ):
            pool = getattr(pools, stage) if pools is not None else op_names(stage)
            for i, op in enumerate(ops):
                if op not in pool:
                    raise ValueError(f"{stage} block {i}: op {op!r} is not in the pool {pool}")
            if want is not None and len(ops) != want:
                raise ValueError(f"the genotype has {len(ops)} {stage} blocks, expected {want}")
        if not self.decoder:
            raise ValueError("a genotype needs at least one decoder block")
        return self

    def num_heads(self, hidden_size: int, default: int) -> int:
        if self.head_size is None:
            return default
        if hidden_size % self.head_size:
            raise ValueError(
                f"hidden_size={hidden_size} is not a multiple of the genotype's head size "
                f"{self.head_size}"
            )
        return hidden_size // self.head_size

    # ---- formats -------------------------------------------------------------------------------
    @classmethod
    def from_original(cls, data: dict, epoch: str | None = None) -> Genotype:
        """Reads the original ``{"epochK": {"enc": [["self_att_64"], ...], "dec": [...]}}``
        (or a bare ``{"enc", "dec"}``). Without ``epoch``, takes the highest ``epochK``."""
        if "enc" not in data:
            epochs = {k: v for k, v in data.items() if re.fullmatch(r"epoch\d+", k)}
            if not epochs:
                raise ValueError(
                    "not an original architecture file: expected 'epochK' keys or 'enc'/'dec', "
                    f"got keys {sorted(data)[:5]}"
                )
            if epoch is None:
                epoch = max(epochs, key=lambda k: int(k[5:]))
            if epoch not in epochs:
                raise ValueError(f"epoch {epoch!r} not in the file; available: {sorted(epochs)}")
            data = epochs[epoch]
        head_sizes = set()
        stages = {}
        for stage in ("enc", "dec"):
            if stage not in data:
                raise ValueError(f"original architecture lacks {stage!r}")
            names = []
            for i, entry in enumerate(data[stage]):
                if isinstance(entry, list):
                    if len(entry) != 1:
                        raise ValueError(f"{stage} block {i}: expected one op, got {entry}")
                    entry = entry[0]
                op, hs = _parse_original_op(entry, f"{stage} block {i}")
                names.append(op)
                if hs is not None:
                    head_sizes.add(hs)
            stages[stage] = names
        if len(head_sizes) > 1:
            raise ValueError(f"ops carry different head sizes {sorted(head_sizes)}")
        return cls(stages["enc"], stages["dec"], head_sizes.pop() if head_sizes else None)

    def to_original(self, head_size: int | None = None) -> dict:
        """The inner ``{"enc": ..., "dec": ...}`` dict with op names carrying the head size."""
        hs = head_size or self.head_size or 64

        def name(op):
            return get_op(op).original_name(hs)

        return {
            "enc": [[name(op)] for op in self.encoder],
            "dec": [[name(op)] for op in self.decoder],
        }

    def to_dict(self) -> dict:
        out = {
            "format": PROJECT_FORMAT,
            "encoder": list(self.encoder),
            "decoder": list(self.decoder),
        }
        if self.head_size is not None:
            out["head_size"] = self.head_size
        return out

    @classmethod
    def from_dict(cls, data: dict, epoch: str | None = None) -> Genotype:
        """Reads our format or the original's (detected)."""
        if data.get("format") == PROJECT_FORMAT:
            return cls(data["encoder"], data["decoder"], data.get("head_size"))
        if "format" in data:
            raise ValueError(
                f"unknown genotype format {data['format']!r}; accepted: {PROJECT_FORMAT}"
            )
        return cls.from_original(data, epoch)

    @classmethod
    def load(cls, path: str, epoch: str | None = None) -> Genotype:
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from e
        try:
            return cls.from_dict(data, epoch)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e

    def save(self, path: str, original: bool = False, epoch: str = "epoch0") -> None:
        data = {epoch: self.to_original()} if original else self.to_dict()
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")

    def search_space_size(self, pools: OpPools | None = None) -> int:
        return (pools or OpPools()).search_space_size(len(self.encoder), len(self.decoder))

    def __str__(self) -> str:
        return f"enc[{' '.join(self.encoder)}] dec[{' '.join(self.decoder)}]"


def mcan(num_encoder: int = 12, num_decoder: int = 18) -> Genotype:
    """The MCAN baseline: encoder [SA, FFN] * M/2, decoder [SA, GA, FFN] * N/3."""
    if num_encoder % 2 or num_decoder % 3:
        raise ValueError("MCAN needs an even M and N divisible by 3")
    return Genotype(
        ("SA", "FFN") * (num_encoder // 2), ("SA", "GA", "FFN") * (num_decoder // 3), 64
    )
