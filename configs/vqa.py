"""MMnasNet on VQA-v2 at paper size (search d=256 / 4 heads, retrain d=512 / 8 heads, M/N 12/18).

Retrain the published architecture with the original recipe::

    python -m mmnas_tf.train --config=configs/vqa.py --genotype=configs/genotypes/mmnas_vqa.json \
        --data_dir=tfrecords/vqa --model_dir=runs/vqa

Evaluate::

    python -m mmnas_tf.evaluate --config=configs/vqa.py --genotype=configs/genotypes/mmnas_vqa.json \
        --data_dir=tfrecords/vqa --checkpoint=runs/vqa

Search (the search driver's flags): python -m mmnas_tf.search --config=configs/vqa.py ....
"""

from mmnas_tf.experiments import ExperimentConfig, get_experiment


def get_config() -> ExperimentConfig:
    return get_experiment("vqa")
