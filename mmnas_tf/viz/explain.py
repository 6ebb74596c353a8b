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
from mmnas_tf.tasks import get_task, task_names

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


def task_of_outputs(outputs: dict) -> str:
    """The registered task whose serving outputs these are (its ``prediction_output`` is among
    them: VQA ``top_answers``, ITM ``score``, VG ``box``)."""
    tasks = [get_task(name) for name in task_names()]
    for task in tasks:
        if task.prediction_output in outputs:
            return task.name
    wanted = [f"{t.prediction_output} ({t.name.upper()})" for t in tasks]
    raise ValueError(
        f"not a task's explain outputs: {sorted(outputs)}; expected "
        + (", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0])
    )


@dataclasses.dataclass
class Explanation:
    """One example's attention, cut to its real words and regions.

    ``region_weights`` are the image pooling weights (VQA, ITM: they sum to 1) or, for VG, the
    softmax of the object scores over the real regions (renormalised after dropping padding).
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


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


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
      task: "vqa", "itm" or "vg".
      outputs: :func:`explain_outputs` (or the served ``explain`` signature's) outputs.
      inputs: the model inputs they were computed from (boxes, features, image size).
      words: the tokens of the example's sentence, in order (the first m are used).
      answers: the answer list, when ``top_answers`` holds class ids instead of strings.
    """
    get_task(task)  # names the accepted tasks on a typo
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
    out = Explanation(
        task=task,
        words=list(words[:m]),
        word_weights=text_weights[:m].astype(np.float64),
        boxes=boxes,
        region_weights=np.zeros(len(boxes)),
        image_size=(h, w),
    )
    if "region_scores" in o:  # a grounding model: no image pooling, one score per region
        scores = o["region_scores"][real].astype(np.float64)
        out.region_weights = scores / max(scores.sum(), 1e-12)
        out.chosen = int(np.cumsum(real)[int(o["object_index"])] - 1)
        out.box = o["box"].astype(np.float32)
    else:
        out.region_weights = o["image_weights"][real].astype(np.float64)
    if "top_answers" in o:
        labels = [_text(a) for a in o["top_answers"]]
        if answers is not None:
            labels = [answers[int(a)] if a.isdigit() else a for a in labels]
        out.answers = list(zip(labels, (float(s) for s in o["top_scores"])))
    if "score" in o:
        out.score = float(o["score"])
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
