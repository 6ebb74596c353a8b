"""VQA accuracy (docs/original_behaviour.md, "Metrics"): the official evaluation's per-question
score and the in-vocabulary accuracy as a Keras metric.

:func:`vqa_score` and :func:`vqa_accuracy` compute what the official ``vqaEval.py`` computes,
question by question, including where its rule is not the obvious one:

1. the prediction is always normalised: newlines and tabs to spaces, stripped, then
   ``processPunctuation`` and ``processDigitArticle`` (number words, articles, contractions);
2. the ground-truth answers are normalised only with ``processPunctuation`` (no lower-casing, no
   number words, no articles), and only when the answers are not all the same string;
3. the score is, for each annotator ``j``, ``min(1, #{k != j : gt_k == prediction} / 3)``,
   averaged over the annotators; overall and per-type figures are ``100 * sum / count`` rounded to
   two decimals.

So ten annotators writing "the dog" give the prediction "the dog" a score of 0 (it became "dog").

:class:`VQAAccuracy` is a different number: the soft training target (0.3/0.6/0.9/1.0 for 1/2/3/>=4
annotators, answers normalised by the converter) of the arg-max answer, computed in-graph. It is the
accuracy within the answer vocabulary, usable in ``fit``; only :func:`vqa_accuracy` is the official
figure.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

import keras
from keras import ops

from mmnas_tf.data.answers import process_digit_article, process_punctuation

ANSWER_TYPES = ("yes/no", "number", "other")
IN_VOCABULARY = "in_vocabulary_accuracy"
"""The name :class:`VQAAccuracy` logs under (and the evaluation's key for it)."""
OFFICIAL_DECIMALS = 2
"""The official evaluation rounds every accuracy it reports to two decimals."""


def _normalize_prediction(prediction: str) -> str:
    text = prediction.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """The official accuracy in [0, 1] of ``prediction`` against one question's raw ground-truth
    answers (10 in VQA; every entry counts, empty strings included)."""
    if not answers:
        raise ValueError("a question needs at least one ground-truth answer to be scored")
    pred = _normalize_prediction(prediction)
    gts = list(answers)
    if len(set(gts)) > 1:  # rule 2: punctuation only, and only when the annotators disagree
        gts = [process_punctuation(a) for a in gts]
    # each annotator is left out in turn (the official code drops that annotator's record)
    matching = sum(1 for a in gts if a == pred)
    accs = [min(1, float(matching - (a == pred)) / 3) for a in gts]
    return float(sum(accs)) / len(accs)


def vqa_accuracy(
    predictions: Mapping[int, str],
    answers: Mapping[int, Sequence[str]],
    answer_types: Mapping[int, str] | None = None,
    decimals: int | None = OFFICIAL_DECIMALS,
) -> dict[str, float]:
    """Official overall and per-answer-type accuracy in percent, {question id: ...} inputs, summed
    in the order of ``answers`` (the official code sums in the annotation file's order).

    Returns ``{"overall": ..., "yes/no": ..., "number": ..., "other": ...}``: accuracies only (types
    without questions are left out), rounded to ``decimals`` as the official code does (None: not
    rounded).
    """
    missing = set(answers) - set(predictions)
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. {sorted(missing)[:3]}")
    if not answers:
        raise ValueError("no annotated question to score")
    per_type: dict[str, list[float]] = collections.defaultdict(list)
    total = []
    for qid, gts in answers.items():
        s = vqa_score(predictions[qid], gts)
        total.append(s)
        if answer_types is not None:
            per_type[answer_types[qid]].append(s)

    def percent(scores: list[float]) -> float:
        value = 100 * float(sum(scores)) / len(scores)
        return value if decimals is None else round(value, decimals)

    out = {"overall": percent(total)}
    for t, scores in per_type.items():
        out[t] = percent(scores)
    return out


def results_file_entries(predictions: Mapping[int, str]) -> list[dict]:
    """The VQA challenge result format: ``[{"question_id": int, "answer": str}, ...]``."""
    return [{"question_id": int(q), "answer": a} for q, a in sorted(predictions.items())]


@keras.saving.register_keras_serializable(package="mmnas_tf")
class VQAAccuracy(keras.metrics.Mean):
    """In-vocabulary accuracy, in-graph: the mean soft score (``answer_scores``) of the arg-max
    answer. Not the official figure: answers outside the vocabulary count nowhere and the soft
    scores come from the converter's normalisation of every answer (see the module docstring);
    :func:`vqa_accuracy` is the official one.

    Args:
      answer_type: optional str, one of "yes/no", "number", "other": count only those questions
        (``update_state`` then needs ``answer_type``).
      name: metric name.

    ``update_state(answer_scores [B, k], logits [B, k], answer_type=None [B] string)``.
    """

    def __init__(self, answer_type: str | None = None, name: str | None = None, **kwargs):
        if answer_type is not None and answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type={answer_type!r}; accepted: {ANSWER_TYPES} or None")
        name = name or (IN_VOCABULARY if answer_type is None else f"{IN_VOCABULARY}_{answer_type}")
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
