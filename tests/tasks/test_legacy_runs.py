"""Runs, checkpoints and exports written before the tasks moved into one folder each still load.

The fixtures (``tests/fixtures/runs/<task>.tar.gz``) were written by the code of commit bed0c66
with ``tests/fixtures/make_legacy_runs.py``: one training step of a d=8 model per task, its
``run.json`` and checkpoint, the inputs and outputs of one batch, and VQA's SavedModel.
"""

from __future__ import annotations

import json
import os
import tarfile

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "runs")
TASKS = ("vqa", "itm", "vg")


def _close(got, want):
    """Equal up to 256 float32 steps at the largest value compared: the fixture was computed on
    another CPU, whose kernels (AVX2 / AVX-512 / AMX) order the float32 sums differently."""
    want = np.asarray(want)
    if want.dtype.kind in "OSU":
        np.testing.assert_array_equal(np.asarray(got), want)
        return
    atol = 256 * np.spacing(np.float32(np.abs(want).max()))
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=atol)


@pytest.fixture(scope="module", params=TASKS)
def legacy(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"legacy_{request.param}")
    with tarfile.open(os.path.join(FIXTURES, f"{request.param}.tar.gz")) as tar:
        tar.extractall(root, filter="data")
    with np.load(root / "io.npz") as io:
        arrays = dict(io)
    return request.param, root, arrays


class _Recorded:
    """The experiment a run.json recorded, as ``save_run`` writes an ExperimentConfig."""

    def __init__(self, data: dict):
        self.data = data

    def to_dict(self) -> dict:
        return self.data


def _inputs(arrays):
    return {k: v for k, v in arrays.items() if not k.startswith(("out_", "served_"))}


def test_run_json_and_checkpoint_rebuild_the_same_model(legacy):
    from mmnas_tf.explain_run import load_model

    task, root, arrays = legacy
    name, model, run = load_model(str(root / "train"))
    assert name == task and run["model"].hidden_size == 8
    outputs = model(_inputs(arrays), training=False)
    for key in (k[len("out_") :] for k in arrays if k.startswith("out_")):
        _close(outputs[key], arrays[f"out_{key}"])


def test_the_answer_count_beside_the_model_is_read_into_it(legacy, tmp_path):
    """A run.json of before the answer count moved into ``ModelConfig`` keeps it beside the model
    (``"num_answers"``, None for ITM and VG): it is read into the model's config, which rebuilds
    the same head, and a run.json written now keeps it in the model only."""
    import shutil

    from mmnas_tf.explain_run import load_model
    from mmnas_tf.runs import find_run, save_run

    task, root, arrays = legacy
    with open(root / "train" / "run.json", encoding="utf-8") as f:
        raw = json.load(f)
    assert "num_answers" not in raw["model"]  # written before the field existed
    run = find_run(str(root / "train"))
    assert run["model"].num_answers == raw["num_answers"] and "num_answers" not in run
    if task == "vqa":
        assert raw["num_answers"] == 20 == arrays["out_logits"].shape[-1]
    else:
        assert raw["num_answers"] is None
    again = tmp_path / "again"
    save_run(str(again), _Recorded(raw["experiment"]), run["genotype"], run["model"])
    with open(again / "run.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["model"]["num_answers"] == raw["num_answers"] and "num_answers" not in written
    for path in (root / "train").iterdir():
        if path.name != "run.json":
            shutil.copy(path, again / path.name)
    _, model, rerun = load_model(str(again))
    assert rerun["model"] == run["model"]
    outputs = model(_inputs(arrays), training=False)
    for key in (k[len("out_") :] for k in arrays if k.startswith("out_")):
        _close(outputs[key], arrays[f"out_{key}"])


def test_a_legacy_run_exports_and_its_outputs_read_as_before(legacy, tmp_path):
    import tensorflow as tf

    from mmnas_tf.devserver.one_image import describe_outputs
    from mmnas_tf.serving.from_checkpoint import export_checkpoint
    from mmnas_tf.tasks import get_task, task_of_outputs

    task, root, arrays = legacy
    old = {k[len("served_") :]: v for k, v in arrays.items() if k.startswith("served_")}
    assert task_of_outputs(old) == task
    # the run.json's data folder is gone: the VQA export needs the answers from the old export
    answers = str(root / "export" / "1" / "assets" / "answers.txt") if task == "vqa" else None
    path = export_checkpoint(task, str(root / "train"), str(tmp_path), 1, answers_file=answers)
    served = tf.saved_model.load(path).signatures["serving_default"](**_inputs(arrays))
    assert set(served) == set(old)
    for key, value in old.items():
        _close(served[key], value)
    note = get_task(task).annotate(old)
    assert describe_outputs(old) == "\n".join(note.lines)
    if task == "vqa":
        assert note.answers[0][0] == old["top_answers"][0][0].decode()
    elif task == "itm":
        assert note.score == float(old["score"][0])
    else:
        assert note.chosen == int(old["object_index"][0])
        np.testing.assert_array_equal(note.box, old["box"][0])


def test_the_legacy_export_loads(legacy):
    import tensorflow as tf

    task, root, arrays = legacy
    if task != "vqa":
        pytest.skip("only VQA's SavedModel is kept (0.8 MB each)")
    served = tf.saved_model.load(str(root / "export" / "1")).signatures["serving_default"]
    out = served(**_inputs(arrays))
    for key in (k[len("served_") :] for k in arrays if k.startswith("served_")):
        _close(out[key], arrays[f"served_{key}"])


def test_a_legacy_recipe_still_applies(legacy):
    """The recorded experiment's ITM mining settings (``train.hard_negatives`` then) still apply
    as overrides; they now land in ``task_config``."""
    from mmnas_tf.experiments import apply_overrides, get_experiment

    task, root, _ = legacy
    with open(root / "train" / "run.json", encoding="utf-8") as f:
        recorded = json.load(f)["experiment"]
    assert recorded["task"] == task
    if task != "itm":  # recorded for every task then; only ITM reads it now
        with pytest.raises(ValueError, match="unknown config field 'train.hard_negatives.top_k'"):
            apply_overrides(get_experiment(task), ["train.hard_negatives.top_k=2"])
        return
    mining = recorded["train"]["hard_negatives"]
    exp = apply_overrides(
        get_experiment("itm"), [f"train.hard_negatives.{k}={v}" for k, v in mining.items()]
    )
    assert exp.task_config.hard_negatives.num_candidates == mining["num_candidates"] == 8
    assert exp.task_config.hard_negatives.top_k == mining["top_k"] == 2


def test_a_legacy_run_resumes_with_the_uniform_dropout_generator(legacy, capsys):
    """A run.json written before ``dropout_generator`` existed trained with ``"uniform"``: it
    reads so, and a training restarted in its directory keeps that stream whatever the
    experiment (or the default) says, and says so."""
    import dataclasses

    from mmnas_tf.experiments import get_experiment
    from mmnas_tf.runs import find_run, keep_recorded_generator

    task, root, _ = legacy
    with open(root / "train" / "run.json", encoding="utf-8") as f:
        assert "dropout_generator" not in json.load(f)["model"]
    assert find_run(str(root / "train"))["model"].dropout_generator == "uniform"
    exp = get_experiment(f"{task}_tiny")
    asks = dataclasses.replace(exp, model=exp.model.replace(dropout_generator="bytes"))
    kept, line = keep_recorded_generator(asks, str(root / "train"))
    assert kept.model.dropout_generator == "uniform" and "'uniform'" in line and "'bytes'" in line
    same = dataclasses.replace(exp, model=exp.model.replace(dropout_generator="uniform"))
    assert keep_recorded_generator(same, str(root / "train")) == (same, "")
    # no checkpoint to resume (a new run in that folder would start afresh): the experiment's
    fresh = root / "fresh"
    fresh.mkdir(exist_ok=True)
    (fresh / "run.json").write_text((root / "train" / "run.json").read_text())
    assert keep_recorded_generator(asks, str(fresh)) == (asks, "")
