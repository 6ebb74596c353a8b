"""A tiny VQA run directory as training leaves it, for tests of what reads a run."""

from __future__ import annotations

import os

from mmnas_tf.runs import save_run
from mmnas_tf.tasks import get_task

#: The run's token table: ids 3 and 4 are "what" and "cat".
VOCAB = ["PAD", "UNK", "CLS", "what", "cat"]


def tiny_vqa_run(model_dir, exp, num_answers: int = 7):
    """Writes ``run.json``, ``vocab.txt`` and ``answers.txt`` (``ans0`` ...) into ``model_dir`` and
    returns ``(model, config)``: a model of random weights for ``exp``'s genotype. The caller saves
    the checkpoint (``Checkpointer(model_dir, model).save()``) once the weights exist."""
    genotype = exp.load_genotype()
    config = exp.model_config(genotype, num_answers=num_answers)
    model = get_task("vqa").build_model(config)
    save_run(str(model_dir), exp, genotype, config)
    with open(os.path.join(model_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    with open(os.path.join(model_dir, "answers.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(f"ans{i}" for i in range(num_answers)) + "\n")
    return model, config
