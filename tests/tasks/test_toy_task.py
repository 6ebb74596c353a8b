"""A fourth task, defined and registered here only, runs through every generic path: records ->
pipeline, model, a training step (the train driver), evaluation, a search cycle, export + reload,
its named experiments, its synthetic data, its typed config section and the text of its served
outputs.

It follows "Adding a task" in docs/architecture.md: what a built-in task keeps in its folder
(``mmnas_tf/tasks/<name>/``) is the first part of this file (``ToyConfig``, ``ToyTask``,
``TOY_GENERATOR``); the one registration line is ``register_task(ToyTask)`` in the fixture; no
module of the package names the task (checked here with the layering test's checker).
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from mmnas_tf import experiments  # imported before the toy registers: its names are derived later
from mmnas_tf import inputs as names
from mmnas_tf.data import schema, writer
from mmnas_tf.models import MMnasBackbone, MMnasClassifier
from mmnas_tf.synthbench import questions
from mmnas_tf.synthbench.benchmark import Generator
from mmnas_tf.tasks import (
    Annotation,
    EpochHooks,
    Task,
    TaskConfig,
    get_task,
    register_task,
    task_names,
    unregister_task,
)
from mmnas_tf.tasks.base import sigmoid_cross_entropy_sum

REGIONS, DIM, TOKENS, IMAGES = 6, 16, 8, 20


@dataclasses.dataclass
class ToyConfig(TaskConfig):
    """What only the toy task reads (``ExperimentConfig.task_config``).

    Attributes:
      label_smoothing: s in [0, 1]: training labels become ``label * (1 - s) + s / 2`` (0).
    """

    label_smoothing: float = 0.0

    def validate(self):
        if not 0.0 <= self.label_smoothing <= 1.0:
            raise ValueError(
                f"task_config.label_smoothing must be in [0, 1], got {self.label_smoothing}"
            )
        return self


#: The toy's synthetic data: the benchmark's captions, each labelled 1 (it describes its image).
TOY_GENERATOR = Generator(
    texts=lambda sc, rng, qset: questions.itm_texts(sc, rng),
    text_id=lambda s, j, f: s * 5 + j,
    targets=lambda sc, texts, s, rows, qset: {"label": [1.0] * len(rows)},
)


class ToyTask(Task):
    """Does the sentence describe the image? One float ``label`` per text in the records; the
    model is the classifier head with one logit, trained on labels smoothed by
    ``task_config.label_smoothing``; the metric is accuracy at logit 0; served:
    ``toy_probability``."""

    name = "toy"
    max_tokens = TOKENS
    max_regions = REGIONS
    model_outputs = {"logits": ()}
    prediction_output = "toy_probability"
    output_keys = ("toy_probability",)
    config_class = ToyConfig
    target_fields = (schema.Field("label", tf.float32, "list", "q labels in {0, 1}"),)

    def encode_targets(self, record, q):
        return {"label": [float(v) for v in record["label"]]}

    def decode_targets(self, dense, q):
        return {"label": dense["label"]}

    def target_checks(self, dense, q, size):
        return [("label", tf.equal(size("label"), q), "must hold one label per text")]

    def prepare_targets(self, config, decoded):
        return {"label": decoded["label"]}

    def format_targets(self, example, training):
        return {"label": example["label"]}

    def build_model(self, config):
        return MMnasClassifier(MMnasBackbone(config), 1, scalar_output=True, name="toy")

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        logits = model(inputs, training=training, arch=arch)["logits"]
        return sigmoid_cross_entropy_sum(targets["label"], logits)

    def build_metrics(self):
        return [keras.metrics.BinaryAccuracy(name="toy_accuracy", threshold=0.0)]

    def update_metrics(self, metrics, outputs, inputs, targets):
        metrics[0].update_state(targets["label"], outputs["logits"])

    def epoch_hooks(self, experiment, config, model):
        s = experiment.task_config.label_smoothing

        def smooth(inputs, targets):
            return inputs, dict(targets, label=targets["label"] * (1.0 - s) + s / 2)

        return EpochHooks(batch_fn=smooth)

    def serving_outputs(self, outputs, inputs, answer_table=None):
        return {"toy_probability": ops.sigmoid(outputs["logits"])}

    def annotate(self, outputs, index=0, answers=None):
        p = float(np.asarray(outputs["toy_probability"])[index])
        return Annotation(lines=[f"describes the image: {p:.2f}"], score=p)

    def synthetic_generator(self):
        return TOY_GENERATOR


def _records(rng: np.random.Generator, count: int) -> list[dict]:
    out = []
    for i in range(count):
        q, n = int(rng.integers(1, 4)), int(rng.integers(2, REGIONS + 1))
        xy = rng.uniform(0, 300, (n, 2))
        out.append(
            {
                "image_id": 100 + i,
                "image_index": i,
                "image_size": (480.0, 640.0),
                "features": rng.standard_normal((n, DIM)).astype(np.float32),
                "boxes": np.concatenate([xy, xy + rng.uniform(10, 100, (n, 2))], 1).astype(
                    np.float32
                ),
                "texts": [f"text {i} {j}" for j in range(q)],
                "text_id": [10 * i + j for j in range(q)],
                "text_ids": [rng.integers(3, 60, rng.integers(2, TOKENS + 3)) for _ in range(q)],
                "label": rng.integers(0, 2, q).tolist(),
            }
        )
    return out


@dataclasses.dataclass
class _Toy:
    task: ToyTask
    records: dict
    exp: object
    root: object


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The registered toy task, its records (train / val) and its tiny experiment."""
    register_task(ToyTask)  # the one registration line
    root = tmp_path_factory.mktemp("toy")
    data_dir = str(root / "data")
    rng = np.random.default_rng(0)
    task = get_task("toy")
    records = {"train": _records(rng, IMAGES), "val": _records(rng, 6)}
    for split, recs in records.items():
        writer.write_split(data_dir, split, task, recs, lambda r, _: r, 2, progress=False)
    exp = experiments.apply_overrides(
        experiments.get_experiment("toy_tiny"),
        [
            f"data.data_dir={data_dir}",
            "data.batch_size=4",
            "data.eval_batch_size=8",
            "train.epochs=1",
            "train.steps_per_epoch=2",
            "search.warmup_epochs=0",
            "search.search_epochs=1",
            "search.weight_steps_per_arch_step=1",
        ],
    )
    yield _Toy(task, records, exp, root)
    unregister_task("toy")


def test_registry_lists_the_toy_task_and_refuses_a_second_one(toy):
    assert task_names()[-1] == "toy" and isinstance(get_task("toy"), ToyTask)

    class Other(ToyTask):
        pass

    with pytest.raises(ValueError, match="'toy' is already registered by ToyTask"):
        register_task(Other)
    with pytest.raises(ValueError, match="unknown task 'toy2'.*'toy'"):
        get_task("toy2")


def test_named_experiments_are_derived_when_asked(toy):
    assert {"toy", "toy_tiny"} <= set(experiments.experiment_names())
    exp = experiments.get_experiment("toy")
    assert exp.task == "toy" and exp.task_config == ToyConfig() and exp.model.max_regions == REGIONS
    exp = experiments.apply_overrides(toy.exp, ["task_config.label_smoothing=0.2"])
    assert exp.task_config.label_smoothing == 0.2
    with pytest.raises(ValueError, match=r"task_config.label_smoothing must be in \[0, 1\], got 2"):
        experiments.apply_overrides(toy.exp, ["task_config.label_smoothing=2"])
    unregister_task("toy")
    try:
        assert "toy_tiny" not in experiments.experiment_names()
        with pytest.raises(ValueError, match="unknown experiment 'toy_tiny'"):
            experiments.get_experiment("toy_tiny")
    finally:
        register_task(ToyTask)


def test_the_task_config_reaches_the_task(toy):
    exp = experiments.apply_overrides(toy.exp, ["task_config.label_smoothing=0.5"])
    hooks = toy.task.epoch_hooks(exp, exp.model, None)
    _, targets = hooks.batch_fn({}, {"label": tf.constant([1.0, 0.0])})
    np.testing.assert_array_equal(targets["label"].numpy(), [0.75, 0.25])


def test_synthetic_data_comes_from_the_task_generator(toy, tmp_path):
    from mmnas_tf.synthbench import benchmark

    manifest = benchmark.generate(get_task("toy"), str(tmp_path), "tiny", 5, feature_dim=DIM)
    assert manifest["task"] == "toy"
    data = dataclasses.replace(toy.exp.data, data_dir=str(tmp_path))
    labels = [
        v
        for _, targets in toy.task.build_inputs(data, toy.exp.model, "train", training=False)
        for v in targets["label"].numpy()
    ]
    assert len(labels) > 5 and set(labels) == {1.0}


def test_served_outputs_read_through_the_task(toy):
    from mmnas_tf.devserver.one_image import describe_outputs
    from mmnas_tf.tasks import task_of_outputs

    outputs = {"toy_probability": np.float32([0.25, 0.5])}
    assert task_of_outputs(outputs) == "toy"
    assert describe_outputs(outputs) == "describes the image: 0.25"


def test_no_module_of_the_package_names_the_toy(toy):
    from test_layering import task_words_outside

    import mmnas_tf

    root = os.path.dirname(mmnas_tf.__file__)
    words = {"toy", "toy_tiny", *ToyTask.output_keys}
    assert list(task_words_outside(root, words)) == []


def test_records_round_trip_and_the_pipeline_builds_targets(toy):
    record = toy.records["train"][0]
    decoded = schema.decode_record(toy.task, tf.constant(schema.encode_record(toy.task, record)))
    np.testing.assert_array_equal(decoded["label"].numpy(), record["label"])
    ds = toy.task.build_inputs(toy.exp.data, toy.exp.model, "val", training=False)
    labels, count = [], 0
    for inputs, targets in ds:
        assert inputs[names.TEXT_IDS].shape[1:] == (TOKENS,)
        # evaluation pads a batch only to its largest region count (data.eval_padding="batch")
        real = np.abs(inputs[names.IMAGE_FEATURES].numpy()).sum(-1) != 0
        assert inputs[names.IMAGE_FEATURES].shape[1:] == (real.sum(1).max(), DIM)
        labels += targets["label"].numpy().tolist()
        count += int(inputs[names.TEXT_IDS].shape[0])
    want = [v for r in toy.records["val"] for v in r["label"]]
    assert count == len(want) and sorted(labels) == sorted(want)


def test_train_evaluate_export_and_reload(toy):
    from mmnas_tf.evaluate import evaluate
    from mmnas_tf.serving.from_checkpoint import export_checkpoint
    from mmnas_tf.train import train

    model_dir = str(toy.root / "train")
    logs = train(toy.exp, model_dir, progress=False)
    assert len(logs) == 1 and logs[0]["steps"] == 2 and np.isfinite(logs[0]["loss"])

    metrics = evaluate(toy.exp, model_dir)
    val_texts = sum(len(r["texts"]) for r in toy.records["val"])
    assert metrics["examples"] == val_texts and 0.0 <= metrics["toy_accuracy"] <= 1.0
    with open(os.path.join(model_dir, "eval", "metrics_val.json"), encoding="utf-8") as f:
        assert json.load(f) == metrics

    path = export_checkpoint("toy", model_dir, str(toy.root / "export"), overwrite=True)
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    inputs, _ = next(iter(toy.task.build_inputs(toy.exp.data, toy.exp.model, "val", False)))
    served = loaded(**{k: inputs[k] for k in (names.TEXT_IDS, names.IMAGE_FEATURES, names.BOXES)})
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.runs import find_run

    run = find_run(model_dir)
    model = toy.task.build_model(run["model"])
    restore_model(model, model_dir)
    want = keras.ops.sigmoid(model(inputs, training=False)["logits"]).numpy()
    np.testing.assert_allclose(served["toy_probability"].numpy(), want, rtol=1e-5, atol=1e-6)


def test_search_cycle(toy, graph_rewrites_off):
    from mmnas_tf.search import search

    model_dir = str(toy.root / "search")
    # M/N 1/2 (3 mixed slots of the tiny supernet's 5): the claim is that the task's search cycle
    # runs, and its trace costs in proportion to the slots
    supernet = dataclasses.replace(toy.exp.search_model, num_encoder_blocks=1, num_decoder_blocks=2)
    train = dataclasses.replace(toy.exp.train, steps_per_epoch=1)
    exp = dataclasses.replace(toy.exp, search_model=supernet, train=train)
    status = search(exp, model_dir, tensorboard=False)
    record = status["history"]["epoch1"]
    assert record["phase"] == "search" and np.isfinite(record["loss"])
    assert 0.0 <= record["eval"]["toy_accuracy"] <= 1.0 and record["eval"]["examples"] > 0
    with open(os.path.join(model_dir, "genotypes.json"), encoding="utf-8") as f:
        assert "epoch1" in json.load(f)
