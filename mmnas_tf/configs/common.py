"""What the recipes share: the paper's supernet sizes, the tiny variant of a recipe, the published
genotype files."""

from __future__ import annotations

import dataclasses
import os

from mmnas_tf.config import ModelConfig
from mmnas_tf.experiments import GENOTYPE_DIR, DataConfig, ExperimentConfig, HardNegativeConfig


def genotype_file(name: str) -> str:
    """A published architecture of ``genotypes/``."""
    return os.path.join(GENOTYPE_DIR, name)


def paper_search_model(model: ModelConfig) -> ModelConfig:
    """The supernet of the paper's search (d=256, 4 heads) with the original search config's
    pooling sizes (512 / 512), which reproduce its supernet's parameter count."""
    return model.replace(
        hidden_size=256, num_heads=4, ffn_size=1024, pool_mlp_size=512, pool_output_size=512
    )


#: The tiny genotype: exercises every decoder op (RSA, GA, FFN) and both encoder ops.
TINY_GENOTYPE = {
    "format": "mmnas_tf.genotype/1",
    "encoder": ["SA", "FFN"],
    "decoder": ["RSA", "GA", "FFN"],
}


def tiny(paper: ExperimentConfig) -> ExperimentConfig:
    """The CI / laptop variant of a paper recipe: d=32 / 4 heads (search d=16 / 2 heads), M/N 2/3,
    8 tokens, 6 regions, 3 epochs at lr 1e-3 (decay from the third), batch 8; the recipe's shape
    otherwise."""
    model = ModelConfig(
        hidden_size=32, num_heads=4, ffn_size=64, relation_size=8, dropout=0.1, vocab_size=64,
        word_embed_size=300, feature_size=32, max_tokens=8, max_regions=6, pool_mlp_size=32,
        pool_output_size=64, num_encoder_blocks=2, num_decoder_blocks=3,
    )  # fmt: skip
    search_model = model.replace(
        hidden_size=16, num_heads=2, ffn_size=32, pool_mlp_size=16, pool_output_size=32
    )
    return dataclasses.replace(
        paper,
        name=f"{paper.name}_tiny",
        model=model,
        search_model=search_model,
        genotype=dict(TINY_GENOTYPE),
        heads_from="config",
        data=DataConfig(batch_size=8, eval_batch_size=32, shuffle_buffer=256),
        train=dataclasses.replace(
            paper.train,
            epochs=3,
            learning_rate=1e-3,
            decay_epochs=(2,),
            checkpoint_every_steps=50,
            log_every_steps=10,
            hard_negatives=HardNegativeConfig(num_candidates=8, top_k=2),
        ),
        search=dataclasses.replace(paper.search, warmup_epochs=1, search_epochs=2),
    )
