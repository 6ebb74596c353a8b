import numpy as np
import tensorflow as tf

from mmnas_tf.text import TFTokenizer, Vocabulary, encode, tokenize

TRICKY = [
    'What\'s the colour of the "red" thing?!',
    "Is it left-of/right-of the (big) cube; or: not*#?",
    "   many    spaces\tand\ttabs   ",
    "Unknown zyzzyva words, here.",
    "a very long question that goes on and on past the maximum number of tokens allowed",
    "",
]


def test_python_rules():
    assert tokenize("What's left-of the cube/sphere?") == [
        "whats",
        "left",
        "of",
        "the",
        "cube",
        "sphere",
    ]
    assert tokenize("A (b), c; d: e* #f!") == ["a", "b", "c", "d", "e", "f"]


def test_in_graph_tokenizer_equals_python(tmp_path):
    vocab = Vocabulary.build(tokenize(s) for s in TRICKY[:3] + TRICKY[4:])
    path = str(tmp_path / "vocab.txt")
    vocab.save(path)
    assert Vocabulary.load(path).tokens == vocab.tokens
    tok = TFTokenizer(path, 14)
    expected = np.stack([encode(tokenize(s), vocab, 14) for s in TRICKY])
    np.testing.assert_array_equal(tok(tf.constant(TRICKY)).numpy(), expected)
    ds = tf.data.Dataset.from_tensor_slices(TRICKY).batch(6).map(tok)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), expected)
    assert expected[3, 0] == 1  # 'unknown' is UNK
    assert (expected[5] == 0).all()


def test_vocabulary_validation(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b", "c"])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        Vocabulary.load(str(tmp_path / "nope.txt"))
