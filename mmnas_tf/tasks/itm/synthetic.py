"""ITM's synthetic data: captions without targets (``python -m mmnas_tf.synthetic --task=itm``)."""

from __future__ import annotations

from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.benchmark import Generator

# text_id is the caption's global index (the feature store's rows)
GENERATOR = Generator(
    texts=lambda sc, rng, qset: questions.itm_texts(sc, rng), text_id=lambda s, j, f: s * 5 + j
)
