import pytest

from mmnas_tf.nas.temperature import TemperatureSchedule


def test_temperature_schedule():
    t = TemperatureSchedule(initial=2.0, decay=0.5, minimum=0.3)
    assert [t(e) for e in range(4)] == [2.0, 1.0, 0.5, 0.3]
    with pytest.raises(ValueError):
        TemperatureSchedule(decay=0.0)
