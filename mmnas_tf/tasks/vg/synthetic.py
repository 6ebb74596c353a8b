"""VG's synthetic data: referring expressions with the named object's ground-truth box
(``python -m mmnas_tf.synthetic --task=vg``)."""

from __future__ import annotations

from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.benchmark import Generator, family_text_id

GENERATOR = Generator(
    texts=lambda sc, rng, qset: questions.vg_texts(sc, rng),
    text_id=family_text_id,
    targets=lambda sc, texts, s, rows, qset: {
        "gt_boxes": sc.boxes[s, texts.target[rows.start : rows.stop]]
    },
)
