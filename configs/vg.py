"""MMnasNet on RefCOCO visual grounding at paper size (search d=256 / 4 heads, retrain d=512 / 8 heads, M/N 12/18).

Retrain the published architecture with the original recipe::

    python -m mmnas_tf.train --config=configs/vg.py --genotype=configs/genotypes/mmnas_vgd.json \
        --data_dir=tfrecords/vg --model_dir=runs/vg

Evaluate::

    python -m mmnas_tf.evaluate --config=configs/vg.py --genotype=configs/genotypes/mmnas_vgd.json \
        --data_dir=tfrecords/vg --checkpoint=runs/vg

Search (the search driver's flags): python -m mmnas_tf.search --config=configs/vg.py ....
"""

from mmnas_tf.experiments import ExperimentConfig, get_experiment


def get_config() -> ExperimentConfig:
    return get_experiment("vg")
