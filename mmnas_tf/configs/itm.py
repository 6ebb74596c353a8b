"""MMnasNet on Flickr30K image-text matching at paper size: search d=256 / 4 heads, retrain the
published
architecture (``genotypes/mmnas_itm.json``) at d=512 / 8 heads, M/N 12/18, with the original recipe
(docs/original_behaviour.md, "Training recipe" and "Search")::

    python -m mmnas_tf.search --config=itm --data_dir=tfrecords/flickr --model_dir=runs/itm_search
    python -m mmnas_tf.train --config=itm --data_dir=tfrecords/flickr --model_dir=runs/itm
    python -m mmnas_tf.evaluate --config=itm --data_dir=tfrecords/flickr --checkpoint=runs/itm

``--genotype=runs/itm_search/genotypes.json`` retrains the architecture a search found instead.
"""

from mmnas_tf.config import ModelConfig
from mmnas_tf.configs import common
from mmnas_tf.experiments import ExperimentConfig, SearchConfig, TrainConfig
from mmnas_tf.tasks import get_task


def get_config() -> ExperimentConfig:
    task = get_task("itm")
    model = ModelConfig(max_tokens=task.max_tokens, max_regions=task.max_regions)
    return ExperimentConfig(
        name="itm",
        task="itm",
        model=model,
        search_model=common.paper_search_model(model),
        genotype=common.genotype_file("mmnas_itm.json"),
        train=TrainConfig(epochs=100, learning_rate=1.5e-4, decay_epochs=(36,)),
        search=SearchConfig(weight_learning_rate=1e-4),
    )
