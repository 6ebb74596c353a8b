"""MMnasNet on VQA-v2 at paper size: search d=256 / 4 heads, retrain the published
architecture (``genotypes/mmnas_vqa.json``) at d=512 / 8 heads, M/N 12/18, with the original recipe
(docs/original_behaviour.md, "Training recipe" and "Search")::

    python -m mmnas_tf.search --config=vqa --data_dir=tfrecords/vqa --model_dir=runs/vqa_search
    python -m mmnas_tf.train --config=vqa --data_dir=tfrecords/vqa --model_dir=runs/vqa
    python -m mmnas_tf.evaluate --config=vqa --data_dir=tfrecords/vqa --checkpoint=runs/vqa

``--genotype=runs/vqa_search/genotypes.json`` retrains the architecture a search found instead.
"""

from mmnas_tf.config import ModelConfig
from mmnas_tf.configs import common
from mmnas_tf.experiments import ExperimentConfig, SearchConfig, TrainConfig
from mmnas_tf.tasks import get_task


def get_config() -> ExperimentConfig:
    task = get_task("vqa")
    model = ModelConfig(max_tokens=task.max_tokens, max_regions=task.max_regions)
    return ExperimentConfig(
        name="vqa",
        task="vqa",
        model=model,
        search_model=common.paper_search_model(model),
        genotype=common.genotype_file("mmnas_vqa.json"),
        train=TrainConfig(epochs=13, learning_rate=1.2e-4, decay_epochs=(10, 12)),
        search=SearchConfig(weight_learning_rate=4e-4),
    )
