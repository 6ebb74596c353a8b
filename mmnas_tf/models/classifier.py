"""VQA and ITM model: pooled fusion of both streams, then a linear classifier (paper Sec. 3.3)."""

from __future__ import annotations

import keras

from mmnas_tf.layers import AttentionPooling, OriginalLayerNorm
from mmnas_tf.models.backbone import MMnasBackbone
from mmnas_tf.models.saving import ExplicitSignaturesOnly


@keras.saving.register_keras_serializable(package="mmnas_tf")
class MMnasClassifier(ExplicitSignaturesOnly, keras.Model):
    """``z = LN(pool_x(X) + pool_y(Y))``, ``logits = Linear_{o->k}(z)``.

    VQA uses k = number of answers (logits for sigmoid BCE over soft scores); ITM uses k = 1 with
    ``scalar_output=True`` (one matching logit per pair, sigmoid gives the score).

    Args:
      backbone: a ``MMnasBackbone``.
      num_outputs: int, k.
      scalar_output: bool, squeeze [B, 1] logits to [B] (ITM).

    Call: ``model(inputs, training=None, arch=None, return_intermediates=False)`` ->
    ``{"logits": [B, k] or [B]}``.
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
            name=name,
        )
        self.text_pooling = pooling("text_pooling")
        self.image_pooling = pooling("image_pooling")
        self.fusion_norm = OriginalLayerNorm(name="fusion_norm")
        self.classifier = keras.layers.Dense(num_outputs, name="classifier")
        self.built = True
        self(backbone.dummy_inputs(), training=False)

    def call(self, inputs, training=None, arch=None, return_intermediates=False):
        f = self.backbone(
            inputs, training=training, arch=arch, return_intermediates=return_intermediates
        )
        pooled_x = self.text_pooling(f["text"], f["text_mask"], training=training)
        pooled_y = self.image_pooling(f["image"], f["image_mask"], training=training)
        fused = self.fusion_norm(pooled_x + pooled_y)
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
