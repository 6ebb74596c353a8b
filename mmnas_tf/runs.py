"""What a run directory records so evaluation and export rebuild the exact model: ``run.json``
(the experiment, genotype, resolved ModelConfig and answer count), plus data-derived sizes."""

from __future__ import annotations

import json
import os

import numpy as np

from mmnas_tf.config import ModelConfig
from mmnas_tf.data import writer
from mmnas_tf.experiments import ExperimentConfig
from mmnas_tf.files import replaced_when_written
from mmnas_tf.genotype import Genotype

RUN_FILE = "run.json"


def data_sizes(data_dir: str) -> dict:
    """Sizes the data fixes: ``vocab_size`` (vocab.txt lines), ``feature_size`` (manifest
    feature_dim), ``num_answers`` (answers.txt lines; VQA), ``task``."""
    manifest = writer.load_manifest(data_dir)
    out = {"task": manifest["task"], "feature_size": int(manifest["feature_dim"])}
    for key, name in (("vocab_size", writer.VOCAB_FILE), ("num_answers", writer.ANSWERS_FILE)):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                out[key] = sum(1 for line in f if line.rstrip("\n"))
    return out


def resolve_model(exp: ExperimentConfig, genotype: Genotype) -> tuple[ModelConfig, int | None]:
    """(ModelConfig with the genotype and the data's sizes, number of answers)."""
    changes, num_answers = {}, exp.data.num_answers
    if exp.data.data_dir:
        sizes = data_sizes(exp.data.data_dir)
        if sizes["task"] != exp.task:
            raise ValueError(
                f"{exp.data.data_dir} holds {sizes['task']!r} data, the experiment is {exp.task!r}"
            )
        changes["feature_size"] = sizes["feature_size"]
        if "vocab_size" in sizes:
            changes["vocab_size"] = sizes["vocab_size"]
        if num_answers is None:
            num_answers = sizes.get("num_answers")
    return exp.model_config(genotype, **changes), num_answers


def load_embeddings(model, data_dir: str) -> bool:
    """Loads ``embeddings.npy`` (e.g. GloVe) into the word embedding when its shape fits."""
    path = os.path.join(data_dir, writer.EMBEDDINGS_FILE) if data_dir else ""
    if not path or not os.path.exists(path):
        return False
    table = np.load(path)
    var = model.backbone.embedding.embeddings
    if tuple(table.shape) != tuple(var.shape):
        print(f"not loading {path}: shape {table.shape} != embedding {tuple(var.shape)}")
        return False
    var.assign(table.astype(np.float32))
    return True


def save_run(
    model_dir: str,
    exp: ExperimentConfig,
    genotype: Genotype,
    config: ModelConfig,
    num_answers: int | None,
    dtype_policy: str | None = None,
) -> str:
    """Writes ``run.json``; ``dtype_policy``: the Keras policy the run trains in (recorded, not
    reused: evaluation and export choose their own, float32 by default for export)."""
    os.makedirs(model_dir, exist_ok=True)
    data = {
        "experiment": exp.to_dict(),
        "genotype": genotype.to_dict(),
        "model": config.to_dict(),
        "num_answers": num_answers,
    }
    if dtype_policy is not None:
        data["dtype_policy"] = dtype_policy
    path = os.path.join(model_dir, RUN_FILE)
    with replaced_when_written(path) as f:
        json.dump(data, f, indent=1)
    return path


def find_run(checkpoint: str) -> dict | None:
    """The ``run.json`` next to a checkpoint (directory or prefix), or None."""
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    path = os.path.join(folder, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["model"] = ModelConfig.from_dict(data["model"])
    data["genotype"] = Genotype.from_dict(data["genotype"])
    return data
