"""Visual grounding model: per-object ranking scores and box offsets (paper Sec. 3.3)."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf.layers import AttentionPooling, OriginalLayerNorm
from mmnas_tf.models.backbone import MMnasBackbone
from mmnas_tf.models.classifier import pool
from mmnas_tf.models.saving import ExplicitSignaturesOnly


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MMnasGrounder(ExplicitSignaturesOnly, keras.Model):
    """``Z = LN(pool_x(X) + Linear_{d->o}(Y))`` per object; ``object_scores = log_softmax(
    Linear_{o->1}(Z))`` over ALL n slots (padding included, as the original) and ``box_deltas =
    Linear_{o->4}(Z)`` (normalised Fast R-CNN offsets; divide-by-std form, as the original's
    regression layer emits them).

    Args:
      backbone: a ``MMnasBackbone``.

    Call: ``model(inputs, ..., return_attention=False)`` -> ``{"object_scores": [B, n],
    "box_deltas": [B, n, 4]}``; with ``return_attention`` also ``"attention"``:
    ``{"region_scores": [B, n]`` (softmax of the object scores), ``"text_pooling": [B, m]`` and the
    backbone's ``"decoder_i"`` GA maps [B, n, m]``}`` (no image pooling in grounding).
    """

    def __init__(self, backbone: MMnasBackbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        c = backbone.config
        self.text_pooling = AttentionPooling(
            c.hidden_size,
            c.pool_mlp_size,
            c.pool_glimpses,
            c.pool_output_size,
            c.dropout,
            c.dropout_generator,
            name="text_pooling",
        )
        self.object_projection = keras.layers.Dense(c.pool_output_size, name="object_projection")
        # float32 under any policy: the log-softmax over n slots and the box offsets.
        self.fusion_norm = OriginalLayerNorm(name="fusion_norm", dtype="float32")
        self.score_dense = keras.layers.Dense(1, name="score", dtype="float32")
        self.delta_dense = keras.layers.Dense(4, name="box_delta", dtype="float32")
        self.built = True
        self(backbone.dummy_inputs(), training=False)

    def call(
        self, inputs, training=None, arch=None, return_intermediates=False, return_attention=False
    ):
        f = self.backbone(
            inputs,
            training=training,
            arch=arch,
            return_intermediates=return_intermediates,
            return_attention=return_attention,
        )
        pooled_x, text_weights = pool(self.text_pooling, f, "text", training, return_attention)
        objects = self.object_projection(f["image"])
        fused = self.fusion_norm(
            ops.cast(pooled_x[:, None, :], "float32") + ops.cast(objects, "float32")
        )
        scores = ops.log_softmax(self.score_dense(fused)[..., 0], axis=-1)
        out = {"object_scores": scores, "box_deltas": self.delta_dense(fused)}
        if return_intermediates:
            out["intermediates"] = {
                **f["intermediates"],
                "text_pooling": pooled_x,
                "object_projection": objects,
                "fusion_norm": fused,
            }
        if return_attention:
            out["attention"] = {
                **f["attention"],
                "text_pooling": text_weights,
                "region_scores": ops.exp(scores),
            }
        return out

    def get_config(self):
        return {"name": self.name, "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
