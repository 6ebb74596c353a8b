"""VQA-v2: official question / annotation JSON (+ Visual Genome augmentation in the same format).

Files: ``v2_OpenEnded_mscoco_<split>_questions.json`` ({"data_subtype", "questions": [{image_id,
question, question_id}]}) and ``v2_mscoco_<split>_annotations.json`` ({"annotations":
[{question_id, image_id, answers: [{answer, ...}] x 10, multiple_choice_answer, answer_type}]}).

A source labelled ``vg`` is the Visual Genome augmentation: its questions join ``train`` (as the
original merges them), its words come last in the token vocabulary and its answers are not
counted for the answer vocabulary (the original's rules, see docs/original_behaviour.md).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from absl import logging

from mmnas_tf.data import answers as answer_lib
from mmnas_tf.data import writer
from mmnas_tf.data.converters.common import (
    ImageItem,
    load_json,
    parse_split_spec,
    read_rank,
    reading,
)

VG = "vg"
"""Split label of the Visual Genome augmentation (merged into ``train``)."""
_QUESTION = "{image_id, question, question_id}"
_ANNOTATION = "{question_id, answers: [{answer}], multiple_choice_answer, answer_type}"


@dataclasses.dataclass(frozen=True)
class Source:
    """One ``--vqa=LABEL:QUESTIONS[:ANNOTATIONS]``; ``split`` is where its questions go."""

    label: str
    questions: str
    annotations: str | None = None

    @property
    def split(self) -> str:
        return "train" if self.label == VG else self.label


def parse_sources(specs: Sequence[str]) -> list[Source]:
    """``--vqa`` values -> sources in the original's reading order (train, val, test, other
    labels in flag order, then vg)."""
    if not specs:
        raise ValueError(
            "--task=vqa needs at least one --vqa=SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]"
        )
    sources = [
        Source(*parse_split_spec("vqa", s, ("QUESTIONS_JSON", "[ANNOTATIONS_JSON]"))) for s in specs
    ]
    for s in sources:
        if s.label != VG and os.path.basename(s.questions).upper().startswith("VG"):
            logging.warning(
                "--vqa=%s:%s looks like the Visual Genome augmentation: label it vg: so that it is "
                "read last and its answers are not counted, as the original does",
                s.label,
                s.questions,
            )
    return sorted(sources, key=lambda s: (s.label == VG, read_rank(s.label)))


def _load(path: str, key: str) -> dict:
    data = load_json(path, f"an official VQA-v2 {key} file ({{{key!r}: [...]}})")
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{path}: no {key!r} list; is this an official VQA-v2 {key} file?")
    return data


def answer_files(sources: Sequence[Source]) -> list[str]:
    """Annotation files the answer vocabulary is counted over: all but Visual Genome's."""
    return [s.annotations for s in sources if s.annotations and s.label != VG]


def answer_vocabulary(out_dir: str, annotation_files: Sequence[str], min_count: int) -> list[str]:
    """Reuses ``answers.txt`` when present, else builds it (normalised ``multiple_choice_answer``
    seen >= ``min_count`` times over ``annotation_files`` in that order, first-appearance order)."""
    path = os.path.join(out_dir, writer.ANSWERS_FILE)
    if os.path.exists(path):
        return answer_lib.load_answers(path)
    answers = []
    for f in annotation_files:
        for i, a in enumerate(_load(f, "annotations")["annotations"]):
            with reading(f, f"annotation {i}", _ANNOTATION):
                answers.append(a["multiple_choice_answer"])
    vocab = answer_lib.build_answer_vocab(answers, min_count)
    if not vocab:
        raise ValueError(
            f"no answer is seen {min_count} times in {list(annotation_files)}; lower --min_answer_count"
        )
    os.makedirs(out_dir, exist_ok=True)
    answer_lib.save_answers(vocab, path)
    return vocab


def vqa_splits(
    sources: Sequence[Source], answer_vocab: Sequence[str]
) -> dict[str, list[ImageItem]]:
    """Output split -> items; questions on the same image within a split (e.g. VQA train + VG
    augmentation) merge into one item. Each question's ``position`` is its place in the reading
    order of ``sources`` (the order :func:`parse_sources` returns), which fixes the token ids."""
    to_id = {a: i for i, a in enumerate(answer_vocab)}
    splits: dict[str, dict[int, ImageItem]] = {}
    position = 0
    for src in sources:
        items = splits.setdefault(src.split, {})
        qdata = _load(src.questions, "questions")
        subtype = qdata.get("data_subtype", "")
        anns = {}
        if src.annotations:
            for i, a in enumerate(_load(src.annotations, "annotations")["annotations"]):
                with reading(src.annotations, f"annotation {i}", _ANNOTATION):
                    anns[a["question_id"]] = a
        for i, q in enumerate(qdata["questions"]):
            with reading(src.questions, f"question {i}", _QUESTION):
                image_id, qid, text = int(q["image_id"]), q["question_id"], str(q["question"])
            if image_id not in items:
                names = [f"COCO_{subtype}_{image_id:012d}.jpg"] if subtype else []
                items[image_id] = ImageItem(image_id, names or [f"{image_id:012d}"])
            ann = anns.get(qid)
            if src.annotations and ann is None:
                raise ValueError(
                    f"{src.annotations}: no annotation for question_id {qid} of {src.questions}"
                )
            with reading(
                src.annotations or src.questions, f"annotation of question {qid}", _ANNOTATION
            ):
                raw = [a["answer"] for a in ann["answers"]] if ann else []
                answer_type = ann["answer_type"] if ann else ""
            items[image_id].add(
                text,
                qid,
                position=position,
                answer_scores=answer_lib.answer_scores(raw, to_id),
                raw_answers=raw,
                answer_type=answer_type,
            )
            position += 1
    out = {}
    for name, items in splits.items():
        for item in items.values():  # a split without annotations stores none (not empty strings)
            if not any(item.targets["raw_answers"]):
                item.targets["raw_answers"], item.targets["answer_type"] = None, None
        out[name] = list(items.values())
    return out
