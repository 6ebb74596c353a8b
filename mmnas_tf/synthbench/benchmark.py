"""The built-in synthetic benchmark: scenes -> regions -> texts -> the task's TFRecord format.

Writes the same shards, ``manifest.json``, ``vocab.txt`` (and ``answers.txt`` for VQA) and
``embeddings.npy`` as the converters of real data, so every command runs on it unchanged.
"""

from __future__ import annotations

import os

import numpy as np

from mmnas_tf.data import schema, writer
from mmnas_tf.synthbench import questions, scenes, structured
from mmnas_tf.text import Vocabulary, tokenize

SIZES = tuple(scenes.SPECS)
DEFAULT_IMAGES = {"tiny": 240, "full": 10000}
EMBEDDING_DIM = 300
#: VQA question sets: the module holding FAMILIES and vqa_texts (docs/synthetic_benchmark.md).
QUESTION_SETS = {"standard": questions, "structured": structured}
_CHUNK = 256  # images rendered together (vectorised); seeded per chunk, so resumable runs agree


class _Renderer:
    """Renders regions lazily, one chunk of images at a time, reproducibly per chunk."""

    def __init__(self, sc: scenes.Scenes, spec: scenes.SceneSpec, seed: int, dtype: str):
        self.scenes, self.spec, self.seed, self.dtype = sc, spec, seed, dtype
        self._chunk, self._regions = -1, None

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chunk = index // _CHUNK
        if chunk != self._chunk:
            rng = np.random.default_rng([self.seed, chunk])
            part = self.scenes[chunk * _CHUNK : (chunk + 1) * _CHUNK]
            self._chunk, self._regions = (
                chunk,
                scenes.render_regions(part, self.spec, rng, self.dtype),
            )
        r, j = self._regions, index - chunk * _CHUNK
        return r.features[r.offsets[j] : r.offsets[j + 1]], r.boxes[r.offsets[j] : r.offsets[j + 1]]


def _texts(task: str, sc: scenes.Scenes, rng: np.random.Generator, qset) -> questions.Texts:
    if task == "vqa":
        return qset.vqa_texts(sc, 5.0, rng)
    if task == "itm":
        return questions.itm_texts(sc, rng)
    return questions.vg_texts(sc, rng)


def generate(
    task: str,
    out_dir: str,
    size: str = "tiny",
    num_images: int | None = None,
    seed: int = 0,
    feature_dtype: str = "float16",
    num_shards: int | None = None,
    feature_dim: int | None = None,
    progress: bool = False,
    question_set: str = "standard",
) -> dict:
    """Writes splits ``train`` (``num_images`` images) and ``val`` (a fifth of that) of ``task``
    (VQA: the questions of ``question_set``, a key of :data:`QUESTION_SETS`).

    Returns the manifest. Same arguments -> identical files.
    """
    schema.check_task(task)
    if question_set not in QUESTION_SETS:
        raise ValueError(
            f"unknown question_set {question_set!r}; expected one of {tuple(QUESTION_SETS)}"
        )
    qset = QUESTION_SETS[question_set]
    if size not in scenes.SPECS:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    if feature_dtype not in schema.FEATURE_DTYPES:
        raise ValueError(
            f"feature_dtype={feature_dtype!r}; expected one of {schema.FEATURE_DTYPES}"
        )
    spec = scenes.SPECS[size]
    if feature_dim:
        spec = scenes.SceneSpec(**{**spec.__dict__, "feature_dim": feature_dim})
    num_images = num_images or DEFAULT_IMAGES[size]
    splits = {"train": num_images, "val": max(num_images // 5, 1)}
    data = {}
    for split_id, (split, n) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, split_id])
        sc = scenes.sample_scenes(n, spec, rng)
        data[split] = (sc, _texts(task, sc, rng, qset), seed * 1000 + split_id)
    vocab = Vocabulary.build(tokenize(t) for sc, texts, _ in data.values() for t in texts.text)
    os.makedirs(out_dir, exist_ok=True)
    vocab.save(os.path.join(out_dir, writer.VOCAB_FILE))
    if task == "vqa":
        writer.write_lines(os.path.join(out_dir, writer.ANSWERS_FILE), questions.ANSWERS)
    emb = np.random.default_rng(seed).normal(0, 0.3, (len(vocab), EMBEDDING_DIM)).astype(np.float32)
    emb[0] = 0
    np.save(os.path.join(out_dir, writer.EMBEDDINGS_FILE), emb)
    for split, (sc, texts, render_seed) in data.items():
        render = _Renderer(sc, spec, render_seed, feature_dtype)
        starts = np.searchsorted(texts.scene, np.arange(len(sc) + 1))

        def make_record(
            index: int, _: int, sc=sc, texts=texts, render=render, starts=starts
        ) -> dict:
            return _record(task, sc, texts, render, starts, index, vocab, qset.FAMILIES)

        shards = num_shards or max(1, min(8, len(sc) // 500))
        writer.write_split(out_dir, split, task, range(len(sc)), make_record, shards, progress)
    source = f"synthetic/{size}/seed{seed}"
    if question_set != "standard":
        source += f"/{question_set}"
    return writer.update_manifest(out_dir, task, {"source": source})


def _record(task, sc, texts, render, starts, s, vocab, families) -> dict:
    features, boxes = render(s)
    rows = range(starts[s], starts[s + 1])
    family = texts.family[rows.start : rows.stop]
    rec = {
        "image_id": s,
        "image_index": s,
        "image_size": (scenes.IMAGE_H, scenes.IMAGE_W),
        "features": features,
        "boxes": boxes,
        "texts": [texts.text[i] for i in rows],
        "text_ids": [[vocab.id(t) for t in tokenize(texts.text[i])] for i in rows],
    }
    if task == "itm":
        rec["text_id"] = [s * 5 + j for j in range(len(rows))]
    else:
        rec["text_id"] = [s * 1000 + int(f) * 100 + j for j, f in enumerate(family)]
    if task == "vqa":
        answers = [questions.ANSWERS[a] for a in texts.answer[rows.start : rows.stop]]
        rec["answer_scores"] = [{int(a): 1.0} for a in texts.answer[rows.start : rows.stop]]
        rec["raw_answers"] = [[a] * schema.NUM_RAW_ANSWERS for a in answers]
        rec["answer_type"] = [families[f][3] for f in family]
    elif task == "vg":
        rec["gt_boxes"] = sc.boxes[s, texts.target[rows.start : rows.stop]]
    return rec
