import dataclasses
import os
import textwrap

import numpy as np
import pytest

from mmnas_tf.experiments import (
    GENOTYPE_DIR,
    ExperimentConfig,
    apply_overrides,
    experiment_names,
    get_experiment,
    load_config_file,
    split_overrides,
)
from mmnas_tf.tasks import get_task

TINY = [n for n in experiment_names() if n.endswith("_tiny")]
PAPER = [n for n in experiment_names() if not n.endswith("_tiny")]


def test_registry_has_every_task_in_both_sizes():
    assert sorted(PAPER) == ["itm", "vg", "vqa"]
    assert sorted(TINY) == ["itm_tiny", "vg_tiny", "vqa_tiny"]


@pytest.mark.parametrize("name", TINY)
def test_tiny_experiment_builds_and_runs(name):
    exp = get_experiment(name)
    config = exp.model_config(exp.load_genotype())
    model = get_task(exp.task).build_model(config.replace(num_answers=5))
    out = model(model.backbone.dummy_inputs(2), training=False)
    first = next(iter(out.values()))
    assert first.shape[0] == 2 and np.all(np.isfinite(np.asarray(first)))
    # the search model is a valid supernet config at its own (smaller) width
    assert exp.search_model.genotype is None and exp.search_model.hidden_size < config.hidden_size


# Paper sizes as the original code counts them (vocabulary 20,573 words, 3,129 answers;
# docs/original_behaviour.md, "Sizes"); the part-by-part comparison is in
# tests/models/test_param_counts.py.
@pytest.mark.parametrize(
    "name,params",
    [
        ("vqa", 59_880_599),
        pytest.param("itm", 51_418_719, marks=pytest.mark.slow),
        pytest.param("vg", 53_262_442, marks=pytest.mark.slow),
    ],
)
def test_paper_experiment_validates_and_counts(name, params):
    exp = get_experiment(name)
    config = exp.model_config(exp.load_genotype())
    assert (
        config.hidden_size,
        config.heads,
        config.num_encoder_blocks,
        config.num_decoder_blocks,
    ) == (512, 8, 12, 18)
    assert (exp.search_model.hidden_size, exp.search_model.heads) == (256, 4)
    model = get_task(exp.task).build_model(config)
    assert model.count_params() == params


def test_paper_recipes():
    vqa, itm, vg = (get_experiment(n) for n in ("vqa", "itm", "vg"))
    assert (vqa.train.learning_rate, vg.train.learning_rate, itm.train.learning_rate) == (
        1.2e-4,
        1.4e-4,
        1.5e-4,
    )
    assert (vqa.train.epochs, itm.train.epochs) == (13, 100)
    assert vqa.train.decay_epochs == (10, 12) and itm.train.decay_epochs == (36,)
    assert (vqa.train.beta_1, vqa.train.beta_2, vqa.train.epsilon, vqa.train.clip_norm) == (
        0.9,
        0.98,
        1e-9,
        1.0,
    )
    assert vqa.data.batch_size == 64 and vqa.data.search_ratio == (4, 1)
    assert (vqa.search.weight_learning_rate, itm.search.weight_learning_rate) == (4e-4, 1e-4)
    assert (
        vqa.search.arch_beta_1,
        vqa.search.arch_beta_2,
        vqa.search.weight_steps_per_arch_step,
    ) == (0.0, 0.999, 5)


def test_overrides_parse_types_and_revalidate():
    exp = apply_overrides(
        get_experiment("vqa_tiny"),
        split_overrides(
            [
                "model.hidden_size=64;train.decay_epochs=3,5",
                "model.num_answers=9",
                "train.jit_compile=true",
            ]
        ),
    )
    assert exp.model.hidden_size == 64 and exp.train.decay_epochs == (3, 5)
    assert exp.model.num_answers == 9 and exp.search_model.num_answers is None
    assert exp.train.jit_compile is True
    # the answer count moved from the data section into the model's: the old path sets both
    moved = apply_overrides(get_experiment("vqa_tiny"), ["data.num_answers=7"])
    assert (moved.model.num_answers, moved.search_model.num_answers) == (7, 7)
    assert "num_answers" not in moved.to_dict()["data"]
    with pytest.raises(ValueError, match="num_answers must be a positive int or None, got 0"):
        apply_overrides(exp, ["model.num_answers=0"])
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(exp, ["model.hidden=3"])
    with pytest.raises(ValueError, match="divisible"):
        apply_overrides(exp, ["model.hidden_size=30"])
    with pytest.raises(ValueError, match="accepted"):
        apply_overrides(exp, ["search.estimator=darts"])
    with pytest.raises(ValueError, match="a search needs at least one epoch"):
        apply_overrides(exp, ["search.warmup_epochs=0", "search.search_epochs=0"])
    with pytest.raises(ValueError, match="section.field=value"):
        apply_overrides(exp, ["model.hidden_size"])


def test_invalid_configs_name_accepted_values():
    exp = get_experiment("vqa_tiny")
    with pytest.raises(ValueError, match="accepted"):
        dataclasses.replace(exp, task="nlvr").validate()
    with pytest.raises(ValueError, match="accepted"):
        get_experiment("vqa_huge")
    with pytest.raises(ValueError, match="max_regions"):
        apply_overrides(exp, ["data.bucket_boundaries=2,4"])


def test_genotype_flag_wins_and_heads_follow_heads_from(tmp_path):
    exp = get_experiment("vqa")
    genotype = exp.load_genotype(os.path.join(GENOTYPE_DIR, "mcan.json"))
    assert genotype.encoder == ("SA", "FFN") * 6
    assert exp.model_config(genotype).heads == 8  # head size 64 at d=512
    tiny = get_experiment("vqa_tiny")
    g = tiny.load_genotype(os.path.join(GENOTYPE_DIR, "mcan.json"))
    assert g.head_size is None  # heads_from="config": the tiny model keeps its 4 heads
    with pytest.raises(ValueError, match="--genotype"):
        dataclasses.replace(tiny, genotype=None).load_genotype()


def test_the_documented_recipe_file_of_your_own_loads(tmp_path):
    import mmnas_tf.experiments as experiments

    doc = experiments.__doc__
    example = doc[doc.index("    import dataclasses") : doc.index("The published genotypes")]
    path = tmp_path / "vqa_long.py"
    path.write_text(textwrap.dedent(example))
    config = load_config_file(str(path))
    assert isinstance(config, ExperimentConfig)
    assert config == get_experiment(str(path))
    paper = get_experiment("vqa")
    assert config.name == "vqa_long" and config.train.epochs == 20
    assert dataclasses.replace(config, name="vqa", train=paper.train) == paper
    (tmp_path / "bad.py").write_text("def get_config():\n    return 1\n")
    with pytest.raises(TypeError, match="not ExperimentConfig"):
        load_config_file(str(tmp_path / "bad.py"))


def test_named_experiments_retrain_genotypes_shipped_in_the_package():
    for name in experiment_names():
        genotype = get_experiment(name).genotype
        if isinstance(genotype, str):
            assert os.path.dirname(genotype) == GENOTYPE_DIR and os.path.exists(genotype), name
