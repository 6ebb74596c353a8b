"""VQA and ITM model: pooled fusion of both streams, then a linear classifier (paper Sec. 3.3)."""

from __future__ import annotations

import keras
from keras import ops

from mmnas_tf.layers import AttentionPooling, OriginalLayerNorm
from mmnas_tf.models.backbone import MMnasBackbone
from mmnas_tf.models.saving import ExplicitSignaturesOnly


def pool(layer: AttentionPooling, features: dict, stream: str, training, return_weights: bool):
    """Pools the backbone's ``stream`` ("text" or "image") with its padding mask; returns
    ``(pooled, weights)``, ``weights`` [B, L] averaged over glimpses (None unless asked)."""
    mask = features[f"{stream}_mask"]
    if not return_weights:
        return layer(features[stream], mask, training=training), None
    pooled, alpha = layer(features[stream], mask, training=training, return_weights=True)
    return pooled, ops.mean(alpha, axis=-1)


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MMnasClassifier(ExplicitSignaturesOnly, keras.Model):
    """``z = LN(pool_x(X) + pool_y(Y))``, ``logits = Linear_{o->k}(z)``.

    VQA uses k = number of answers (logits for sigmoid BCE over soft scores); ITM uses k = 1 with
    ``scalar_output=True`` (one matching logit per pair, sigmoid gives the score).

    Args:
      backbone: a ``MMnasBackbone``.
      num_outputs: int, k.
      scalar_output: bool, squeeze [B, 1] logits to [B] (ITM).

    Call: ``model(inputs, training=None, arch=None, return_intermediates=False,
    return_attention=False)`` -> ``{"logits": [B, k] or [B]}``; with ``return_attention`` also
    ``"attention"``: ``{"image_pooling": [B, n], "text_pooling": [B, m]}`` (the pooling weights,
    averaged over glimpses: each row sums to 1 over real items, 0 on padding) and the backbone's
    ``"decoder_i"`` GA maps [B, n, m]. Logits are float32 under any dtype policy.
    """

    def __init__(
        self, backbone: MMnasBackbone, num_outputs: int, scalar_output: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        if scalar_output and num_outputs != 1:
            raise ValueError("scalar_output needs num_outputs=1")
        self.backbone = backbone
        self.num_outputs = num_outputs
        self.scalar_output = scalar_output
        c = backbone.config
        pooling = lambda name: AttentionPooling(  # noqa: E731
            c.hidden_size,
            c.pool_mlp_size,
            c.pool_glimpses,
            c.pool_output_size,
            c.dropout,
            c.dropout_generator,
            name=name,
        )
        self.text_pooling = pooling("text_pooling")
        self.image_pooling = pooling("image_pooling")
        # The fusion LayerNorm and the classifier run in float32 under any policy: logits (and
        # so the sum-reduced losses) stay float32.
        self.fusion_norm = OriginalLayerNorm(name="fusion_norm", dtype="float32")
        self.classifier = keras.layers.Dense(num_outputs, name="classifier", dtype="float32")
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
        pooled_y, image_weights = pool(self.image_pooling, f, "image", training, return_attention)
        fused = self.fusion_norm(ops.cast(pooled_x, "float32") + ops.cast(pooled_y, "float32"))
        logits = self.classifier(fused)
        if self.scalar_output:
            logits = logits[:, 0]
        out = {"logits": logits}
        if return_intermediates:
            out["intermediates"] = {
                **f["intermediates"],
                "text_pooling": pooled_x,
                "image_pooling": pooled_y,
                "fusion_norm": fused,
            }
        if return_attention:
            out["attention"] = {
                **f["attention"],
                "text_pooling": text_weights,
                "image_pooling": image_weights,
            }
        return out

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_outputs": self.num_outputs,
            "scalar_output": self.scalar_output,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
