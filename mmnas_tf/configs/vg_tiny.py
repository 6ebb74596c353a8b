"""The CI / laptop variant of ``vg``: d=32 (search d=16), M/N 2/3, 6 regions, 8 tokens, 3 epochs,
batch 8. Runs in seconds on 2 CPU cores on synthetic data::

    python -m mmnas_tf.synthetic --task=vg --out_dir=/tmp/vg_tiny_data
    python -m mmnas_tf.train --config=vg_tiny --data_dir=/tmp/vg_tiny_data \
        --model_dir=/tmp/vg_tiny_run
    python -m mmnas_tf.evaluate --config=vg_tiny --data_dir=/tmp/vg_tiny_data \
        --checkpoint=/tmp/vg_tiny_run
"""

from mmnas_tf.configs import common, vg
from mmnas_tf.experiments import ExperimentConfig


def get_config() -> ExperimentConfig:
    return common.tiny(vg.get_config())
