"""Evaluation on the regions actually present: batches grouped by region count and padded to their
own largest count give the same model outputs and metrics as padding every image to max_regions."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from mmnas_tf import inputs as names
from mmnas_tf.data.pipeline import region_buckets
from mmnas_tf.experiments import apply_overrides, get_experiment
from mmnas_tf.runs import resolve_experiment
from mmnas_tf.tasks import get_task
from mmnas_tf.tasks.base import predict_fn

MAX_REGIONS = 28  # the tiny synthetic scenes hold 8-28 regions: every count stays


def _experiment(task, data_dir, padding):
    exp = get_experiment(f"{task}_tiny")
    exp = apply_overrides(exp, [f"model.max_regions={MAX_REGIONS}", "data.eval_batch_size=4"])
    data = dataclasses.replace(exp.data, data_dir=data_dir, eval_padding=padding)
    return dataclasses.replace(exp, data=data)


def _model(task, exp):
    config = resolve_experiment(exp).model_config(exp.load_genotype())
    keras.utils.set_random_seed(3)
    return get_task(task).build_model(config), config


def _outputs_by_text(task, model, exp, config):
    """Per text id: the model's outputs over the evaluation split, and the batches' region slots."""
    key = {"vqa": "question_id", "vg": "sentence_id"}[task]
    predict, out, slots = predict_fn(model), {}, []
    for inputs, targets in get_task(task).build_inputs(exp.data, config, "val", training=False):
        outputs = predict(inputs)
        regions = inputs[names.IMAGE_FEATURES]
        slots.append(int(regions.shape[1]))
        real = np.abs(regions.numpy()).sum(-1) != 0
        for i, text in enumerate(targets[key].numpy()):
            row = {k: v[i].numpy() for k, v in outputs.items() if k != "image_mask"}
            row["real_regions"] = int(real[i].sum())
            out[int(text)] = row
    return out, slots


@pytest.mark.parametrize("task", ["vqa", "vg"])
def test_batch_padding_gives_the_padded_outputs_and_metrics(task, synthetic_dirs, tmp_path):
    data_dir = synthetic_dirs[task]
    exps = {p: _experiment(task, data_dir, p) for p in ("max", "batch")}
    model, config = _model(task, exps["max"])
    runs = {p: _outputs_by_text(task, model, e, config) for p, e in exps.items()}
    (padded, padded_slots), (grouped, grouped_slots) = runs["max"], runs["batch"]
    # The comparison means something: padded batches hold max_regions slots, grouped ones fewer,
    # each exactly its largest real region count, and the images' counts vary.
    assert set(padded_slots) == {MAX_REGIONS}
    assert min(grouped_slots) < MAX_REGIONS and len(set(grouped_slots)) > 2
    counts = {row["real_regions"] for row in grouped.values()}
    assert len(counts) > 3 and max(counts) <= MAX_REGIONS
    assert sorted(padded) == sorted(grouped) and len(padded) > 20
    for text, row in padded.items():
        other = grouped[text]
        assert other["real_regions"] == row["real_regions"]
        if task == "vqa":
            np.testing.assert_allclose(other["logits"], row["logits"], atol=1e-5, rtol=0)
        else:
            n = row["real_regions"]
            # a log-softmax over the slots sent: the real regions' scores move by one constant
            shift = other["object_scores"][:n] - row["object_scores"][:n]
            np.testing.assert_allclose(shift, np.full(n, shift[0]), atol=1e-5)
            np.testing.assert_allclose(
                other["box_deltas"][:n], row["box_deltas"][:n], atol=1e-5, rtol=0
            )
    task_obj, metrics = get_task(task), {}
    for p, e in exps.items():
        (tmp_path / p).mkdir()
        metrics[p] = task_obj.evaluate(model, e.data, config, "val", str(tmp_path / p))
    if task == "vqa":  # the challenge results files hold the same answers
        answers = []
        for p in exps:
            with open(metrics[p].pop("results_file"), encoding="utf-8") as f:
                answers.append(sorted((e["question_id"], e["answer"]) for e in json.load(f)))
        assert answers[0] == answers[1] and len(answers[0]) == len(padded)
    assert metrics["batch"] == pytest.approx(metrics["max"], abs=1e-6)
    assert metrics["max"]  # not an empty evaluation


def test_padding_to_max_stays_available_and_bad_values_are_named():
    exp = get_experiment("vqa_tiny")
    assert apply_overrides(exp, ["data.eval_padding=max"]).data.eval_padding == "max"
    with pytest.raises(ValueError, match=r"eval_padding='none'; accepted: \('batch', 'max'\)"):
        apply_overrides(exp, ["data.eval_padding=none"])


@pytest.mark.parametrize("name", ["vqa", "vqa_tiny", "itm", "itm_tiny", "vg", "vg_tiny"])
def test_named_configs_bucket_training_where_region_counts_vary(name):
    exp = get_experiment(name)
    task, model = get_task(exp.task), exp.model
    train = task.pipeline_config(exp.data, model, training=True)
    evaluation = task.pipeline_config(exp.data, model, training=False)
    tenths = region_buckets(model.max_regions)  # values tested in test_pipeline.py
    # VQA's bottom-up features keep 10-100 regions per image; ITM (36) and VG (100) are fixed
    assert exp.data.bucketing is (exp.task == "vqa")
    if exp.task == "vqa":
        assert (train.bucket_boundaries, train.pad_to) == (tenths, "bucket")
    else:
        assert train.bucket_boundaries is None
    assert (evaluation.bucket_boundaries, evaluation.pad_to) == (tenths, "batch")
    off = apply_overrides(exp, ["data.bucketing=false", "data.eval_padding=max"]).data
    assert task.pipeline_config(off, model, training=True).bucket_boundaries is None
    assert task.pipeline_config(off, model, training=False).bucket_boundaries is None
