"""Genotypes (one op per block) and op pools, in the original `arch/*.json` format and ours."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

ENCODER_OPS = ("SA", "FFN")
DECODER_OPS = ("SA", "GA", "RSA", "FFN")
PROJECT_FORMAT = "mmnas_tf.genotype/1"

_ORIGINAL_ATTENTION = {"self_att": "SA", "guided_att": "GA", "rel_self_att": "RSA"}
_TO_ORIGINAL = {v: k for k, v in _ORIGINAL_ATTENTION.items()}
_ORIGINAL_NAME = re.compile(r"^(rel_self_att|self_att|guided_att)_(\d+)$")


@dataclass(frozen=True)
class OpPools:
    """The candidate ops of encoder and decoder blocks (paper: {SA, FFN} and {SA, GA, RSA, FFN})."""

    encoder: tuple[str, ...] = ENCODER_OPS
    decoder: tuple[str, ...] = DECODER_OPS

    def __post_init__(self):
        for stage, pool, allowed in (
            ("encoder", self.encoder, ENCODER_OPS),
            ("decoder", self.decoder, DECODER_OPS),
        ):
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
    if name == "feed_forward":
        return "FFN", None
    match = _ORIGINAL_NAME.match(name)
    if not match:
        raise ValueError(
            f"{where}: unknown op {name!r}; accepted: self_att_<head size>, guided_att_<head size>, "
            "rel_self_att_<head size>, feed_forward"
        )
    return _ORIGINAL_ATTENTION[match.group(1)], int(match.group(2))


@dataclass(frozen=True)
class Genotype:
    """One op name per encoder block and per decoder block.

    Args:
      encoder: tuple of op names ("SA" or "FFN"), one per encoder block (M of them).
      decoder: tuple of op names ("SA", "GA", "RSA" or "FFN"), one per decoder block (N).
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
        pools = pools or OpPools()
        for stage, ops, pool, want in (
            ("encoder", self.encoder, pools.encoder, num_encoder),
            ("decoder", self.decoder, pools.decoder, num_decoder),
        ):
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
            return "feed_forward" if op == "FFN" else f"{_TO_ORIGINAL[op]}_{hs}"

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
