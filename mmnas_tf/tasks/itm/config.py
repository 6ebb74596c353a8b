"""ITM's section of an experiment (``ExperimentConfig.task_config``): the hard-negative mining."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmnas_tf.tasks.base import TaskConfig


@dataclass
class HardNegativeConfig:
    """ITM hard-negative mining at every epoch start (docs/original_behaviour.md, "Heads and losses").

    Attributes:
      num_candidates: random non-matching captions per image and images per caption (64).
      top_k: hardest candidates kept (5); each example then draws one uniformly.
    """

    num_candidates: int = 64
    top_k: int = 5

    def validate(self) -> HardNegativeConfig:
        if not 1 <= self.top_k <= self.num_candidates:
            raise ValueError(
                f"hard negatives need 1 <= top_k <= num_candidates, got {self.top_k}, "
                f"{self.num_candidates}"
            )
        return self


@dataclass
class ITMConfig(TaskConfig):
    """What only ITM reads. Override as ``task_config.hard_negatives.top_k=2`` (the former
    ``train.hard_negatives.top_k=2`` is still accepted).

    Attributes:
      hard_negatives: the mining of each epoch's negative captions and images.
    """

    hard_negatives: HardNegativeConfig = field(default_factory=HardNegativeConfig)

    @classmethod
    def tiny(cls) -> ITMConfig:
        """The CI-size section: 8 candidates, top 2."""
        return cls(HardNegativeConfig(num_candidates=8, top_k=2))

    def validate(self) -> ITMConfig:
        self.hard_negatives.validate()
        return self
