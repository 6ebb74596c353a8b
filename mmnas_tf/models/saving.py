"""Keeps Keras from tracing its own default signature when our exporter saves a model."""


class ExplicitSignaturesOnly:
    """Mixin for models exported with ``tf.saved_model.save(..., signatures=...)``.

    Keras 3 exposes a ``_default_save_signature`` tf.function on every TF-backend model and
    ``tf.saved_model.save`` traces it with float inputs of the build shapes, which is wrong for
    token ids. Our SavedModels carry explicit, typed signatures instead.
    """

    @property
    def _default_save_signature(self):
        return None
