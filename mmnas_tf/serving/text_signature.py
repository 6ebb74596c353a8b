"""The ``predict_text`` signature: raw question strings in, tokenised in-graph, the outputs of
``serving_default`` plus ``truncated_tokens`` (int32 [B]: the tokens of each question beyond the
model's m, which it did not read; 0 = the whole question was read).

The vocabulary file becomes a SavedModel asset because the tokenizer's lookup table is tracked by
the module being saved, so a client needs no vocabulary to send questions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import tensorflow as tf

from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, IMAGE_SIZE, TEXT_IDS
from mmnas_tf.text import TFTokenizer

TEXT = "text"
PREDICT_TEXT = "predict_text"
TRUNCATED_TOKENS = "truncated_tokens"


def make_text_signature(
    owner: tf.Module,
    call: Callable[[dict[str, tf.Tensor]], Mapping[str, tf.Tensor]],
    vocab_file: str,
    input_specs: Mapping[str, tf.TensorSpec],
    max_len: int | None = None,
) -> tf.types.experimental.ConcreteFunction:
    """A concrete ``predict_text`` function (``text`` [B] strings + the image inputs of ``input_specs``).

    Args:
      owner: the tf.Module that will be saved; it keeps the vocabulary table (and so the asset).
      call: maps a dict of contract inputs to the output dict, as serving_default does.
      vocab_file: the token vocabulary, one token per line (line i = id i).
      input_specs: serving_default's input specs.
      max_len: questions are trimmed / padded to this many tokens (default: ``text_ids``' fixed
        length m).
    """
    max_len = max_len or input_specs[TEXT_IDS].shape[1]
    if max_len is None:
        raise ValueError("give max_len: text_ids has no fixed length m to tokenise to")
    tokenizer = TFTokenizer(vocab_file, max_len)
    owner.text_vocabulary_table = tokenizer.table
    text_spec = tf.TensorSpec([None], tf.string, name=TEXT)
    image_names = [k for k in (IMAGE_FEATURES, BOXES, IMAGE_SIZE) if k in input_specs]
    unknown = set(input_specs) - set(image_names) - {TEXT_IDS}
    if unknown:
        raise ValueError(f"cannot build predict_text for inputs {sorted(unknown)}")
    specs = [text_spec] + [
        tf.TensorSpec(input_specs[k].shape, input_specs[k].dtype, name=k) for k in image_names
    ]

    def run(text, *images):
        outputs = dict(call({TEXT_IDS: tokenizer(text), **dict(zip(image_names, images))}))
        return {**outputs, TRUNCATED_TOKENS: tokenizer.cut(text)}

    # Signatures need named positional parameters; build one with exactly the model's image inputs.
    if IMAGE_SIZE in image_names:

        def predict_text(text, image_features, boxes, image_size):
            return run(text, image_features, boxes, image_size)
    else:

        def predict_text(text, image_features, boxes):
            return run(text, image_features, boxes)

    return tf.function(predict_text, input_signature=specs).get_concrete_function()
