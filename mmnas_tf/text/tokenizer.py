"""The original MMnas sentence tokenizer, in Python and in-graph (same rules, tested equal).

Rules (the original's ``proc_ques``; docs/original_behaviour.md, "Vocabularies"): lower-case;
delete ``. , ' ! ? " ( ) * # : ;``; turn ``-`` and ``/`` into spaces; split on whitespace;
right-pad / trim to ``max_len`` ids.
"""

from __future__ import annotations

import re

import numpy as np

_DELETE = re.compile(r"[.,'!?\"()*#:;]")
_DELETE_TF = r"[.,'!?\"()*#:;]"


def tokenize(sentence: str) -> list[str]:
    """Splits one sentence into tokens exactly as the original code does."""
    text = _DELETE.sub("", sentence.lower()).replace("-", " ").replace("/", " ")
    return text.split()


def encode(tokens: list[str], vocab, max_len: int) -> np.ndarray:
    """Token ids (int32, right-padded with PAD=0, trimmed to ``max_len``); unknown words -> UNK."""
    ids = np.zeros([max_len], np.int32)
    for i, token in enumerate(tokens[:max_len]):
        ids[i] = vocab.id(token)
    return ids


class TFTokenizer:
    """In-graph version of :func:`tokenize` + :func:`encode` for SavedModel signatures.

    Args:
      vocab_file: path of a vocabulary file (one token per line, line i = id i).
      max_len: int, the padded length.

    Call: ``ids = TFTokenizer(path, 14)(tf.constant(["What colour?"]))`` -> int32 [B, max_len].
    """

    def __init__(self, vocab_file: str, max_len: int, unk_id: int = 1):
        import tensorflow as tf

        self.max_len = max_len
        init = tf.lookup.TextFileInitializer(
            vocab_file,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticHashTable(init, default_value=unk_id)

    def split(self, sentences):
        """The tokens of each sentence, untrimmed (a ragged [B, None] string tensor)."""
        import tensorflow as tf

        text = tf.strings.lower(sentences, encoding="utf-8")
        text = tf.strings.regex_replace(text, _DELETE_TF, "")
        text = tf.strings.regex_replace(text, r"[-/]", " ")
        # Python's str.split() splits on any Unicode whitespace run; match the ASCII + common set.
        return tf.strings.split(tf.strings.strip(text))

    def cut(self, sentences):
        """int32 [B]: how many tokens of each sentence fall beyond ``max_len`` (0 = none)."""
        import tensorflow as tf

        lengths = tf.cast(self.split(sentences).row_lengths(), tf.int32)
        return tf.maximum(lengths - self.max_len, 0)

    def __call__(self, sentences):
        import tensorflow as tf

        tokens = self.split(sentences)[:, : self.max_len]
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        ids = ids.to_tensor(default_value=0, shape=[None, self.max_len])
        return tf.cast(ids, tf.int32)
