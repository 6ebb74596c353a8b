"""How our models meet TensorFlow's saving machinery (SavedModel signatures and checkpoints)."""


class ExplicitSignaturesOnly:
    """Mixin for the backbone and task models.

    - Keras 3 exposes a ``_default_save_signature`` tf.function on every TF-backend model and
      ``tf.saved_model.save`` traces it with float inputs of the build shapes, which is wrong for
      token ids. Our SavedModels carry explicit, typed signatures instead.
    - Keras 3 converts its tracked lists (``encoder_blocks``, ``decoder_blocks``) into plain
      children only for SavedModels; in a ``tf.train.Checkpoint`` they were left out, so the
      checkpoint silently lacked every block's weights. They are children in both cases now.
    - Keras 3 casts every floating input of a layer (dicts included) to its ``input_dtype``, the
      compute dtype by default; under ``mixed_bfloat16`` that would round pixel boxes and image
      sizes to bfloat16 (8 bits of mantissa: up to 2 px off at 640) before the relation and box
      features are computed. Our models take float inputs as float32 and cast what they compute
      on themselves.
    """

    @property
    def input_dtype(self):
        return "float32"

    @property
    def _default_save_signature(self):
        return None

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            # Each element under a stable name (a fresh list wrapper per call would break the
            # checkpoint's object identity bookkeeping).
            for attr in ("encoder_blocks", "decoder_blocks"):
                for i, block in enumerate(getattr(self, attr, None) or ()):
                    children.setdefault(f"{attr}_{i}", block)
        return children
