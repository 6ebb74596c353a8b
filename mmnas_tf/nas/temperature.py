"""The Gumbel-softmax temperature of the search, annealed per epoch."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class TemperatureSchedule:
    """Gumbel-softmax temperature per epoch: ``max(minimum, initial * decay ** epoch)``
    (``decay=1`` keeps it constant). Used by the search driver.

    Args:
      initial: float, temperature at epoch 0.
      decay: float in (0, 1], multiplied once per epoch.
      minimum: float, lower bound.
    """

    initial: float = 5.0
    decay: float = 0.95
    minimum: float = 0.1

    def __post_init__(self):
        if not (self.initial > 0 and self.minimum > 0 and 0 < self.decay <= 1):
            raise ValueError(
                "temperature schedule needs initial > 0, minimum > 0 and decay in (0, 1]; got "
                f"{self}"
            )

    def __call__(self, epoch: int) -> float:
        return max(self.minimum, self.initial * math.pow(self.decay, epoch))
