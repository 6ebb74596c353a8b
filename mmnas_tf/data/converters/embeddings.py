"""Word vectors for a token vocabulary: GloVe-format text files, or random init with a warning."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from mmnas_tf.text import Vocabulary

RANDOM_DIM = 300


def load_glove(path: str, vocab: Vocabulary) -> tuple[np.ndarray, int]:
    """[len(vocab), dim] float32 from ``word v1 ... vdim`` lines; returns (matrix, words found).

    Words missing from the file (and UNK, CLS) get small random vectors; PAD is zero. The width
    is the file's.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"word-vector file not found: {path}")
    wanted = {t: i for i, t in enumerate(vocab.tokens)}
    found: dict[int, np.ndarray] = {}
    dim = None
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if dim is None:
                    dim = len(rest.split())
                if word in wanted and wanted[word] not in found:
                    try:
                        values = np.array(rest.split(), np.float32)
                    except ValueError as e:
                        raise ValueError(
                            f"{path}:{line_no}: {e}; expected a word and {dim} numbers"
                        ) from None
                    if len(values) != dim:
                        raise ValueError(f"{path}:{line_no}: {len(values)} values, expected {dim}")
                    found[wanted[word]] = values
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not UTF-8 text ({e.reason}); expected GloVe lines 'word v1 ... vd'"
        ) from None
    if not dim:
        raise ValueError(f"{path}: empty word-vector file")
    matrix = random_embeddings(len(vocab), dim, seed=0)
    for i, v in found.items():
        matrix[i] = v
    matrix[0] = 0
    return matrix, len(found)


def random_embeddings(size: int, dim: int = RANDOM_DIM, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(0, 0.3, (size, dim)).astype(np.float32)
    matrix[0] = 0
    return matrix


def embedding_matrix(vocab: Vocabulary, glove_path: str | None) -> np.ndarray:
    """GloVe vectors when a file is given, otherwise random init (and a warning saying so)."""
    if glove_path:
        matrix, found = load_glove(glove_path, vocab)
        logging.info("word vectors: %d of %d tokens found in %s", found, len(vocab), glove_path)
        return matrix
    logging.warning(
        "no --glove file given: word embeddings are randomly initialised (%d x %d); "
        "the original uses 300-d GloVe",
        len(vocab),
        RANDOM_DIM,
    )
    return random_embeddings(len(vocab))
