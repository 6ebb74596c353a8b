"""The real entry points on generated data: train -> evaluate (VQA; ITM and VG marked slow), and
two uninterrupted trainings with one seed that end with the same weights, and a training killed
with SIGKILL mid-epoch then restarted that ends with the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mmnas_tf import evaluate, train
from mmnas_tf.config import DROPOUT_GENERATORS
from mmnas_tf.engine.checkpoint import checkpoint_variables
from mmnas_tf.tasks import get_task

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    from mmnas_tf.synthbench import benchmark

    base = tmp_path_factory.mktemp("data")
    cache = {}

    def get(task: str, num_images: int = 20) -> str:
        if task not in cache:
            cache[task] = str(base / task)
            benchmark.generate(get_task(task), cache[task], "tiny", num_images=num_images)
        return cache[task]

    return get


def _train_args(task, data_dir, model_dir, *extra):
    return [
        "train",
        f"--config={task}_tiny",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--noprogress",
        *extra,
    ]


def test_vqa_train_then_evaluate(eh, data_dirs, tmp_path):
    data = data_dirs("vqa")
    history = train.main(_train_args("vqa", data, tmp_path, "--epochs=2", "--steps_per_epoch=3"))
    assert [(h["epoch"], h["steps"]) for h in history] == [(1, 3), (2, 3)]
    assert all(np.isfinite(h["loss"]) for h in history)
    run = json.load(open(tmp_path / "run.json"))
    assert run["model"]["genotype"]["decoder"] == ["RSA", "GA", "FFN"]
    assert run["dtype_policy"] == "float32"  # auto keeps float32 below d=256 (vqa_tiny: d=16)
    metrics = evaluate.main(
        ["evaluate", "--config=vqa_tiny", f"--data_dir={data}", f"--checkpoint={tmp_path}"]
    )
    assert {"overall", "yes/no", "number", "other"} <= set(metrics)
    assert 0.0 <= metrics["overall"] <= 100.0
    # ten identical, normalised answers per synthetic question: the official score of the arg-max
    # equals its soft score, up to the official two decimals (0.005) and the float32 mean (<1e-4)
    assert metrics["overall"] == pytest.approx(metrics["in_vocabulary_accuracy"], abs=5.1e-3)
    results = json.load(open(metrics["results_file"]))
    assert len(results) == metrics["questions"] and set(results[0]) == {"question_id", "answer"}
    tags = eh.tensorboard_tags(tmp_path / "tensorboard")
    assert {"epoch/loss", "epoch/learning_rate", "eval_val/overall", "eval_val/yes/no"} <= tags


def _colour_questions(made):
    """``texts`` of the benchmark's VQA generator for scenes of one object seen as one region:
    per scene "what colour is the <shape>?", "what colour is the <size> object?" and "what colour
    is the object?". No question names a colour: the answer is only in the region's features.
    Appends each split's (questions, answers) to ``made``."""
    from mmnas_tf.synthbench import questions, scenes

    def texts(sc, rng, qset):
        text = [
            q
            for shape, size in zip(sc.shape[:, 0], sc.size[:, 0])
            for q in (
                f"what colour is the {scenes.SHAPES[shape]}?",
                f"what colour is the {scenes.SIZES[size]} object?",
                "what colour is the object?",
            )
        ]
        answer = np.repeat(sc.colour[:, 0], 3)  # ANSWERS starts with the colours
        made.append((text, [questions.ANSWERS[a] for a in answer]))
        scene = np.repeat(np.arange(len(sc)), 3)
        family = np.zeros_like(scene)  # colour_of_shape: answer type "other"
        return questions.Texts(scene, text, family, answer=answer, named=np.zeros_like(scene))

    return texts


def _best_text_only_accuracy(text, answers) -> float:
    """The accuracy (%) of the best answer to each question's words alone: any model blind to
    the image scores at most this."""
    by_text = {}
    for t, a in zip(text, answers):
        by_text.setdefault(t, []).append(a)
    best = sum(max(group.count(a) for a in set(group)) for group in by_text.values())
    return 100.0 * best / len(text)


# one region: attention over the regions is a softmax over one entry, which Keras warns about
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_a_learnable_split_that_needs_the_image_is_learnt_to_100_percent(tmp_path, monkeypatch):
    """The known-answer end-to-end check of train -> evaluate: on scenes of one object (one
    region) and questions asking its colour in words that never name one, the tiny model trained
    KNOWN_ANSWER_EPOCHS epochs answers every validation question right, where no model blind to
    the image reaches 50% and the untrained model stays below 100%.

    Flags: the tiny recipe's rate schedule (warm-up 1/4, 1/2, 3/4, decay from epoch 3) is replaced
    by a constant 3e-3: reading the colour from the region takes more full-rate steps than the
    schedule gives in this many epochs (under it, the same run answered 62.5%); and the model
    keeps the config's sizes instead of following the data's (``data.sizes_from_data=``), the
    sizes that recipe was measured at (with the data's 1 region it answered 87.5%)."""
    import dataclasses

    import keras

    from mmnas_tf.experiments import apply_overrides, get_experiment
    from mmnas_tf.runs import resolve_experiment
    from mmnas_tf.synthbench import benchmark, scenes
    from mmnas_tf.tasks.vqa import synthetic

    made = []
    colour = dataclasses.replace(synthetic.GENERATOR, texts=_colour_questions(made))
    monkeypatch.setattr(synthetic, "GENERATOR", colour)
    one_region = scenes.SceneSpec(1, 1, 0, 1, 1, 32)  # 1 object, no duplicate, no background
    monkeypatch.setitem(scenes.SCENE_SETTINGS, "tiny", one_region)
    data = str(tmp_path / "data")
    benchmark.generate(get_task("vqa"), data, "tiny", num_images=KNOWN_ANSWER_IMAGES)
    (_, _), (val_text, val_answers) = made
    assert _best_text_only_accuracy(val_text, val_answers) < 50.0

    # the tiny config's own 6 regions / 8 tokens (this data has 1 region): the claim is learning
    # from the region, which the recipe below was set for at these sizes
    fixed = "data.sizes_from_data="
    exp = apply_overrides(get_experiment("vqa_tiny"), [f"data.data_dir={data}", fixed])
    config = resolve_experiment(exp).model_config(exp.load_genotype())
    keras.utils.set_random_seed(0)
    untrained = get_task("vqa").build_model(config)
    os.makedirs(tmp_path / "eval0")
    before = get_task("vqa").evaluate(untrained, exp.data, config, "val", str(tmp_path / "eval0"))
    assert before["overall"] < 100.0

    model_dir = tmp_path / "model"
    schedule = f"train.warmup=[];train.decay_epochs=[];train.learning_rate=3e-3;{fixed}"
    history = train.main(
        _train_args(
            "vqa", data, model_dir, f"--epochs={KNOWN_ANSWER_EPOCHS}", f"--override={schedule}"
        )
    )
    assert history[-1]["loss"] < history[0]["loss"]
    metrics = evaluate.main(
        ["evaluate", "--config=vqa_tiny", f"--data_dir={data}", f"--checkpoint={model_dir}"]
    )
    assert metrics["questions"] == len(val_text) >= 30
    assert metrics["overall"] == pytest.approx(100.0), (before["overall"], metrics["overall"])


#: 12 epochs under the default dropout generator ('bytes'): measured 87.5% after 8, 93.75% after
#: 10, 100% after 12; under 'uniform' (the default before 2026-12-07) 8 epochs reached 100%
KNOWN_ANSWER_IMAGES, KNOWN_ANSWER_EPOCHS = 80, 12


def test_flags_are_validated(data_dirs, tmp_path):
    from absl import app

    with pytest.raises(app.UsageError, match="config"):
        train.main(["train", f"--model_dir={tmp_path}"])
    with pytest.raises(ValueError, match="accepted"):
        train.main(
            _train_args("vqa", data_dirs("vqa"), tmp_path, "--override=search.estimator=darts")
        )
    with pytest.raises(app.UsageError, match="strategy"):
        train.main(_train_args("vqa", data_dirs("vqa"), tmp_path, "--strategy=tpu"))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["itm", "vg"])
def test_itm_and_vg_train_then_evaluate(data_dirs, tmp_path, task, capsys):
    data = data_dirs(task, num_images=12)
    train.main(_train_args(task, data, tmp_path, "--epochs=2"))
    metrics = evaluate.main(
        ["evaluate", f"--config={task}_tiny", f"--data_dir={data}", f"--checkpoint={tmp_path}"]
    )
    if task == "itm":
        assert "mining hard negatives for epoch 2" in capsys.readouterr().out
        assert 0 <= metrics["i2t_r@1"] <= metrics["i2t_r@5"] <= metrics["i2t_r@10"] <= 100
        assert metrics["t2i_mean_rank"] >= 1
    else:
        assert 0 <= metrics["accuracy"] <= 100 and metrics["queries"] > 0


def _saved_state(model_dir):
    """Every saved tensor (weights, optimizer slots, RNG, counters) but the save counter."""
    values = checkpoint_variables(str(model_dir))
    return {k: v for k, v in values.items() if "save_counter" not in k}


def _checkpoint_step(model_dir) -> int:
    """The step number of the latest checkpoint the manager registered in ``model_dir``."""
    import tensorflow as tf

    return int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_same_seed_same_weights_and_sigkill_then_restart_matches(data_dirs, tmp_path, generator):
    """Default flags but one: ``train.checkpoint_every_steps=2``. The default (50 steps) is more
    than this whole run (2 epochs of 13 steps), so its first checkpoint would be the end of epoch 1
    and a restart would only ever resume at an epoch boundary; every 2 steps, the first checkpoint
    is mid-epoch and the restart must also restore the data iterator's position and the RNGs.
    Once per dropout generator (``model.dropout_generator``)."""
    data = data_dirs("vqa")
    args = lambda d: [  # noqa: E731
        sys.executable,
        "-m",
        "mmnas_tf.train",
        "--config=vqa_tiny",
        f"--data_dir={data}",
        f"--model_dir={d}",
        "--epochs=2",
        "--noprogress",
        "--override=train.checkpoint_every_steps=2",
        f"--override=model.dropout_generator={generator}",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    runs = {}

    def start(name, model_dir, output=subprocess.PIPE):
        runs[name] = subprocess.Popen(
            args(model_dir), cwd=ROOT, env=env, stdout=output, stderr=output, text=True
        )
        return runs[name]

    # The runs are independent processes, so they overlap (the full run with the one killed, then
    # with the second full run and the restart): the suite is otherwise one process, and on a
    # 2-CPU machine this shortens the test without changing any run.
    killed_dir = tmp_path / "killed"
    try:
        start("full", tmp_path / "full")
        proc = start("killed", killed_dir, subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while not (killed_dir / "checkpoint").exists():
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        killed_at = _checkpoint_step(killed_dir)
        start("again", tmp_path / "again")
        start("resumed", killed_dir)
        outputs = {}
        for name in ("full", "again", "resumed"):
            stdout, stderr = runs[name].communicate(timeout=900)
            assert runs[name].returncode == 0, (name, stderr[-2000:])
            outputs[name] = stdout
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    # the kill landed before the final checkpoint: the restart has steps left to redo
    final = _checkpoint_step(tmp_path / "full")
    assert killed_at < final, (killed_at, final)
    assert f"resumed from {killed_dir / f'ckpt-{killed_at}'}" in outputs["resumed"], outputs[
        "resumed"
    ]
    assert _checkpoint_step(killed_dir) == final

    a = _saved_state(tmp_path / "full")
    for other in (tmp_path / "again", killed_dir):
        b = _saved_state(other)
        assert a.keys() == b.keys() and len(a) > 50
        for key in a:
            if isinstance(a[key], bytes):  # the JSON state
                assert a[key] == b[key], key
            else:  # bit-identical: the same batches in the same order, the same ops
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
