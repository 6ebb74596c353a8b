"""Estimators as registered classes: the registry, a toy estimator added as one class in this file
and searched with, ``gumbel_selection`` (the same theta search as ``gumbel``, then a selection
among draws from softmax(theta)), and the named search recipes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas import choices, recipes, selection
from mmnas_tf.nas import estimators as est
from mmnas_tf.nas.search_model import cycle_dataset


@est.register_estimator
class ToyEstimator(est.Estimator):
    """A toy theta estimator: the sampled op forward, the gradient of softmax(theta) (no noise,
    no temperature) backward, only the sampled candidate computed; ends with a selection among
    the argmax and one draw from softmax(theta)."""

    name = "toy"
    ends_with_selection = True

    def gates(self, logits, noise, temperature):
        gates = []
        for s, theta in enumerate(logits):
            theta = tf.convert_to_tensor(theta)
            hard = tf.one_hot(tf.argmax(theta + noise[s, : theta.shape[0]]), theta.shape[0])
            soft = tf.nn.softmax(theta)
            gates.append(hard + soft - tf.stop_gradient(soft))
        return gates

    def all_paths(self, arch_paths):
        return False

    def select(self, search_model, batches, seed, settings):
        return selection.select_from_theta(search_model, batches, candidates=2, seed=seed)


def test_every_listed_name_has_a_registered_class_and_bad_names_are_refused():
    assert set(choices.ESTIMATORS) == set(est.estimator_names())
    assert est.estimator_names()[:4] == ["gumbel", "proxyless", "uniform", "gumbel_selection"]
    assert isinstance(est.get_estimator("gumbel_selection"), est.Gumbel)
    with pytest.raises(
        ValueError,
        match="unknown estimator 'nope'; accepted: gumbel, proxyless, uniform, gumbel_selection, toy",
    ):
        est.get_estimator("nope")

    class Other(est.Estimator):
        name = "toy"

    with pytest.raises(ValueError, match="'toy' is already registered by ToyEstimator"):
        est.register_estimator(Other)
    with pytest.raises(ValueError, match="needs a class attribute `name`"):
        est.register_estimator(type("Nameless", (est.Estimator,), {}))
    with pytest.raises(ValueError, match="'uniform' has no architecture gradient"):
        est.straight_through_gates("uniform", [tf.zeros(2)], tf.zeros((1, 2)), 1.0)


THREE_SLOTS = {"num_encoder_blocks": 1, "num_decoder_blocks": 2}


def test_gumbel_selection_searches_theta_exactly_as_gumbel(nas, graph_rewrites_off):
    """Same seed and data: after warm-up and search cycles, theta, weights and the sampler are
    bit-identical (the selection step only comes after the search). M/N 1/2 (3 mixed slots of
    the tiny supernet's 5): the claim holds slot by slot, and tracing costs in proportion."""
    dm = nas.random_dataset(16, 4, seed=0).repeat()
    da = nas.random_dataset(8, 4, seed=1).repeat()
    ends = []
    for name in ("gumbel", "gumbel_selection"):
        search = nas.build_search_model(
            estimator=name, weight_steps=2, seed=3, config_changes=THREE_SLOTS
        )
        search.set_state("search", temperature=2.0)
        search.fit(cycle_dataset(dm, da, 2), epochs=1, steps_per_epoch=2, verbose=0)
        ends.append([v.numpy() for v in search.arch_variables + search.weight_variables])
    assert len(search.arch_variables) == 3  # one theta per mixed slot
    assert any(np.any(t != 0) for t in ends[0][:3])  # theta moved
    for a, b in zip(*ends):
        np.testing.assert_array_equal(a, b)


def test_theta_draws_start_with_the_argmax_and_are_distinct():
    pools = [("decoder", 0, ("SA", "GA")), ("decoder", 1, ("SA", "GA", "RSA", "FFN"))]
    probabilities = [[0.3, 0.7], [0.1, 0.2, 0.3, 0.4]]
    draws = selection.theta_draws(pools, probabilities, [1, 3], 3, seed=0)
    assert draws[0] == (1, 3) and len(set(draws)) == 3
    assert selection.theta_draws(pools, probabilities, [1, 3], 3, seed=0) == draws  # seeded
    # a space of 8 gives at most 8; a one-hot softmax cannot give a second genotype
    assert len(selection.theta_draws(pools, probabilities, [1, 3], 20, seed=1)) == 8
    assert selection.theta_draws(pools, [[0.0, 1.0], [0, 0, 0, 1.0]], [1, 3], 3) == [(1, 3)]
    with pytest.raises(ValueError, match="at least 1 candidate, got 0"):
        selection.theta_draws(pools, probabilities, [1, 3], 0)
    assert [selection.default_candidates(n) for n in (4, 64, 1024)] == [1, 3, 51]


def test_the_default_recipe_is_what_every_named_experiment_searches():
    from mmnas_tf.experiments import experiment_names, get_experiment

    default = recipes.get_recipe(recipes.DEFAULT_RECIPE)
    for name in experiment_names():
        exp = get_experiment(name)
        assert default.apply(exp) == exp, name
    assert recipes.DEFAULT_RECIPE == "gumbel_selection"
    s = get_experiment("vqa_tiny").search  # the default: uniform start, temperature 1, selection
    assert (s.estimator, s.prior_logit, s.temperature(0), s.temperature(7)) == (
        "gumbel_selection",
        0.0,
        1.0,
        1.0,
    )
    # the original's search, by name; no recipe touches the weight rate (the experiment's)
    orig = recipes.get_recipe("original").apply(get_experiment("vqa_tiny")).search
    assert (orig.estimator, orig.prior_logit, orig.arch_learning_rate, orig.arch_beta_1) == (
        "proxyless",
        1.0,
        0.1,
        0.0,
    )
    former = recipes.get_recipe("gumbel_prior").apply(get_experiment("vqa_tiny")).search
    assert (former.estimator, former.prior_logit, former.temperature(0)) == ("gumbel", 1.0, 5.0)
    assert former.temperature(2) == pytest.approx(5.0 * 0.95**2)
    for name in recipes.recipe_names():
        assert not {"weight_learning_rate", "warmup"} & set(recipes.get_recipe(name).search), name
    json.dumps(default.to_json())  # recorded in the scoreboard's JSON
    with pytest.raises(
        ValueError, match="unknown search recipe 'x'; accepted: original, gumbel_prior"
    ):
        recipes.get_recipe("x")
    bad = recipes.SearchRecipe("bad", "", {"temprature": 1.0})
    with pytest.raises(ValueError, match=r"unknown search fields \['temprature'\]"):
        bad.apply(get_experiment("vqa_tiny"))


def test_the_search_flags_apply_the_recipe_then_the_overrides():
    from mmnas_tf import cli, search
    from mmnas_tf.experiments import get_experiment

    def exp(*flags):
        fv = cli.parse(
            search.define_flags, ["search", "--config=vqa_tiny", "--model_dir=x", *flags]
        )
        return search.experiment_from_flags(fv)

    assert exp() == get_experiment("vqa_tiny")  # the default recipe
    s = exp("--recipe=uniform", "--estimator=gumbel", "--override=search.prior_logit=0.5").search
    assert (s.estimator, s.prior_logit, s.temperature(0)) == ("gumbel", 0.5, 1.0)
    assert exp("--estimator=gumbel_selection").search.estimator == "gumbel_selection"


@pytest.fixture(scope="module")
def vqa_data(tmp_path_factory):
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    out = str(tmp_path_factory.mktemp("vqa_data"))
    benchmark.generate(get_task("vqa"), out, "tiny", 12, 0, "float16", None, 32)
    return out


def search_with(estimator: str, data_dir: str, model_dir: str, extra=()):
    """The library's search driver in this process; returns (status, what the hooks saw)."""
    from mmnas_tf import search
    from mmnas_tf.experiments import apply_overrides, get_experiment

    exp = apply_overrides(
        get_experiment("vqa_tiny"),
        [
            f"data.data_dir={data_dir}",
            f"search.estimator={estimator}",
            "search.warmup_epochs=1",
            "search.search_epochs=1",
            "data.batch_size=4",
            "search.weight_steps_per_arch_step=2",
            "search_model.num_encoder_blocks=1",
            "search_model.num_decoder_blocks=2",
            *extra,
        ],
    )
    seen = {}

    def before_selection(sm, status):
        seen["argmax"], seen["theta"] = str(sm.genotype()), sm.theta_table()

    hooks = search.SearchHooks(
        before_selection=before_selection, searched=lambda sm, status: seen.update(model=sm)
    )
    status = search.search(exp, model_dir, tensorboard=False, dtype_policy="float32", hooks=hooks)
    return status, seen


def _final(model_dir):
    final = Genotype.load(os.path.join(model_dir, "genotypes.json"))
    return str(Genotype(final.encoder, final.decoder))


@pytest.mark.slow
def test_a_toy_estimator_added_in_one_class_searches(vqa_data, tmp_path, graph_rewrites_off):
    model_dir = str(tmp_path / "toy")
    status, seen = search_with("toy", vqa_data, model_dir)
    assert seen["model"].gradient_estimator.name == "toy"
    theta = [v.numpy() for v in seen["model"].arch_variables]
    assert any(np.any(t != 0) for t in theta)  # its gradient moved theta
    written = json.load(open(os.path.join(model_dir, selection.SELECTION_FILE)))
    assert written["candidates"][0]["genotype"] == written["argmax"] == seen["argmax"]
    size = selection.space_size(seen["model"])
    assert len(written["candidates"]) == 2 and written["settings"]["space_size"] == size > 2
    assert _final(model_dir) == written["genotype"] == status["selection"]["genotype"]


@pytest.mark.slow
def test_gumbel_selection_driver_scores_the_argmax_and_draws(
    vqa_data, tmp_path, graph_rewrites_off
):
    model_dir = str(tmp_path / "gs")
    status, seen = search_with(
        "gumbel_selection", vqa_data, model_dir, ["search.selection_candidates=3"]
    )
    written = json.load(open(os.path.join(model_dir, selection.SELECTION_FILE)))
    names = [c["genotype"] for c in written["candidates"]]
    assert names[0] == written["argmax"] == seen["argmax"] and len(set(names)) == 3
    best = max(written["candidates"], key=lambda c: c["score"])
    assert written["genotype"] == best["genotype"] == _final(model_dir)
    assert written["settings"] == {
        "method": "theta_draws",
        "candidates": 3,
        "seed": 0,
        "space_size": selection.space_size(seen["model"]),
        "batches": written["settings"]["batches"],
    }
    # every draw comes from a block op that softmax(theta) gives a positive probability
    rows = seen["theta"]["encoder"] + seen["theta"]["decoder"]
    for c in written["candidates"]:
        assert all(rows[i][k] > 0 for i, k in enumerate(c["choice"]))
