"""The built-in synthetic benchmark: scenes -> regions -> texts -> the task's TFRecord format.

Writes the same shards, ``manifest.json``, ``vocab.txt`` (and ``answers.txt`` for VQA) and
``embeddings.npy`` as the converters of real data, so every command runs on it unchanged.

What is written depends on the task, not on its name: each task's folder holds its
:class:`Generator` (questions with answers, captions without targets, referring expressions with a
ground-truth box), which ``Task.synthetic_generator()`` returns. This package sits below
``tasks`` in the layering so that the task folders can build on its scenes and question families.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from mmnas_tf.data import schema, writer
from mmnas_tf.synthbench import attributes, questions, scenes, structured
from mmnas_tf.text import Vocabulary, tokenize

SIZES = tuple(scenes.SCENE_SETTINGS)
DEFAULT_IMAGES = {"tiny": 240, "full": 10000, "quick": 400}
EMBEDDING_DIM = 300
#: VQA question sets: the module holding FAMILIES and vqa_texts (docs/synthetic_benchmark.md).
QUESTION_SETS = {"standard": questions, "structured": structured, "attributes": attributes}
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


@dataclasses.dataclass(frozen=True)
class Generator:
    """How the benchmark writes one task's texts and targets; a task returns its own from
    ``Task.synthetic_generator()`` (kept in the task's folder, e.g. ``tasks/vqa/synthetic.py``).

    Attributes:
      texts: ``fn(scenes, rng, question_set) -> questions.Texts``; ``question_set`` is the module
        holding the VQA families (a value of :data:`QUESTION_SETS`).
      text_id: ``fn(scene index, text position, family) -> int`` (the record's ``text_id``).
      targets: ``fn(scenes, texts, scene index, rows, question_set) -> {record key: value}``.
      write_files: ``fn(out_dir)`` for the task's extra files (e.g. ``answers.txt``).
    """

    texts: Callable[[scenes.Scenes, np.random.Generator, Any], questions.Texts]
    text_id: Callable[[int, int, int], int]
    targets: Callable[..., dict] = lambda sc, texts, s, rows, qset: {}
    write_files: Callable[[str], None] = lambda out_dir: None


def generator_for(task: schema.RecordFormat) -> Generator:
    """The generator of ``task`` (its ``synthetic_generator()``)."""
    schema.check_format(task)
    make = getattr(task, "synthetic_generator", None)
    gen = make() if make is not None else None
    if not isinstance(gen, Generator):
        raise ValueError(
            f"task {task.name!r} has no synthetic generator: its synthetic_generator() returned "
            f"{gen!r}, not a mmnas_tf.synthbench.benchmark.Generator"
        )
    return gen


def family_text_id(s: int, j: int, family: int) -> int:
    """``text_id`` of text ``j`` of scene ``s`` from question family ``family``."""
    return s * 1000 + int(family) * 100 + j


def generate(
    task: schema.RecordFormat,
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
    (``mmnas_tf.tasks.get_task(name)``) with its generator (VQA: the questions of
    ``question_set``, a key of :data:`QUESTION_SETS`).

    Returns the manifest. Same arguments -> identical files.
    """
    gen = generator_for(task)
    if question_set not in QUESTION_SETS:
        raise ValueError(
            f"unknown question_set {question_set!r}; expected one of {tuple(QUESTION_SETS)}"
        )
    qset = QUESTION_SETS[question_set]
    if size not in scenes.SCENE_SETTINGS:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    if feature_dtype not in schema.FEATURE_DTYPES:
        raise ValueError(
            f"feature_dtype={feature_dtype!r}; expected one of {schema.FEATURE_DTYPES}"
        )
    spec = scenes.SCENE_SETTINGS[size]
    if feature_dim:
        spec = scenes.SceneSpec(**{**spec.__dict__, "feature_dim": feature_dim})
    num_images = num_images or DEFAULT_IMAGES[size]
    splits = {"train": num_images, "val": max(num_images // 5, 1)}
    data = {}
    for split_id, (split, n) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, split_id])
        sc = scenes.sample_scenes(n, spec, rng)
        data[split] = (sc, gen.texts(sc, rng, qset), seed * 1000 + split_id)
    vocab = Vocabulary.build(tokenize(t) for sc, texts, _ in data.values() for t in texts.text)
    os.makedirs(out_dir, exist_ok=True)
    vocab.save(os.path.join(out_dir, writer.VOCAB_FILE))
    gen.write_files(out_dir)
    emb = np.random.default_rng(seed).normal(0, 0.3, (len(vocab), EMBEDDING_DIM)).astype(np.float32)
    emb[0] = 0
    np.save(os.path.join(out_dir, writer.EMBEDDINGS_FILE), emb)
    for split, (sc, texts, render_seed) in data.items():
        render = _Renderer(sc, spec, render_seed, feature_dtype)
        starts = np.searchsorted(texts.scene, np.arange(len(sc) + 1))

        def make_record(
            index: int, _: int, sc=sc, texts=texts, render=render, starts=starts
        ) -> dict:
            return _record(gen, sc, texts, render, starts, index, vocab, qset)

        shards = num_shards or max(1, min(8, len(sc) // 500))
        writer.write_split(out_dir, split, task, range(len(sc)), make_record, shards, progress)
    source = f"synthetic/{size}/seed{seed}"
    if question_set != "standard":
        source += f"/{question_set}"
    return writer.update_manifest(out_dir, task.name, {"source": source})


def _record(gen: Generator, sc, texts, render, starts, s, vocab, qset) -> dict:
    features, boxes = render(s)
    rows = range(starts[s], starts[s + 1])
    family = texts.family[rows.start : rows.stop]
    return {
        "image_id": s,
        "image_index": s,
        "image_size": (scenes.IMAGE_H, scenes.IMAGE_W),
        "features": features,
        "boxes": boxes,
        "texts": [texts.text[i] for i in rows],
        "text_ids": [[vocab.id(t) for t in tokenize(texts.text[i])] for i in rows],
        "text_id": [gen.text_id(s, j, f) for j, f in enumerate(family)],
        **gen.targets(sc, texts, s, rows, qset),
    }
