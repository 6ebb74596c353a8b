"""The numbers behind an attention picture: what the model looked at for one example.

:func:`explain_outputs` runs a task model with its attention weights returned (the ``explain``
signature of an export calls it); :func:`explanation_from_outputs` turns those outputs, from a
Keras model or a served one alike, into one :class:`Explanation` that
:func:`mmnas_tf.viz.draw_explanation` draws. No drawing library is needed here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmnas_tf import inputs as names
from mmnas_tf.tasks import get_task

#: Name of the SavedModel signature with the explanation outputs.
EXPLAIN_SIGNATURE = "explain"
#: model attention entry -> explain output name (``decoder_i`` GA maps become ``ga_decoder_i``).
OUTPUT_NAMES = {
    "text_pooling": "text_weights",
    "image_pooling": "image_weights",
    "region_scores": "region_scores",
}
GA_PREFIX = "ga_"


def explain_outputs(model, task_name: str, inputs: dict, answer_table=None) -> dict:
    """The task's serving outputs plus, per example: ``text_weights`` [B, m] (text pooling),
    ``image_weights`` [B, n] (image pooling, VQA and ITM), ``region_scores`` [B, n] (VG:
    softmax of the object scores) and ``ga_decoder_i`` [B, n, m] (each decoder GA block's
    region-to-word attention, averaged over heads)."""
    outputs = model(inputs, training=False, return_attention=True)
    out = dict(get_task(task_name).serving_outputs(outputs, inputs, answer_table))
    for name, value in outputs["attention"].items():
        out[OUTPUT_NAMES.get(name, GA_PREFIX + name)] = value
    return out


@dataclasses.dataclass
class Explanation:
    """One example's attention, cut to its real words and regions.

    ``region_weights`` are the task's region weights (``Task.region_weights``: the image pooling
    weights for VQA and ITM, the softmax of the object scores for VG) over the real regions,
    renormalised after dropping padding. ``answers``, ``score``, ``chosen`` and ``box`` are the
    task's annotation (``Task.annotate``), ``chosen`` counted among the real regions.
    """

    task: str
    words: list[str]
    word_weights: np.ndarray  # [m_real], sums to 1
    boxes: np.ndarray  # [n_real, 4] x1 y1 x2 y2 pixels
    region_weights: np.ndarray  # [n_real], sums to 1
    image_size: tuple[int, int]  # (height, width)
    answers: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # VQA
    score: float | None = None  # ITM match score
    chosen: int | None = None  # VG: index of the chosen region
    box: np.ndarray | None = None  # VG: the decoded box
    ga_maps: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [n_real, m_real]

    def top_regions(self, k: int = 3) -> list[int]:
        """Indices of the ``k`` most weighted regions, best first."""
        return [int(i) for i in np.argsort(-self.region_weights, kind="stable")[:k]]


def explanation_from_outputs(
    task: str,
    outputs: dict,
    inputs: dict,
    words: list[str],
    index: int = 0,
    answers: list[str] | None = None,
) -> Explanation:
    """Example ``index`` of explain outputs (numpy or tensors) as an :class:`Explanation`.

    Args:
      task: a registered task name (``mmnas_tf.tasks.task_names()``).
      outputs: :func:`explain_outputs` (or the served ``explain`` signature's) outputs.
      inputs: the model inputs they were computed from (boxes, features, image size).
      words: the tokens of the example's sentence, in order (the first m are used).
      answers: the answer list, when ``top_answers`` holds class ids instead of strings.
    """
    task_obj = get_task(task)  # names the accepted tasks on a typo
    o = {k: np.asarray(v)[index] for k, v in outputs.items()}
    features = np.asarray(inputs[names.IMAGE_FEATURES])[index]
    real = np.abs(features).sum(-1) != 0
    boxes = np.asarray(inputs[names.BOXES], np.float32)[index][real]
    if names.IMAGE_SIZE in inputs:
        h, w = (int(v) for v in np.asarray(inputs[names.IMAGE_SIZE])[index])
    else:  # no image size given: the canvas just holds every box
        h, w = (int(np.ceil(boxes[:, [3, 2]].max(0).max())) + 1,) * 2 if len(boxes) else (1, 1)
    text_weights = o["text_weights"]
    m = min(len(words), len(text_weights))
    weights = o[task_obj.region_weights][real].astype(np.float64)
    note = task_obj.annotate(outputs, index, answers)
    out = Explanation(
        task=task,
        words=list(words[:m]),
        word_weights=text_weights[:m].astype(np.float64),
        boxes=boxes,
        region_weights=weights / max(weights.sum(), 1e-12),
        image_size=(h, w),
        answers=note.answers,
        score=note.score,
        chosen=None if note.chosen is None else int(np.cumsum(real)[note.chosen] - 1),
        box=note.box,
    )
    for key, value in o.items():
        if key.startswith(GA_PREFIX):
            out.ga_maps[key[len(GA_PREFIX) :]] = value[real][:, :m]
    return out


def explain_example(
    model, task: str, inputs: dict, words: list[str], answers: list[str] | None = None
) -> Explanation:
    """Runs ``model`` on a batch of one with its attention returned; see
    :func:`explanation_from_outputs`."""
    outputs = explain_outputs(model, task, inputs)
    return explanation_from_outputs(task, outputs, inputs, words, 0, answers)


def describe(explanation: Explanation, top: int = 3) -> str:
    """The explanation as readable lines (answer / score / box, then where the model looked)."""
    e = explanation
    lines = []
    if e.answers:
        lines.append(f"answer: {e.answers[0][0]} (score {e.answers[0][1]:.4f})")
        lines.append("top 5: " + ", ".join(f"{a} ({s:.4f})" for a, s in e.answers[:5]))
    if e.score is not None:
        lines.append(f"match score: {e.score:.4f}")
    if e.box is not None:
        lines.append(f"box: [{', '.join(f'{v:.1f}' for v in e.box)}] (region {e.chosen})")
    regions = ", ".join(
        f"{i} [{', '.join(f'{v:.0f}' for v in e.boxes[i])}] {e.region_weights[i]:.3f}"
        for i in e.top_regions(top)
    )
    lines.append(f"most attended regions: {regions}")
    words = sorted(zip(e.word_weights, e.words), reverse=True)[:top]
    lines.append("most attended words: " + ", ".join(f"{w} {p:.3f}" for p, w in words))
    return "\n".join(lines)
