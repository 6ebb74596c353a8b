import keras
import numpy as np
import pytest

from mmnas_tf.engine.schedules import EpochSchedule, StepwiseEpochSchedule


def test_original_vqa_schedule():
    s = EpochSchedule(1.2e-4, decay_epochs=(10, 12))
    rates = [s(e) for e in range(13)]
    np.testing.assert_allclose(rates[:4], [3e-5, 6e-5, 9e-5, 1.2e-4])
    np.testing.assert_allclose(rates[4:10], [1.2e-4] * 6)
    np.testing.assert_allclose(rates[10:12], [2.4e-5] * 2)
    np.testing.assert_allclose(rates[12], 4.8e-6)


def test_decay_during_warmup_multiplies():
    s = EpochSchedule(1.0, warmup=(0.5,), decay_epochs=(0,), decay_rate=0.1)
    assert s(0) == pytest.approx(0.05)
    assert s(1) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(base=0.0),
        dict(base=1.0, warmup=(0.0,)),
        dict(base=1.0, decay_epochs=(3, 2)),
        dict(base=1.0, decay_rate=2.0),
    ],
)
def test_invalid_schedules_raise(kwargs):
    with pytest.raises(ValueError):
        EpochSchedule(**kwargs)


def test_keras_schedule_matches_epoch_schedule_and_round_trips():
    s = EpochSchedule(1.5e-4, decay_epochs=(4, 6))
    k = s.as_keras(steps_per_epoch=3)
    for step in range(0, 24):
        assert float(k(step)) == pytest.approx(s(step // 3), rel=1e-6)
    clone = StepwiseEpochSchedule.from_config(k.get_config())
    assert float(clone(20)) == pytest.approx(float(k(20)))
    opt = keras.optimizers.Adam(k)
    assert float(opt.learning_rate) == pytest.approx(s(0))
