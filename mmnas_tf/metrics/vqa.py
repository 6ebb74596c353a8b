"""VQA accuracy (docs/original_behaviour.md, "Metrics"): the official evaluation's per-question
score and a Keras metric.

Official score of a predicted answer: for each of the 10 annotators j,
``min(1, #{k != j : gt_k == pred} / 3)``, averaged over j. With answers normalised as the official
``vqaEval.py`` does (punctuation, number words, articles, contractions), applied, as there, only
when the 10 answers are not all identical.

For an answer in the vocabulary that score equals the soft training target (0.3/0.6/0.9/1.0 for
1/2/3/>=4 annotators), so :class:`VQAAccuracy` computes it in-graph from ``answer_scores`` and the
logits: usable in ``fit``; :func:`vqa_score` scores predicted strings against raw answers (the
number the challenge server reports, which also counts answers outside the vocabulary).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

import keras
from keras import ops

from mmnas_tf.data.answers import process_digit_article, process_punctuation

ANSWER_TYPES = ("yes/no", "number", "other")


def _official_normalize(answer: str) -> str:
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """The official accuracy of ``prediction`` against one question's (up to 10) raw answers."""
    answers = [a for a in answers if a != ""]
    if not answers:
        raise ValueError("a question needs at least one ground-truth answer to be scored")
    pred = prediction.replace("\n", " ").replace("\t", " ").strip()
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if len(set(gts)) > 1:  # the official code only normalises when annotators disagree
        gts = [_official_normalize(a) for a in gts]
        pred = _official_normalize(pred)
    scores = []
    for j in range(len(gts)):
        matches = sum(1 for k, a in enumerate(gts) if k != j and a == pred)
        scores.append(min(1.0, matches / 3.0))
    return sum(scores) / len(scores)


def vqa_accuracy(
    predictions: Mapping[int, str],
    answers: Mapping[int, Sequence[str]],
    answer_types: Mapping[int, str] | None = None,
) -> dict[str, float]:
    """Overall and per-answer-type accuracy in percent, {question id: ...} inputs.

    Returns ``{"overall": ..., "yes/no": ..., "number": ..., "other": ..., "count": n}`` (types
    without questions are left out).
    """
    missing = set(answers) - set(predictions)
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. {sorted(missing)[:3]}")
    per_type: dict[str, list[float]] = collections.defaultdict(list)
    total = []
    for qid, gts in answers.items():
        s = vqa_score(predictions[qid], gts)
        total.append(s)
        if answer_types is not None:
            per_type[answer_types[qid]].append(s)
    out = {"overall": 100.0 * sum(total) / max(len(total), 1), "count": float(len(total))}
    for t, scores in per_type.items():
        out[t] = 100.0 * sum(scores) / len(scores)
    return out


def results_file_entries(predictions: Mapping[int, str]) -> list[dict]:
    """The VQA challenge result format: ``[{"question_id": int, "answer": str}, ...]``."""
    return [{"question_id": int(q), "answer": a} for q, a in sorted(predictions.items())]


@keras.saving.register_keras_serializable(package="mmnas_tf")
class VQAAccuracy(keras.metrics.Mean):
    """Mean official VQA accuracy of the arg-max answer, in-graph (equals the soft score).

    Args:
      answer_type: optional str, one of "yes/no", "number", "other": count only those questions
        (``update_state`` then needs ``answer_type``).
      name: metric name.

    ``update_state(answer_scores [B, k], logits [B, k], answer_type=None [B] string)``.
    """

    def __init__(self, answer_type: str | None = None, name: str | None = None, **kwargs):
        if answer_type is not None and answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type={answer_type!r}; accepted: {ANSWER_TYPES} or None")
        name = name or ("vqa_accuracy" if answer_type is None else f"vqa_accuracy_{answer_type}")
        super().__init__(name=name.replace("/", "_"), **kwargs)
        self.answer_type = answer_type

    def update_state(self, answer_scores, logits, answer_type=None, sample_weight=None):
        best = ops.argmax(logits, axis=-1)
        score = ops.take_along_axis(ops.cast(answer_scores, "float32"), best[:, None], axis=-1)[
            :, 0
        ]
        if self.answer_type is not None:
            if answer_type is None:
                raise ValueError(f"{self.name} needs the answer_type of every question")
            import tensorflow as tf

            keep = ops.cast(tf.equal(answer_type, self.answer_type), "float32")
            sample_weight = keep if sample_weight is None else keep * sample_weight
        return super().update_state(score, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, "answer_type": self.answer_type}
