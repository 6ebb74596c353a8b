"""The one MMnas backbone: sentence encoder, image projection, M encoder and N decoder blocks."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import get_op
from mmnas_tf.layers import SentenceLSTM, box_features, make_op, relation_features
from mmnas_tf.layers.mixed_op import MixedOp
from mmnas_tf.models.saving import ExplicitSignaturesOnly


def _guide_attention(block) -> bool:
    """A fixed block whose op attends to the encoder output (GA): its map is explained."""
    return getattr(block, "has_attention", False) and "guide" in get_op(block.op_name).needs


def text_padding_mask(text_ids):
    """True where a token is real (id != 0)."""
    return ops.not_equal(text_ids, 0)


def image_padding_mask(features):
    """True where a region is real (its feature row is not all zero)."""
    return ops.not_equal(ops.sum(ops.abs(features), axis=-1), 0)


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MMnasBackbone(ExplicitSignaturesOnly, keras.Model):
    """Encoder-decoder backbone of MMnas (paper Sec. 3.2) whose block slots hold either a fixed op
    (from ``config.genotype``) or a searchable mixed op over ``config.pools`` (supernet).

    Text: word embedding (GloVe-sized) then a one-layer LSTM -> X [B, m, d], then M encoder blocks
    (SA or FFN). Image: optional box embedding concatenated to the region features, a linear
    projection -> Y [B, n, d], then N decoder blocks (SA, GA over X, RSA with the relation
    embedding ``ReLU(Linear_{4->r}(R))`` computed once from the boxes, or FFN).

    Args:
      config: ``ModelConfig`` (or its dict form).

    Call: ``backbone(inputs, training=None, arch=None, return_intermediates=False,
    return_attention=False)`` with ``inputs``
    a dict of ``text_ids`` int [B, m] (0 = padding), ``image_features`` float [B, n, f] (all-zero
    rows = padding), ``boxes`` float [B, n, 4] pixels, and ``image_size`` [B, 2] (height, width)
    when the box embedding is on. ``arch`` is forwarded to mixed-op slots (ignored by fixed ones).
    Returns ``{"text": X, "image": Y, "text_mask", "image_mask"}`` (+ ``"intermediates"``; with
    ``return_attention``, ``"attention"``: ``{"decoder_i": [B, n, m]}`` for every fixed GA block,
    its region-to-word attention averaged over heads; mixed slots report none).

    Precision: the inputs are taken as given (boxes and image sizes stay float32: a bfloat16 box
    is off by up to 2 px at 640); under a mixed policy the features are cast to the compute dtype
    after the padding mask is read from them, and the streams X and Y come out in it.

    Example::

        config = ModelConfig(hidden_size=64, num_heads=4, genotype=mcan(4, 6),
                             num_encoder_blocks=4, num_decoder_blocks=6)
        outputs = MMnasBackbone(config)(inputs)
    """

    def __init__(self, config: ModelConfig | dict, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config.validate()
        c = config
        self.embedding = keras.layers.Embedding(c.vocab_size, c.word_embed_size, name="embedding")
        self.lstm = SentenceLSTM(c.hidden_size, name="lstm")
        self.box_embedding = (
            keras.layers.Dense(c.box_embedding_size, name="box_embedding")
            if c.box_embedding_size
            else None
        )
        self.image_projection = keras.layers.Dense(c.hidden_size, name="image_projection")
        self.relation_embedding = keras.layers.Dense(c.relation_size, name="relation_embedding")
        self.encoder_blocks = [self._make_slot("encoder", i) for i in range(c.num_encoder_blocks)]
        self.decoder_blocks = [self._make_slot("decoder", i) for i in range(c.num_decoder_blocks)]

    def _slot_ops(self, stage: str, index: int) -> tuple[str, ...]:
        c = self.config
        if c.genotype is not None:
            return ((c.genotype.encoder if stage == "encoder" else c.genotype.decoder)[index],)
        return c.pools.encoder if stage == "encoder" else c.pools.decoder

    def _make_slot(self, stage: str, index: int):
        c = self.config
        candidates = self._slot_ops(stage, index)
        kwargs = dict(
            hidden_size=c.hidden_size,
            num_heads=c.heads,
            ffn_size=c.ffn_size,
            dropout=c.dropout,
            dropout_generator=c.dropout_generator,
        )
        if len(candidates) == 1:
            return make_op(candidates[0], name=f"{stage}_{index}_{candidates[0]}", **kwargs)
        return MixedOp(candidates, name=f"{stage}_{index}_mixed", **kwargs)

    @property
    def uses_relations(self) -> bool:
        slots = (self._slot_ops("decoder", i) for i in range(len(self.decoder_blocks)))
        return any("relation" in get_op(op).needs for ops_ in slots for op in ops_)

    def check_inputs(self, inputs) -> None:
        """Raises ValueError naming the input when a rank, width or dtype is wrong."""
        c = self.config
        want = {
            names.TEXT_IDS: ("[batch, tokens]", 2, None),
            names.IMAGE_FEATURES: (f"[batch, regions, {c.feature_size}]", 3, c.feature_size),
            names.BOXES: ("[batch, regions, 4]", 3, 4),
        }
        if self.box_embedding is not None:
            want[names.IMAGE_SIZE] = ("[batch, 2] (height, width)", 2, 2)
        if not isinstance(inputs, dict):
            raise ValueError(
                f"inputs must be a dict with keys {sorted(want)}, got {type(inputs).__name__}"
            )
        for key, (shape, rank, last) in want.items():
            if key not in inputs:
                raise ValueError(f"missing input {key!r}; expected {shape}")
            value = inputs[key]
            if len(value.shape) != rank or (
                last is not None and value.shape[-1] not in (None, last)
            ):
                raise ValueError(f"input {key!r} has shape {tuple(value.shape)}; expected {shape}")
        dtype = keras.backend.standardize_dtype(inputs[names.TEXT_IDS].dtype)
        if "int" not in dtype:
            raise ValueError(
                f"input 'text_ids' must be an integer tensor of token ids, got {dtype}"
            )

    def call(
        self, inputs, training=None, arch=None, return_intermediates=False, return_attention=False
    ):
        self.check_inputs(inputs)
        text_ids = inputs[names.TEXT_IDS]
        features = inputs[names.IMAGE_FEATURES]
        boxes = ops.cast(inputs[names.BOXES], "float32")
        text_mask = text_padding_mask(text_ids)
        image_mask = image_padding_mask(features)
        features = ops.cast(features, self.compute_dtype)
        acts = {}

        x = self.lstm(self.embedding(text_ids))
        acts["lstm"] = x
        if self.box_embedding is not None:
            feats = box_features(boxes, inputs[names.IMAGE_SIZE], image_mask)
            features = ops.concatenate([features, self.box_embedding(feats)], axis=-1)
        y = self.image_projection(features)
        acts["image_projection"] = y

        relation = None
        if self.uses_relations:
            rel_pre = self.relation_embedding(relation_features(boxes, image_mask))
            acts["relation_embedding"] = rel_pre
            relation = ops.relu(rel_pre)

        for i, block in enumerate(self.encoder_blocks):
            x = self._call_slot(block, x, {"mask": text_mask}, training, arch, "encoder", i)
            acts[f"encoder_{i}"] = x
        context = {"mask": image_mask, "guide": x, "guide_mask": text_mask}
        if relation is not None:
            context["relation"] = relation
        attention = {}
        for i, block in enumerate(self.decoder_blocks):
            if return_attention and _guide_attention(block):
                y, maps = block(y, context, training=training, return_attention=True)
                attention[f"decoder_{i}"] = ops.mean(maps, axis=1)  # over heads: [B, n, m]
            else:
                y = self._call_slot(block, y, context, training, arch, "decoder", i)
            acts[f"decoder_{i}"] = y

        out = {"text": x, "image": y, "text_mask": text_mask, "image_mask": image_mask}
        if return_intermediates:
            out["intermediates"] = acts
        if return_attention:
            out["attention"] = attention
        return out

    def _call_slot(self, block, y, context, training, arch, stage, index):
        if arch is not None and hasattr(block, "candidates"):
            return block(
                y,
                context,
                training=training,
                choice=arch[stage][index],
                all_paths=arch.get("all_paths", False),
            )
        return block(y, context, training=training)

    def architecture_variables(self) -> list:
        """The architecture logits (theta) of every mixed slot, encoder first (empty when fixed)."""
        return [
            block.arch_logits
            for block in self.encoder_blocks + self.decoder_blocks
            if hasattr(block, "candidates")
        ]

    def build(self, input_shape=None):
        """Creates every weight by a call on zero inputs (also creates the ``linear_y_rel`` weights
        that the original always holds, even without RSA)."""
        if self.built:
            return
        self.built = True  # sublayers build lazily inside this first call
        self(self.dummy_inputs(), training=False)
        if not self.relation_embedding.built:
            self.relation_embedding.build((None, 4))

    def dummy_inputs(self, batch_size: int = 1) -> dict:
        c = self.config
        dummy = {
            names.TEXT_IDS: ops.ones((batch_size, c.max_tokens), "int32"),
            names.IMAGE_FEATURES: ops.ones((batch_size, c.max_regions, c.feature_size)),
            names.BOXES: ops.tile(
                ops.convert_to_tensor([[[0.0, 0.0, 9.0, 9.0]]]), (batch_size, c.max_regions, 1)
            ),
        }
        if self.box_embedding is not None:
            dummy[names.IMAGE_SIZE] = ops.ones((batch_size, 2)) * 10.0
        return dummy

    def get_config(self):
        return {"name": self.name, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
