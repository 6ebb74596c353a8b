"""MMnasNet on RefCOCO visual grounding at paper size: search d=256 / 4 heads, retrain the published
architecture (``genotypes/mmnas_vgd.json``) at d=512 / 8 heads, M/N 12/18, with the original recipe
(docs/original_behaviour.md, "Training recipe" and "Search")::

    python -m mmnas_tf.search --config=vg --data_dir=tfrecords/refcoco --model_dir=runs/vg_search
    python -m mmnas_tf.train --config=vg --data_dir=tfrecords/refcoco --model_dir=runs/vg
    python -m mmnas_tf.evaluate --config=vg --data_dir=tfrecords/refcoco --checkpoint=runs/vg

``--genotype=runs/vg_search/genotypes.json`` retrains the architecture a search found instead.
"""

from mmnas_tf.config import ModelConfig
from mmnas_tf.configs import common
from mmnas_tf.experiments import ExperimentConfig, SearchConfig, TrainConfig
from mmnas_tf.tasks import get_task


def get_config() -> ExperimentConfig:
    task = get_task("vg")
    model = ModelConfig(max_tokens=task.max_tokens, max_regions=task.max_regions)
    return ExperimentConfig(
        name="vg",
        task="vg",
        model=model,
        search_model=common.paper_search_model(model),
        genotype=common.genotype_file("mmnas_vgd.json"),
        train=TrainConfig(epochs=13, learning_rate=1.4e-4, decay_epochs=(10, 12)),
        search=SearchConfig(weight_learning_rate=4e-4),
    )
