import keras
import numpy as np
import pytest

from mmnas_tf.engine.checkpoint import Checkpointer, canonical_path, restore_model
from mmnas_tf.experiments import get_experiment
from mmnas_tf.nas.inherit import inherit_from_supernet, supernet_path
from mmnas_tf.tasks import get_task

NUM_ANSWERS = 7


def tiny_model_config(task: str):
    """The ``<task>_tiny`` retrain ModelConfig with its genotype."""
    exp = get_experiment(f"{task}_tiny")
    return exp.model_config(exp.load_genotype())


def test_paths_map_fixed_slots_to_supernet_candidates():
    assert (
        supernet_path("vqa_3/m_mnas_backbone_2/decoder_7_RSA/relation/kernel")
        == "backbone/decoder_7_mixed/RSA/relation/kernel"
    )
    assert supernet_path("vqa/classifier/kernel") == "classifier/kernel"
    assert canonical_path("vqa_1/m_mnas_backbone/lstm/kernel") == "backbone/lstm/kernel"


class Wrapper(keras.Model):
    """Stands for the search model: the task model as ``task_model`` plus variables of its own."""

    def __init__(self, task_model):
        super().__init__()
        self.task_model = task_model
        self.phase = self.add_weight(shape=(), initializer="ones", trainable=False, name="phase")


@pytest.mark.parametrize("wrapped", [False, True])
def test_inherit_copies_the_chosen_candidates(tmp_path, wrapped):
    task = get_task("vqa")
    fixed_config = tiny_model_config("vqa")
    keras.utils.set_random_seed(1)
    supernet = task.build_model(fixed_config.replace(genotype=None, num_answers=NUM_ANSWERS))
    path = Checkpointer(str(tmp_path), Wrapper(supernet) if wrapped else supernet).save()
    fresh = task.build_model(fixed_config.replace(genotype=None, num_answers=NUM_ANSWERS))
    restore_model(fresh, path)
    fixed = task.build_model(fixed_config.replace(num_answers=NUM_ANSWERS))
    copied = inherit_from_supernet(fixed, fresh)
    source = {canonical_path(v.path): v.numpy() for v in supernet.weights}
    assert "backbone/decoder_0_mixed/RSA/relation/kernel" in copied
    assert "backbone/encoder_1_mixed/FFN/inner/kernel" in copied
    for v in fixed.weights:
        if not v.path.endswith("seed_generator_state"):
            np.testing.assert_array_equal(v.numpy(), source[supernet_path(v.path)], err_msg=v.path)


def test_restore_model_restores_every_weight_and_rejects_other_models(tmp_path):
    """Keras 3 models lose variables through tf.train.Checkpoint(model=...): check all arrive."""
    task = get_task("vqa")
    config = tiny_model_config("vqa")
    model = task.build_model(config.replace(num_answers=NUM_ANSWERS))
    path = Checkpointer(str(tmp_path), model).save()
    keras.utils.set_random_seed(5)
    other = task.build_model(config.replace(num_answers=NUM_ANSWERS))
    restore_model(other, str(tmp_path))
    for a, b in zip(model.weights, other.weights):
        if not a.path.endswith("seed_generator_state"):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    bigger = task.build_model(config.replace(genotype=None, num_answers=NUM_ANSWERS))
    with pytest.raises(ValueError, match="lacks weights"):
        restore_model(bigger, path)
    with pytest.raises(FileNotFoundError):
        restore_model(other, str(tmp_path / "nothing"))


def test_inherit_rejects_other_sizes():
    task = get_task("vqa")
    config = tiny_model_config("vqa")
    supernet = task.build_model(
        config.replace(genotype=None, hidden_size=16, num_heads=2, num_answers=NUM_ANSWERS)
    )
    with pytest.raises(ValueError, match="shape mismatch"):
        inherit_from_supernet(task.build_model(config.replace(num_answers=NUM_ANSWERS)), supernet)


def test_a_model_directory_of_another_run_is_refused(tmp_path):
    task = get_task("vqa")
    config = tiny_model_config("vqa")
    Checkpointer(str(tmp_path), task.build_model(config.replace(num_answers=NUM_ANSWERS))).save()
    other = task.build_model(config.replace(genotype=None, num_answers=NUM_ANSWERS))
    with pytest.raises(ValueError, match="different run"):
        Checkpointer(str(tmp_path), other).restore()
