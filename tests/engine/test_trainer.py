import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.config import DROPOUT_GENERATORS
from mmnas_tf.engine.callbacks import (
    ProfilerWindow,
    ProgressBar,
    TensorBoardScalars,
    parse_profile_steps,
)
from mmnas_tf.engine.optimizers import global_sum_gradients
from mmnas_tf.engine.schedules import EpochSchedule
from mmnas_tf.engine.trainer import Trainer
from mmnas_tf.tasks import get_task


class StopAtStep(keras.callbacks.Callback):
    """Raises KeyboardInterrupt after global step ``n`` (a crash mid-epoch)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_train_batch_end(self, batch, logs=None):
        if logs["step"] == self.n:
            raise KeyboardInterrupt


def _train(
    eh, task_name, model_dir, examples, epochs=2, callbacks=(), seed=0, generator=None, **kwargs
):
    keras.utils.set_random_seed(seed)
    task = get_task(task_name)
    config = eh.tiny_model_config(task_name).replace(num_answers=eh.NUM_ANSWERS)
    if generator is not None:
        config = config.replace(dropout_generator=generator)
    model = task.build_model(config)
    kwargs.setdefault("checkpoint_every_steps", 3)
    trainer = Trainer(
        task,
        model,
        EpochSchedule(2e-3),
        str(model_dir),
        epochs,
        callbacks=list(callbacks),
        **kwargs,
    )
    return trainer, model


def test_training_reduces_the_vqa_loss_and_sets_the_schedule(eh, tmp_path):
    examples = eh.random_examples("vqa", eh.tiny_model_config("vqa"), 32)
    trainer, _ = _train(eh, "vqa", tmp_path, examples, epochs=4)
    history = trainer.fit(eh.dataset_fn(examples, 8))
    assert [h["learning_rate"] for h in history] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3])
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert trainer.state.counters() == {"epoch": 4, "step": 16, "step_in_epoch": 0}
    # a finished run started again (same directory, new process state) trains nothing
    again, _ = _train(eh, "vqa", tmp_path, examples, epochs=4)
    assert again.fit(eh.dataset_fn(examples, 8)) == []
    assert again.state.counters() == {"epoch": 4, "step": 16, "step_in_epoch": 0}


@pytest.mark.parametrize("task_name", ["vg", pytest.param("itm", marks=pytest.mark.slow)])
def test_other_tasks_train_one_step(eh, tmp_path, task_name):
    config = eh.tiny_model_config(task_name)
    inputs, targets = eh.random_examples(task_name, config, 4)
    if task_name == "itm":  # negatives given directly (mining is tested separately)
        targets = {
            "neg_text_ids": inputs["text_ids"][::-1].copy(),
            "neg_image_features": inputs["image_features"][::-1].copy(),
            "neg_boxes": inputs["boxes"][::-1].copy(),
        }
    trainer, model = _train(eh, task_name, tmp_path, None)
    before = [v.numpy() for v in model.trainable_variables]
    out = trainer.train_step(inputs, targets)
    assert np.isfinite(float(out["loss"])) and float(out["loss"]) > 0
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]
    assert sum(changed) > len(changed) // 2


@pytest.mark.parametrize("generator", DROPOUT_GENERATORS)
def test_resume_after_a_crash_ends_with_identical_weights(eh, tmp_path, generator):
    """With either dropout generator: the masks after the restart follow the restored seeds."""
    examples = eh.random_examples("vqa", eh.tiny_model_config("vqa"), 24)
    data = eh.dataset_fn(examples, 8)  # 3 steps per epoch
    kwargs = dict(epochs=2, checkpoint_every_steps=2, generator=generator)
    trainer, full = _train(eh, "vqa", tmp_path / "a", examples, **kwargs)
    trainer.fit(data)
    crashed, _ = _train(eh, "vqa", tmp_path / "b", examples, callbacks=[StopAtStep(5)], **kwargs)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(data)  # checkpoint at step 4 (epoch 2, step 1) holds the iterator position
    resumed, model = _train(eh, "vqa", tmp_path / "b", examples, **kwargs)
    resumed.fit(data)
    assert resumed.checkpointer.restored_path.endswith("ckpt-4")
    for a, b in zip(full.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_gradient_clipping_uses_the_global_norm():
    grads = [tf.constant([3.0, 0.0]), tf.constant([[4.0]])]
    clipped, norm = global_sum_gradients(grads, clip_norm=1.0)
    assert float(norm) == pytest.approx(5.0)
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[1].numpy(), [[0.8]], rtol=1e-6)
    unclipped, _ = global_sum_gradients(grads, clip_norm=0.0)
    np.testing.assert_allclose(unclipped[0].numpy(), [3.0, 0.0])


def test_sum_reduced_loss_gradient_scales_with_the_batch(eh, tmp_path):
    """The loss is a SUM over examples: a batch of two copies has twice the loss and gradient."""
    config = eh.tiny_model_config("vqa", dropout=0.0)
    inputs, targets = eh.random_examples("vqa", config, 2)
    task = get_task("vqa")
    model = task.build_model(config.replace(num_answers=eh.NUM_ANSWERS))
    double = lambda d: {k: np.concatenate([v, v]) for k, v in d.items()}  # noqa: E731

    def loss_and_grads(i, t):
        with tf.GradientTape() as tape:
            loss = task.compute_loss(model, i, t, training=False)
        return float(loss), tape.gradient(loss, model.trainable_variables)

    l1, g1 = loss_and_grads(inputs, targets)
    l2, g2 = loss_and_grads(double(inputs), double(targets))
    assert l2 == pytest.approx(2 * l1, rel=1e-5)
    dense = lambda g: tf.convert_to_tensor(g).numpy()  # noqa: E731
    np.testing.assert_allclose(dense(g2[-2]), 2 * dense(g1[-2]), rtol=1e-4, atol=1e-6)


def test_callbacks_report_progress_tensorboard_and_profile(eh, tmp_path):
    examples = eh.random_examples("vqa", eh.tiny_model_config("vqa"), 32)
    stream = io.StringIO()
    logdir = str(tmp_path / "tb")
    profile = ProfilerWindow(str(tmp_path / "profile"), parse_profile_steps("2,3"))
    callbacks = [ProgressBar(2, stream=stream), TensorBoardScalars(logdir, every_steps=2), profile]
    trainer, _ = _train(eh, "vqa", tmp_path / "run", examples, epochs=1, callbacks=callbacks)
    trainer.fit(eh.dataset_fn(examples, 8))
    text = stream.getvalue()
    assert "loss" in text and "ex/s" in text and "ETA" not in text.split("\n")[-1]
    tags = eh.tensorboard_tags(logdir)
    assert {"train/loss", "train/learning_rate", "train/examples_per_sec", "epoch/loss"} <= tags
    assert profile.traced and tf.io.gfile.glob(
        str(tmp_path / "profile" / "plugins" / "profile" / "*")
    )
    with pytest.raises(ValueError, match="a,b"):
        parse_profile_steps("5")
