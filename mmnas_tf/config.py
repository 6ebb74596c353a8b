"""Typed configs. ``ModelConfig`` holds every size of the backbone and heads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mmnas_tf.genotype import Genotype, OpPools

#: The dropout generators (``ModelConfig.dropout_generator``; implemented by
#: ``mmnas_tf.layers.dropout``): ``"uniform"``, one float32 (or compute-dtype) Philox uniform per
#: element, Keras's ``Dropout`` bit for bit; ``"bytes"``, one 32-bit Philox draw per 4 elements,
#: each byte compared with a threshold (keep probability ``round(256 (1 - rate)) / 256``).
DROPOUT_GENERATORS = ("uniform", "bytes")
#: What a config or ``run.json`` written before the field existed trained with.
LEGACY_DROPOUT_GENERATOR = "uniform"
#: The default of new configs (docs/performance.md, "The dropout generator").
DEFAULT_DROPOUT_GENERATOR = "bytes"


def check_dropout_generator(generator: str, what: str = "dropout generator") -> str:
    """``generator`` when it is one of ``DROPOUT_GENERATORS``, else ValueError naming ``what``
    and the accepted values."""
    if generator not in DROPOUT_GENERATORS:
        raise ValueError(
            f"{what} must be one of {', '.join(DROPOUT_GENERATORS)}, got {generator!r}"
        )
    return generator


def keep_dropout_generator(config, recorded: str | None, source: str):
    """``(config, line)``: ``config`` (a ``ModelConfig``) with the dropout generator a restarted
    run began with, ``recorded`` (None: nothing to resume), so that it keeps its random stream,
    and the line saying so ("" when nothing changed); ``source`` says where it was recorded."""
    if recorded is None or recorded == config.dropout_generator:
        return config, ""
    line = (
        f"resuming with dropout generator {recorded!r}, as {source}; this experiment says "
        f"{config.dropout_generator!r}"
    )
    return config.replace(dropout_generator=recorded), line


@dataclass
class ModelConfig:
    """Sizes of an MMnas network. Defaults are the original's (paper size, VQA).

    Attributes:
      hidden_size: width d of every block.
      num_heads: attention heads h (overridden by the genotype's head size when it has one).
      ffn_size: inner width of FFN ops (4d in the paper).
      relation_size: width r of the shared relation embedding Linear(4 -> r).
      dropout: dropout rate everywhere (0.1).
      dropout_generator: how every dropout site draws its mask (``DROPOUT_GENERATORS``):
        ``"uniform"`` (one random float per element, Keras's ``Dropout`` bit for bit: the stream of
        runs made before the setting existed, which read as ``"uniform"``) or ``"bytes"`` (one
        32-bit draw per 4 elements, keep probability ``round(256 (1 - dropout)) / 256``, within
        1/512 of ``1 - dropout``; kept values scaled by its inverse). Changes the random stream,
        not the expectation; inference is the identity with both.
      vocab_size: rows of the word-embedding table.
      word_embed_size: width of word vectors (300 for GloVe).
      feature_size: width of region features (2048 for bottom-up features).
      max_tokens: padded sentence length m (VQA 14, ITM 50, VG 15).
      max_regions: padded region count n (VQA 100, ITM 36, VG 100).
      pool_mlp_size: width a of the attentional pooling MLP.
      pool_glimpses: glimpses g of attentional pooling.
      pool_output_size: width o of the pooled output (1024 in the original; not derived from d).
      box_embedding_size: width of the optional box embedding (0 = off, the original's default).
      num_answers: answers k of a head that scores an answer vocabulary (VQA); None until a run
        reads its data (then the lines of ``answers.txt``, ``mmnas_tf.runs.resolve_experiment``),
        the task's default (VQA 3129, the original's) for a model built without data. Tasks
        without an answer vocabulary ignore it.
      num_encoder_blocks: M. num_decoder_blocks: N.
      genotype: the fixed architecture; None builds a supernet over ``pools``.
      pools: candidate ops of encoder / decoder blocks (supernet).
    """

    hidden_size: int = 512
    num_heads: int = 8
    ffn_size: int = 2048
    relation_size: int = 64
    dropout: float = 0.1
    dropout_generator: str = DEFAULT_DROPOUT_GENERATOR
    vocab_size: int = 20573
    word_embed_size: int = 300
    feature_size: int = 2048
    max_tokens: int = 14
    max_regions: int = 100
    pool_mlp_size: int = 512
    pool_glimpses: int = 1
    pool_output_size: int = 1024
    box_embedding_size: int = 0
    num_answers: int | None = None
    num_encoder_blocks: int = 12
    num_decoder_blocks: int = 18
    genotype: Genotype | None = None
    pools: OpPools = field(default_factory=OpPools)

    def __post_init__(self):
        if isinstance(self.genotype, dict):
            self.genotype = Genotype.from_dict(self.genotype)
        if isinstance(self.pools, dict):
            self.pools = OpPools(tuple(self.pools["encoder"]), tuple(self.pools["decoder"]))
        self.validate()

    def validate(self) -> ModelConfig:
        for name in (
            "hidden_size",
            "num_heads",
            "ffn_size",
            "relation_size",
            "vocab_size",
            "word_embed_size",
            "feature_size",
            "max_tokens",
            "max_regions",
            "pool_mlp_size",
            "pool_glimpses",
            "pool_output_size",
            "num_decoder_blocks",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.num_encoder_blocks < 0 or self.box_embedding_size < 0:
            raise ValueError("num_encoder_blocks and box_embedding_size must be >= 0")
        if self.num_answers is not None and (
            not isinstance(self.num_answers, int) or self.num_answers < 1
        ):
            raise ValueError(
                f"ModelConfig.num_answers must be a positive int or None, got {self.num_answers!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        check_dropout_generator(self.dropout_generator, "ModelConfig.dropout_generator")
        if self.genotype is not None:  # any registered op: the pools are the supernet's
            self.genotype.validate(None, self.num_encoder_blocks, self.num_decoder_blocks)
        if self.hidden_size % self.heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.heads}"
            )
        return self

    @property
    def heads(self) -> int:
        """The number of heads actually used (the genotype's head size wins)."""
        if self.genotype is not None:
            return self.genotype.num_heads(self.hidden_size, self.num_heads)
        return self.num_heads

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["genotype"] = self.genotype.to_dict() if self.genotype else None
        out["pools"] = {"encoder": list(self.pools.encoder), "decoder": list(self.pools.decoder)}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """The config ``to_dict`` wrote; one written before ``dropout_generator`` existed reads
        as ``LEGACY_DROPOUT_GENERATOR`` (its runs resume with the random stream they began)."""
        data = {"dropout_generator": LEGACY_DROPOUT_GENERATOR, **data}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown ModelConfig fields {sorted(unknown)}; accepted: {sorted(known)}"
            )
        return cls(**data)
