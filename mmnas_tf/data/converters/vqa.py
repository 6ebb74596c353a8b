"""VQA-v2: official question / annotation JSON (+ Visual Genome augmentation in the same format).

Files: ``v2_OpenEnded_mscoco_<split>_questions.json`` ({"data_subtype", "questions": [{image_id,
question, question_id}]}) and ``v2_mscoco_<split>_annotations.json`` ({"annotations":
[{question_id, image_id, answers: [{answer, ...}] x 10, multiple_choice_answer, answer_type}]}).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from mmnas_tf.data import answers as answer_lib
from mmnas_tf.data import writer
from mmnas_tf.data.converters.common import ImageItem


def _load(path: str, key: str) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"VQA file not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if key not in data:
        raise ValueError(f"{path}: no {key!r} list; is this an official VQA-v2 {key} file?")
    return data


def answer_vocabulary(out_dir: str, annotation_files: Sequence[str], min_count: int) -> list[str]:
    """Reuses ``answers.txt`` when present, else builds it (normalised ``multiple_choice_answer``
    seen >= ``min_count`` times over every annotation file, first-appearance order)."""
    path = os.path.join(out_dir, writer.ANSWERS_FILE)
    if os.path.exists(path):
        return answer_lib.load_answers(path)
    answers = [
        a["multiple_choice_answer"]
        for f in annotation_files
        for a in _load(f, "annotations")["annotations"]
    ]
    vocab = answer_lib.build_answer_vocab(answers, min_count)
    if not vocab:
        raise ValueError(
            f"no answer is seen {min_count} times in {list(annotation_files)}; lower --min_answer_count"
        )
    os.makedirs(out_dir, exist_ok=True)
    answer_lib.save_answers(vocab, path)
    return vocab


def vqa_items(
    sources: Sequence[tuple[str, str | None]], answer_vocab: Sequence[str]
) -> list[ImageItem]:
    """Items of one output split from (questions, annotations-or-None) file pairs; questions on the
    same image (e.g. VQA train + VG augmentation) merge into one item."""
    to_id = {a: i for i, a in enumerate(answer_vocab)}
    items: dict[int, ImageItem] = {}
    for q_path, a_path in sources:
        qdata = _load(q_path, "questions")
        subtype = qdata.get("data_subtype", "")
        anns = {}
        if a_path:
            anns = {a["question_id"]: a for a in _load(a_path, "annotations")["annotations"]}
        for q in qdata["questions"]:
            image_id = int(q["image_id"])
            if image_id not in items:
                names = [f"COCO_{subtype}_{image_id:012d}.jpg"] if subtype else []
                items[image_id] = ImageItem(image_id, names or [f"{image_id:012d}"])
            ann = anns.get(q["question_id"])
            if a_path and ann is None:
                raise ValueError(
                    f"{a_path}: no annotation for question_id {q['question_id']} of {q_path}"
                )
            raw = [a["answer"] for a in ann["answers"]] if ann else []
            items[image_id].add(
                q["question"],
                q["question_id"],
                answer_scores=answer_lib.answer_scores(raw, to_id),
                raw_answers=raw,
                answer_type=ann["answer_type"] if ann else "",
            )
    for item in items.values():  # a split without annotations stores none (not empty strings)
        if not any(item.targets["raw_answers"]):
            item.targets["raw_answers"], item.targets["answer_type"] = None, None
    return list(items.values())
