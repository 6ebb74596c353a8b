"""What a run directory records so evaluation and export rebuild the exact model: ``run.json``
(the experiment, genotype and resolved ModelConfig, answer count included), and the one place a
run takes its sizes from its data (:func:`resolve_experiment`, used by train, search and
evaluate)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np

from mmnas_tf.config import ModelConfig, keep_dropout_generator
from mmnas_tf.data import writer
from mmnas_tf.experiments import DATA_SIZES, ExperimentConfig
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


#: The most regions / tokens a size that follows the data (``data.sizes_from_data``) takes;
#: beyond it the data is cut, and the run says so.
SIZE_CAPS = {"max_regions": 100, "max_tokens": 64}


def resolve_experiment(exp: ExperimentConfig) -> ExperimentConfig:
    """The experiment with its data's sizes in ``model`` and ``search_model``.

    The one place a run not bound to a checkpoint takes its sizes from ``exp.data.data_dir``:
    ``feature_size`` (manifest feature_dim), ``vocab_size`` (vocab.txt), ``num_answers``
    (answers.txt, where a model leaves it None) and, for the names in ``data.sizes_from_data``,
    ``max_regions`` / ``max_tokens``: the largest of any split, up to :data:`SIZE_CAPS` (a
    manifest written before conversion recorded sizes leaves them as they are). Without a data
    directory the experiment is returned as it is."""
    if not exp.data.data_dir:
        return exp
    sizes = data_sizes(exp.data.data_dir)
    if sizes["task"] != exp.task:
        raise ValueError(
            f"{exp.data.data_dir} holds {sizes['task']!r} data, the experiment is {exp.task!r}"
        )
    changes = {"feature_size": sizes["feature_size"]}
    if "vocab_size" in sizes:
        changes["vocab_size"] = sizes["vocab_size"]
    largest = _largest(writer.load_manifest(exp.data.data_dir))
    for name in exp.data.sizes_from_data:
        if largest.get(name):
            changes[name] = min(largest[name], SIZE_CAPS[name])
    model, search_model = (
        config.replace(**changes, num_answers=config.num_answers or sizes.get("num_answers"))
        for config in (exp.model, exp.search_model)
    )
    return dataclasses.replace(exp, model=model, search_model=search_model).validate()


def run_experiment(exp: ExperimentConfig) -> ExperimentConfig:
    """What the drivers (train, search, evaluate) run: ``exp`` with its data's sizes
    (:func:`resolve_experiment`); refuses an experiment without data."""
    if not exp.data.data_dir:
        raise ValueError(
            "no data: pass --data_dir (a folder written by the converters or mmnas_tf.synthetic)"
        )
    return resolve_experiment(exp)


def _largest(manifest: dict) -> dict[str, int]:
    """The largest region count and text length over the splits that record them."""
    recorded = [v["sizes"] for v in manifest.get("splits", {}).values() if "sizes" in v]
    return {name: max((r[name] for r in recorded), default=0) for name in DATA_SIZES}


def size_line(
    data_dir: str,
    splits: Sequence[str],
    config: ModelConfig,
    fix: str = "model",
) -> str | None:
    """One line saying what ``config``'s limits cut of ``splits`` of the data (None when nothing
    is cut, or no split of ``splits`` is there): the share of images with more regions than
    ``max_regions`` and of texts with more tokens than ``max_tokens``, and how to take them all.
    ``fix``: the config section a run sets (``model``, ``search_model``), or ``checkpoint`` for a
    run bound to a trained model's sizes (only retraining changes them)."""
    present = writer.load_manifest(data_dir).get("splits", {})
    present = {s: present[s] for s in splits if s in present}
    recorded = [(s, entry["sizes"]) for s, entry in present.items() if "sizes" in entry]
    if not present:
        return None
    if not recorded:
        return (
            f"sizes: {data_dir}/manifest.json does not record region counts and text lengths "
            "(converted by an older version): convert again to see what the model's "
            f"{config.max_regions} regions and {config.max_tokens} tokens cut"
        )
    cuts, wanted = [], {}
    for name, key, what, limit in (
        ("max_regions", "regions", "images", config.max_regions),
        ("max_tokens", "tokens", "texts", config.max_tokens),
    ):
        total = sum(v for _, r in recorded for v in r[key].values())
        over = sum(v for _, r in recorded for k, v in r[key].items() if int(k) > limit)
        largest = max(r[name] for _, r in recorded)
        if over:
            cuts.append(
                f"{over / total:.1%} of {what} ({over} of {total}) have more {key} than its "
                f"{limit} (up to {largest})"
            )
            wanted[name] = largest
    if not cuts:
        return None
    where = f"{data_dir} ({', '.join(s for s, _ in recorded)})"
    settings = " ".join(
        f"--override={'model' if fix == 'checkpoint' else fix}.{k}={v}" for k, v in wanted.items()
    )
    how = f"retrain with {settings}" if fix == "checkpoint" else f"to keep them: {settings}"
    return f"sizes: the model cuts {where}: {'; '.join(cuts)}; {how}"


def say_sizes(data_dir: str, splits: Sequence[str], config: ModelConfig, fix: str = "model"):
    """Prints :func:`size_line` when the model cuts some of the data."""
    line = size_line(data_dir, splits, config, fix)
    if line:
        print(line, flush=True)


def say_run_sizes(checkpoint: str) -> None:
    """:func:`say_sizes` for the model trained at ``checkpoint`` (its ``run.json``) against every
    split of the data it was trained on, when that folder is still there."""
    run = find_run(checkpoint)
    data_dir = ((run or {}).get("experiment") or {}).get("data", {}).get("data_dir")
    if run and data_dir and os.path.exists(os.path.join(data_dir, writer.MANIFEST)):
        splits = list(writer.load_manifest(data_dir).get("splits", {}))
        say_sizes(data_dir, splits, run["model"], fix="checkpoint")


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
    dtype_policy: str | None = None,
) -> str:
    """Writes ``run.json``; ``dtype_policy``: the Keras policy the run trains in (recorded, not
    reused: evaluation and export choose their own, float32 by default for export)."""
    os.makedirs(model_dir, exist_ok=True)
    data = {"experiment": exp.to_dict(), "genotype": genotype.to_dict(), "model": config.to_dict()}
    if dtype_policy is not None:
        data["dtype_policy"] = dtype_policy
    path = os.path.join(model_dir, RUN_FILE)
    with replaced_when_written(path) as f:
        json.dump(data, f, indent=1)
    return path


def keep_recorded_generator(exp: ExperimentConfig, model_dir: str) -> tuple[ExperimentConfig, str]:
    """``exp`` with the dropout generator that the run in ``model_dir`` trained with, when it
    holds one to resume (a registered checkpoint and a ``run.json``), and the line saying so (""
    when nothing changed). A restarted run keeps its random stream: one whose ``run.json`` predates
    the setting trained with ``"uniform"``, whatever the default is now."""
    run = find_run(model_dir) if os.path.exists(os.path.join(model_dir, "checkpoint")) else None
    recorded = None if run is None else run["model"].dropout_generator
    model, line = keep_dropout_generator(exp.model, recorded, "this run trained (run.json)")
    return (dataclasses.replace(exp, model=model) if line else exp), line


def find_run(checkpoint: str) -> dict | None:
    """The ``run.json`` next to a checkpoint (directory or prefix), or None: ``model`` a
    ModelConfig, ``genotype`` a Genotype. A run.json written before the answer count moved into
    the model's config keeps it beside (``"num_answers"``): it is read into ``model``."""
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    path = os.path.join(folder, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    model = data["model"]
    if "num_answers" not in model:  # an older run.json
        model = {**model, "num_answers": data.pop("num_answers", None)}
    data["model"] = ModelConfig.from_dict(model)
    data["genotype"] = Genotype.from_dict(data["genotype"])
    return data
