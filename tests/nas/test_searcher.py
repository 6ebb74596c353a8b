"""The search loop in-process (eager, tiny): history files, early stop, TensorBoard, reporting."""

import dataclasses
import functools
import glob
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.console import Progress
from mmnas_tf.experiments import get_experiment
from mmnas_tf.genotype import Genotype
from mmnas_tf.nas import reporting
from mmnas_tf.nas import searcher as searcher_module
from mmnas_tf.nas.search_model import cycle_dataset
from mmnas_tf.nas.searcher import Searcher


def summary_tags(logdir):
    tags = set()
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_early_stop_history_files_and_tensorboard(nas, tmp_path, monkeypatch):
    u = 2
    terminal = io.StringIO()  # the progress line as a terminal shows it
    monkeypatch.setattr(
        searcher_module,
        "Progress",
        functools.partial(Progress, stream=terminal, is_tty=True, interval=0.0),
    )
    search_model = nas.build_search_model(estimator="gumbel", weight_steps=u, warmup="prior")
    config = dataclasses.replace(
        get_experiment("vqa_tiny").search,
        estimator="gumbel",
        warmup_epochs=1,
        search_epochs=4,
        early_stop_patience=1,
        arch_learning_rate=1e-6,  # theta barely moves: the prior genotype stays the argmax
        weight_steps_per_arch_step=u,
    )
    lines = []
    searcher = Searcher(
        search_model, config, str(tmp_path), steps_per_epoch=2, run_eagerly=True, log=lines.append
    )
    dm = nas.random_dataset(16, 4, seed=0).repeat()
    da = nas.random_dataset(8, 4, seed=1)
    status = searcher.run(lambda epoch: cycle_dataset(dm, da.repeat(), u), lambda: da)

    # warm-up epoch 1, search epochs 2 and 3; epoch 3 repeats epoch 2's genotype: stop (patience 1)
    assert status["stopped"] and status["unchanged"] == 1
    assert sorted(status["history"]) == ["epoch1", "epoch2", "epoch3"]
    assert [status["history"][k]["phase"] for k in ("epoch1", "epoch2")] == ["warmup", "search"]
    assert status["history"]["epoch1"]["arch_loss"] is None
    assert "early stop" in lines[-1]
    # per cycle: count, loss, the fewest epochs before the early stop could fire (warm-up 1 +
    # a first search epoch + patience 1 = 3; it fires at epoch 3), cycles/s, the phase's ETA
    shown = [line.rstrip() for line in terminal.getvalue().replace("\n", "\r").split("\r")]
    number = r"[0-9.e+-]+"
    cycle = [
        rf"epoch 1/5 warmup: 1/2 - loss {number} - early stop in >= 3 epochs",
        rf"epoch 1/5 warmup: 2/2 - loss {number} - early stop in >= 3 epochs - {number} cycles/s",
        rf"epoch 1/5 warmup: 2/2 - loss {number} - {number} cycles/s",  # the line that stays
        rf"epoch 2/5 search: 1/2 - loss {number} - early stop in >= 2 epochs",
        rf"epoch 2/5 search: 2/2 - loss {number} - early stop in >= 2 epochs - {number} cycles/s - ETA search \d+:\d\d",
        rf"epoch 2/5 search: 2/2 - loss {number} - {number} cycles/s - ETA search \d+:\d\d",
        rf"epoch 3/5 search: 1/2 - loss {number} - early stop in >= 1 epochs",
    ]
    shown = [line for line in shown if line]
    assert len(shown) == 9  # 3 epochs of 2 cycles, each with the line that stays
    for pattern, line in zip(cycle, shown):
        assert re.fullmatch(pattern, line), (pattern, line)
    assert re.fullmatch(rf"epoch 3/5 search: 2/2 - loss {number} - {number} cycles/s", shown[-1])

    with open(tmp_path / reporting.GENOTYPE_FILE) as f:
        original = json.load(f)
    assert sorted(original) == ["epoch1", "epoch2", "epoch3"]
    assert original["epoch3"]["dec"] == [["rel_self_att_8"], ["guided_att_8"], ["feed_forward"]]
    assert Genotype.load(str(tmp_path / reporting.GENOTYPE_FILE)) == search_model.genotype()
    with open(tmp_path / reporting.THETA_FILE) as f:
        theta = json.load(f)
    assert len(theta["epoch3"]["theta"]["decoder"]) == 3
    assert theta["epoch3"]["eval"]["examples"] == 8
    assert 0.0 <= theta["epoch3"]["eval"]["in_vocabulary_accuracy"] <= 1.0

    tags = summary_tags(tmp_path / "tensorboard")
    assert {"genotype", "entropy/mean", "entropy/decoder_2", "eval/loss"} <= tags
    # the readable pictures (the drawing libraries are installed for tests), also as files
    assert {"theta_plot", "genotype_diagram"} <= tags
    for name in (reporting.THETA_PLOT, reporting.GENOTYPE_PLOT):
        assert os.path.getsize(tmp_path / name) > 3000
    assert {"search/arch_loss", "search/temperature", "eval/in_vocabulary_accuracy"} <= tags


def test_entropies_and_heatmap():
    table = {
        "ops": {"encoder": ["SA", "FFN"], "decoder": ["SA", "GA", "RSA", "FFN"]},
        "encoder": [[0.5, 0.5]],
        "decoder": [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]],
    }
    np.testing.assert_allclose(reporting.entropies(table), [np.log(2), 0.0, np.log(4)], atol=1e-9)
    image = reporting.heatmap(table, cell=4)
    assert image.shape == (12, 16, 3) and image.dtype == np.uint8
    assert tuple(image[5, 1]) == (8, 48, 107)  # decoder 0, SA: probability 1 = dark blue
    assert tuple(image[1, 5]) == (160, 160, 160)  # encoder row, GA: not in the encoder pool
    assert tuple(image[1, 13]) == tuple(image[1, 1])  # encoder FFN and SA: both 0.5


def test_profile_window_traces_search_cycles(nas, tmp_path):
    from mmnas_tf.engine.callbacks import ProfilerWindow, parse_profile_steps

    u = 2
    search_model = nas.build_search_model(estimator="gumbel", weight_steps=u, warmup="prior")
    config = dataclasses.replace(
        get_experiment("vqa_tiny").search,
        warmup_epochs=1,
        search_epochs=1,
        weight_steps_per_arch_step=u,
    )
    profile = ProfilerWindow(str(tmp_path / "profile"), parse_profile_steps("2,3"))
    seen = []

    class Steps:  # records the global cycle numbers the callbacks are told
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(logs["step"])

        def on_train_batch_end(self, batch, logs=None):
            pass

        def on_train_end(self, logs=None):
            seen.append("end")

    searcher = Searcher(
        search_model,
        config,
        str(tmp_path),
        steps_per_epoch=2,
        run_eagerly=True,
        tensorboard=False,
        log=lambda line: None,
        callbacks=[profile, Steps()],
    )
    dm = nas.random_dataset(16, 4, seed=0).repeat()
    da = nas.random_dataset(8, 4, seed=1)
    searcher.run(lambda epoch: cycle_dataset(dm, da.repeat(), u))
    assert seen == [1, 2, 3, 4, "end"]
    assert profile.traced and not profile.active
    assert tf.io.gfile.glob(str(tmp_path / "profile" / "plugins" / "profile" / "*"))


def test_search_whose_every_region_is_masked_reports_a_non_finite_loss(nas, tmp_path):
    # every region feature zero = every region masked: the loss becomes NaN; the epoch line says
    # so in words (the history keeps None) instead of failing to format None
    u = 2

    def masked(n, seed):
        inputs, targets = nas.random_batch(n, seed)
        inputs["image_features"][:] = 0.0
        return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(4, drop_remainder=True)

    search_model = nas.build_search_model(estimator="gumbel", weight_steps=u, warmup="uniform")
    config = dataclasses.replace(
        get_experiment("vqa_tiny").search,
        estimator="gumbel",
        warmup_epochs=1,
        search_epochs=1,
        weight_steps_per_arch_step=u,
    )
    lines = []
    searcher = Searcher(
        search_model,
        config,
        str(tmp_path),
        steps_per_epoch=2,
        run_eagerly=True,
        tensorboard=False,
        log=lines.append,
    )
    dm, da = masked(16, 0).repeat(), masked(8, 1)
    status = searcher.run(lambda epoch: cycle_dataset(dm, da.repeat(), u), lambda: da)

    assert [status["history"][k]["loss"] for k in ("epoch1", "epoch2")] == [None, None]
    assert status["history"]["epoch2"]["arch_loss"] is None
    assert len(lines) == 2
    hint = f" ({searcher_module.NOT_FINITE_HINT})"
    assert lines[0].startswith("epoch 1/2 warmup - loss not finite - eval loss not finite ")
    assert lines[1].startswith("epoch 2/2 search - loss not finite - arch loss not finite - ")
    assert all(line.endswith(hint) for line in lines), lines
    assert "every image region is masked" in hint


def test_epoch_line_names_a_non_finite_value_and_adds_the_hint_only_then():
    record = {"loss": 1.23456, "arch_loss": 0.5, "phase": "search"}
    line = searcher_module._epoch_line(
        "epoch 2/3 search",
        record,
        {"loss": 2.0, "accuracy": float("nan"), "examples": 8},
        0.25,
        Genotype(["SA"], ["GA"]),
    )
    assert line == (
        "epoch 2/3 search - loss 1.235 - arch loss 0.5 - eval loss 2 accuracy not finite "
        f"(8 examples) - 0.25 s/cycle - enc[SA] dec[GA] ({searcher_module.NOT_FINITE_HINT})"
    )
    record = {"loss": 1.0, "arch_loss": None, "phase": "warmup"}
    line = searcher_module._epoch_line(
        "epoch 1/3 warmup", record, {}, 0.5, Genotype(["SA"], ["GA"])
    )
    assert line == "epoch 1/3 warmup - loss 1 - 0.5 s/cycle - enc[SA] dec[GA]"


def test_the_selection_after_a_non_finite_search_names_the_cause():
    # the default search ends with draws from softmax(theta): after a NaN loss theta is NaN, and
    # numpy's own "Probabilities contain NaN" would say nothing of why
    from mmnas_tf.nas import selection

    pools = [("decoder", 0, ("SA", "GA")), ("decoder", 1, ("SA", "GA", "RSA", "FFN"))]
    nan = float("nan")
    with pytest.raises(ValueError, match=r"theta is NaN or infinite after the search .*masked"):
        selection.theta_draws(pools, [[0.3, 0.7], [nan, nan, nan, nan]], [1, 0], 3)
    with pytest.raises(ValueError, match="cannot draw from softmax"):
        selection.theta_draws(pools, [[float("inf"), 0.0], [0.25] * 4], [0, 0], 3)


@pytest.mark.parametrize("generator", ["uniform", "bytes"])
def test_the_checkpoint_records_the_dropout_generator_from_the_first_save(nas, tmp_path, generator):
    """A restart reads it before building the supernet (``search.py``); a checkpoint of a search
    begun before it was recorded (a JSON state without it) reads as ``"uniform"``."""
    from mmnas_tf.nas.searcher import GENERATOR_KEY, recorded_dropout_generator

    assert recorded_dropout_generator(str(tmp_path)) is None  # nothing to resume
    search_model = nas.build_search_model(
        estimator="gumbel", weight_steps=2, config_changes={"dropout_generator": generator}
    )
    config = dataclasses.replace(
        get_experiment("vqa_tiny").search, estimator="gumbel", warmup_epochs=1, search_epochs=0
    )
    searcher = Searcher(
        search_model,
        config,
        str(tmp_path),
        steps_per_epoch=2,
        checkpoint_every_steps=1,  # a checkpoint inside the first epoch
        run_eagerly=True,
        log=lambda line: None,
    )
    dm = nas.random_dataset(8, 4, seed=0).repeat()
    da = nas.random_dataset(4, 4, seed=1)
    saved = []
    original_save = searcher.checkpointer.save

    def save(iterator=None):  # the first (mid-epoch) checkpoint already names the generator
        path = original_save(iterator)
        saved.append(recorded_dropout_generator(str(tmp_path)))
        return path

    searcher.checkpointer.save = save
    status = searcher.run(lambda epoch: cycle_dataset(dm, da.repeat(), 2), lambda: da)
    assert status[GENERATOR_KEY] == generator and saved and set(saved) == {generator}
    state = searcher.state.json
    del state[GENERATOR_KEY]  # as a search of before the key wrote it
    type(searcher.state).json.fset(searcher.state, state)
    searcher.checkpointer.state.step.assign_add(1)
    original_save()
    assert recorded_dropout_generator(str(tmp_path)) == "uniform"
