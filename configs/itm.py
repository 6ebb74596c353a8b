"""MMnasNet on Flickr30K image-text matching at paper size (search d=256 / 4 heads, retrain d=512 / 8 heads, M/N 12/18).

Retrain the published architecture with the original recipe::

    python -m mmnas_tf.train --config=configs/itm.py --genotype=configs/genotypes/mmnas_itm.json \
        --data_dir=tfrecords/itm --model_dir=runs/itm

Evaluate::

    python -m mmnas_tf.evaluate --config=configs/itm.py --genotype=configs/genotypes/mmnas_itm.json \
        --data_dir=tfrecords/itm --checkpoint=runs/itm

Search (the search driver's flags): python -m mmnas_tf.search --config=configs/itm.py ....
"""

from mmnas_tf.experiments import ExperimentConfig, get_experiment


def get_config() -> ExperimentConfig:
    return get_experiment("itm")
