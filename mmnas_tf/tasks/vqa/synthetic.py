"""VQA's synthetic data: questions about a scene with one annotated answer
(``python -m mmnas_tf.synthetic --task=vqa``, docs/synthetic_benchmark.md)."""

from __future__ import annotations

import os

from mmnas_tf.data import schema, writer
from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.benchmark import Generator, family_text_id


def _answer_targets(sc, texts, s, rows, qset) -> dict:
    answer = texts.answer[rows.start : rows.stop]
    family = texts.family[rows.start : rows.stop]
    return {
        "answer_scores": [{int(a): 1.0} for a in answer],
        "raw_answers": [[questions.ANSWERS[a]] * schema.NUM_RAW_ANSWERS for a in answer],
        "answer_type": [qset.FAMILIES[f][3] for f in family],
    }


GENERATOR = Generator(
    texts=lambda sc, rng, qset: qset.vqa_texts(sc, 5.0, rng),
    text_id=family_text_id,
    targets=_answer_targets,
    write_files=lambda out_dir: writer.write_lines(
        os.path.join(out_dir, writer.ANSWERS_FILE), questions.ANSWERS
    ),
)
