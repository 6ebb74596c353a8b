"""Learning-rate schedules of the original recipe (docs/original_behaviour.md, "Training recipe").

The original sets the rate per optimizer step from the epoch the step falls in: a warm-up factor
(x1/4, x1/2, x3/4 during the first three epochs) times a decay (x0.2 from each listed epoch on).
Epoch indices here are 0-based, as in the original loop (``for epoch in range(max_epoch): if epoch
in LR_DECAY_LIST: lr *= 0.2``): with ``decay_epochs=(10, 12)`` the 11th and 13th epochs start the
lower rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

ORIGINAL_WARMUP = (0.25, 0.5, 0.75)


@dataclasses.dataclass(frozen=True)
class EpochSchedule:
    """Piecewise-constant rate per epoch: ``base * warmup[e] * decay_rate ** #{d <= e}``.

    Args:
      base: float, the peak rate (VQA 1.2e-4, VG 1.4e-4, ITM 1.5e-4; search W 4e-4, ITM 1e-4).
      warmup: factors of epochs 0, 1, ... (the original: 1/4, 1/2, 3/4); later epochs use 1.
      decay_epochs: 0-based epochs from which the rate is multiplied by ``decay_rate`` once more.
      decay_rate: the multiplier (0.2).

    Example::

        s = EpochSchedule(1.2e-4, decay_epochs=(10, 12))
        s(0) == 3e-5; s(5) == 1.2e-4; s(12) == 1.2e-4 * 0.04
    """

    base: float
    warmup: Sequence[float] = ORIGINAL_WARMUP
    decay_epochs: Sequence[int] = ()
    decay_rate: float = 0.2

    def __post_init__(self):
        if not self.base > 0:
            raise ValueError(f"base learning rate must be > 0, got {self.base}")
        if any(not 0 < w <= 1 for w in self.warmup):
            raise ValueError(f"warm-up factors must be in (0, 1], got {tuple(self.warmup)}")
        if list(self.decay_epochs) != sorted(set(self.decay_epochs)) or any(
            d < 0 for d in self.decay_epochs
        ):
            raise ValueError(
                f"decay_epochs must be increasing non-negative ints, got {self.decay_epochs}"
            )
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"decay_rate must be in (0, 1], got {self.decay_rate}")
        object.__setattr__(self, "warmup", tuple(self.warmup))
        object.__setattr__(self, "decay_epochs", tuple(self.decay_epochs))

    def __call__(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        factor = self.warmup[epoch] if epoch < len(self.warmup) else 1.0
        decays = sum(1 for d in self.decay_epochs if d <= epoch)
        return self.base * factor * self.decay_rate**decays

    def as_keras(self, steps_per_epoch: int) -> StepwiseEpochSchedule:
        """The same schedule as a Keras ``LearningRateSchedule`` over optimizer steps (for fit)."""
        return StepwiseEpochSchedule(self, steps_per_epoch)


@keras.saving.register_keras_serializable(package="mmnas_tf")
class StepwiseEpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """An :class:`EpochSchedule` driven by the optimizer's step counter (``step // steps_per_epoch``
    is the epoch), for ``model.fit`` users. The trainer instead assigns the rate at each epoch
    start, which does not need the epoch length in advance.

    Args:
      schedule: an ``EpochSchedule`` (or its dict form).
      steps_per_epoch: int, optimizer steps in one epoch.
    """

    def __init__(self, schedule: EpochSchedule | dict, steps_per_epoch: int):
        if isinstance(schedule, dict):
            schedule = EpochSchedule(**schedule)
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.schedule = schedule
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        from keras import ops

        s = self.schedule
        epoch = ops.floor_divide(ops.cast(step, "int32"), self.steps_per_epoch)
        warm = list(s.warmup) + [1.0]
        factor = ops.take(ops.convert_to_tensor(warm, "float32"), ops.minimum(epoch, len(s.warmup)))
        decays = (
            sum(ops.cast(epoch >= d, "float32") for d in s.decay_epochs) if s.decay_epochs else 0.0
        )
        return s.base * factor * ops.power(s.decay_rate, decays)

    def get_config(self):
        return {
            "schedule": dataclasses.asdict(self.schedule),
            "steps_per_epoch": self.steps_per_epoch,
        }
