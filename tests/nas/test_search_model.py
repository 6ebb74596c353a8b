"""SearchModel: disjoint updates, single-path execution, warm-up sampling, results."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas import estimators as est
from mmnas_tf.nas.search_model import SearchModel, cycle_dataset

U = 3
#: M/N 1/2 (3 mixed slots of the tiny supernet's 5) for the tests that trace a whole search cycle:
#: their claims hold slot by slot, and a cycle's trace costs in proportion to the slots.
CYCLE_BLOCKS = {"num_encoder_blocks": 1, "num_decoder_blocks": 2}


def snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def install_counters(search):
    """One tf.Variable per (mixed slot, candidate), incremented when the candidate computes."""
    counters = []
    for _, _, block in search.mixed:
        row = []
        for op in block.candidate_ops:
            counter = tf.Variable(0, dtype=tf.int32, trainable=False)
            original = op.transform

            def transform(y, context, training=None, original=original, counter=counter):
                with tf.control_dependencies([counter.assign_add(1)]):
                    return tf.identity(original(y, context, training=training))

            op.transform = transform
            row.append(counter)
        counters.append(row)
    return counters


def expected_samples(search, counter, uniform):
    noise = est.gumbel_noise(
        tf.constant([int(search.sampler_seed.numpy()), counter], tf.int64),
        len(search.mixed),
        search._noise_width,
    )
    idx = est.sample_indices(search.arch_variables, noise, tf.constant(uniform))
    return [int(i) for i in idx]


@pytest.fixture(scope="module")
def cycles(nas):
    """Two compiled cycles of a gumbel search (one warm-up, one search) with op counters."""
    search = nas.build_search_model(
        estimator="gumbel", weight_steps=U, seed=3, config_changes=CYCLE_BLOCKS
    )
    counters = install_counters(search)
    dm = nas.random_dataset(32, 4, seed=0).repeat()
    da = nas.random_dataset(16, 4, seed=1).repeat()
    iterator = iter(cycle_dataset(dm, da, U))
    train = search.make_train_function()
    out = {"search": search}

    search.set_state("warmup")
    theta0, w0 = snapshot(search.arch_variables), snapshot(search.weight_variables)
    out["warmup_expected"] = [expected_samples(search, c, True) for c in range(U)]
    out["warmup_logs"] = {k: float(v) for k, v in train(iterator).items()}
    out["warmup_counts"] = [[int(c.numpy()) for c in row] for row in counters]
    out["warmup_theta_changed"] = changed(theta0, search.arch_variables)
    out["warmup_weights_changed"] = changed(w0, search.weight_variables)

    search.set_state("search", temperature=2.0)
    theta1 = snapshot(search.arch_variables)
    out["search_expected"] = [expected_samples(search, U + c, False) for c in range(U + 1)]
    out["search_logs"] = {k: float(v) for k, v in train(iterator).items()}
    out["search_counts"] = [[int(c.numpy()) for c in row] for row in counters]
    out["search_theta_changed"] = changed(theta1, search.arch_variables)
    out["counter"] = int(search.sample_counter.numpy())
    return out


def per_slot_counts(samples, widths):
    counts = [[0] * w for w in widths]
    for sample in samples:
        for s, k in enumerate(sample):
            counts[s][k] += 1
    return counts


def test_warmup_cycle_trains_weights_only_and_runs_only_sampled_ops(cycles):
    search = cycles["search"]
    widths = [len(b.candidates) for _, _, b in search.mixed]
    assert not any(cycles["warmup_theta_changed"])
    assert any(cycles["warmup_weights_changed"])
    assert cycles["warmup_counts"] == per_slot_counts(cycles["warmup_expected"], widths)
    assert np.isfinite(cycles["warmup_logs"]["loss"])


def test_search_cycle_runs_the_sampled_ops_then_all_for_theta_and_moves_theta(cycles):
    search = cycles["search"]
    widths = [len(b.candidates) for _, _, b in search.mixed]
    new_counts = np.array(
        [
            np.array(a) - np.array(b)
            for a, b in zip(cycles["search_counts"], cycles["warmup_counts"])
        ],
        dtype=object,
    )
    # U weight steps run their sampled op only; the theta step (arch_paths="all") runs every
    # candidate once, so dL/dgate_j = <o_j, dL/dout> exists for each j
    expected = per_slot_counts(cycles["search_expected"][:U], widths)
    expected = [[c + 1 for c in row] for row in expected]
    assert [list(c) for c in new_counts] == expected
    assert all(sum(c) == U + len(c) for c in expected)
    assert all(cycles["search_theta_changed"])
    assert cycles["counter"] == 2 * U + 1
    assert np.isfinite(cycles["search_logs"]["arch_loss"])


def test_a_weight_step_changes_no_theta_and_a_theta_step_no_weight(nas):
    search = nas.build_search_model(estimator="proxyless", weight_steps=1, seed=0)
    inputs, targets = nas.random_batch(4, seed=5)
    dm = tf.nest.map_structure(lambda t: tf.constant(t)[:, None], (inputs, targets))
    theta, weights = snapshot(search.arch_variables), snapshot(search.weight_variables)
    search._weight_step(dm, tf.constant(0), search.sample_arch())
    assert not any(changed(theta, search.arch_variables))
    assert any(changed(weights, search.weight_variables))

    theta, weights = snapshot(search.arch_variables), snapshot(search.weight_variables)
    search._arch_step((inputs, targets), search._next_noise())
    assert all(changed(theta, search.arch_variables))
    assert not any(changed(weights, search.weight_variables))
    assert not {id(v) for v in search.arch_variables} & {id(v) for v in search.weight_variables}


@pytest.mark.parametrize("mode", ["prior", "uniform"])
def test_warmup_samples_ops_with_the_configured_probabilities(mode, nas):
    search = nas.build_search_model(warmup=mode, seed=11)
    search.set_state("warmup")
    prior = est.original_prior(2, 3)
    draws = 600
    hits = np.zeros(len(search.mixed))
    for _ in range(draws):
        arch = search.sample_arch()
        for s, (stage, i, block) in enumerate(search.mixed):
            op = block.candidates[int(arch[stage][i])]
            target = (prior.encoder if stage == "encoder" else prior.decoder)[i]
            hits[s] += op == target
    for s, (_, _, block) in enumerate(search.mixed):
        n_ops = len(block.candidates)
        if mode == "prior":
            p = np.e / (np.e + (n_ops - 1) / np.e)  # 0.88 for two ops, 0.71 for four
            assert abs(p - {2: 0.881, 4: 0.711}[n_ops]) < 1e-3
        else:
            p = 1.0 / n_ops
        sd = np.sqrt(draws * p * (1 - p))
        assert abs(hits[s] - draws * p) < 4.5 * sd, (s, hits[s], draws * p)


def test_sampler_is_reproducible_from_its_counter(nas):
    search = nas.build_search_model(seed=4)
    search.set_state("search")
    first = [[int(x) for x in search.sample_arch()["decoder"]] for _ in range(5)]
    search.sample_counter.assign(0)
    again = [[int(x) for x in search.sample_arch()["decoder"]] for _ in range(5)]
    assert first == again
    assert len({tuple(a) for a in first}) > 1


def test_genotype_and_theta_table_follow_argmax_theta(nas):
    search = nas.build_search_model(seed=0)
    enc, dec = ["FFN", "SA"], ["RSA", "GA", "FFN"]
    for (stage, i, block), var in zip(search.mixed, search.arch_variables):
        op = (enc if stage == "encoder" else dec)[i]
        var.assign([2.0 if c == op else 0.0 for c in block.candidates])
    genotype = search.genotype()
    assert genotype == Genotype(enc, dec)
    assert genotype.head_size == 8
    assert genotype.to_original()["dec"][0] == ["rel_self_att_8"]
    table = search.theta_table()
    assert table["ops"]["decoder"] == ["SA", "GA", "RSA", "FFN"]
    np.testing.assert_allclose(table["encoder"][0], [1 / (1 + np.e**2), np.e**2 / (1 + np.e**2)])
    assert [int(x) for x in search.argmax_arch()["decoder"]] == [2, 1, 3]


def test_evaluate_uses_the_argmax_architecture(nas):
    search = nas.build_search_model(seed=1)
    inputs, targets = nas.random_batch(4, seed=9)
    loss = search.evaluate(tf.data.Dataset.from_tensors((inputs, targets)), verbose=0)
    expected = search.task.compute_loss(
        search.task_model, inputs, targets, training=False, arch=search.argmax_arch()
    )
    np.testing.assert_allclose(loss, float(expected) / 4, rtol=1e-5)


def test_bad_arguments_name_the_accepted_values(nas):
    with pytest.raises(ValueError, match="gumbel, proxyless, uniform"):
        nas.build_search_model(estimator="darts")
    with pytest.raises(ValueError, match="uniform, prior"):
        nas.build_search_model(warmup="mcan")
    with pytest.raises(ValueError, match="arch_paths 'some'; accepted: all, sampled"):
        nas.build_search_model(arch_paths="some")
    search = nas.build_search_model()
    with pytest.raises(ValueError, match="warmup, search"):
        search.set_state("retrain")
    n = search.stages["decoder"]
    with pytest.raises(ValueError, match=f"genotype has {n + 1} decoder blocks, the supernet {n}"):
        search.arch_of(Genotype(("SA",) * search.stages["encoder"], ("GA",) * (n + 1)))


def test_arch_of_runs_the_genotype_path_with_inherited_weights(nas):
    search = nas.build_search_model(seed=2)
    inputs, _ = nas.random_batch(4, seed=5)
    pools = [b.candidates for _, _, b in search.mixed]
    genotype = Genotype(
        [p[-1] for (stage, _, _), p in zip(search.mixed, pools) if stage == "encoder"],
        [p[-1] for (stage, _, _), p in zip(search.mixed, pools) if stage == "decoder"],
    )
    arch = search.arch_of(genotype)
    last = search._arch([tf.constant(len(p) - 1) for p in pools])
    np.testing.assert_allclose(
        search.task_model(inputs, arch=arch)["logits"].numpy(),
        search.task_model(inputs, arch=last)["logits"].numpy(),
    )


def test_sampled_arch_paths_runs_only_the_sampled_op_in_the_theta_step(nas, graph_rewrites_off):
    search = nas.build_search_model(
        estimator="gumbel",
        weight_steps=1,
        seed=4,
        arch_paths="sampled",
        config_changes=CYCLE_BLOCKS,
    )
    counters = install_counters(search)
    dm = nas.random_dataset(8, 4, seed=0).repeat()
    da = nas.random_dataset(8, 4, seed=1).repeat()
    search.set_state("search", temperature=1.0)
    theta = snapshot(search.arch_variables)
    search.make_train_function()(iter(cycle_dataset(dm, da, 1)))
    # one weight step + one theta step: two candidates run per slot, not 1 + P
    assert all(sum(int(c.numpy()) for c in row) == 2 for row in counters)
    assert any(changed(theta, search.arch_variables))


def theta_step_gradients(search, inputs, targets):
    """``noise -> (loss, gradients)`` of a theta step's loss (as ``_arch_step`` computes it,
    dropout on) with respect to theta AND every weight (None -> zeros), traced once."""

    @tf.function
    def run(noise):
        watched = [v.value for v in search.arch_variables]
        sources = watched + [v.value for v in search.weight_variables]
        with tf.GradientTape() as tape:
            gates = est.straight_through_gates("gumbel", watched, noise, search.temperature)
            loss = search._loss(inputs, targets, search._arch(gates, all_paths=True))
        grads = tape.gradient(loss, sources)
        grads = [
            tf.zeros_like(s) if g is None else tf.convert_to_tensor(g)
            for s, g in zip(sources, grads)
        ]
        return loss, grads

    return lambda noise: tf.nest.map_structure(lambda t: t.numpy(), run(noise))


# The two forms compute the same sums in another order (forward-only candidates, other kernels), so
# a gradient agrees to float32 resolution at the scale of its summands, not at its own value: theta's
# gradients are small differences of larger terms. A gradient here reduces over up to 512 products
# (batch 4 x 8 positions x width 16), each rounding at most one step of the tensor's largest entry:
# 2048 steps of that entry (2.4e-4 of it) bounds it with margin; measured up to 119 steps on an
# AVX-512 AMD EPYC, and 1.3e-6 at 0.0118 failed the old element-wise 1e-5 on an AVX2 one. A wrong
# form (a candidate's term lost or counted twice) moves a gradient by a large share of its scale.
GRADIENT_STEPS = 2048


def test_theta_step_gradients_equal_those_of_every_candidate_run_backward(nas, graph_rewrites_off):
    """The theta step runs the unsampled candidates forward only; on a tiny supernet with dropout
    its loss, theta gradient and weight gradients equal those of the form that ran every
    candidate forward and backward (zeros through the unsampled ones), for several samples."""
    inputs, targets = nas.random_batch(4, seed=7)
    changes = {"dropout": 0.1}
    search = nas.build_search_model(estimator="gumbel", seed=5, config_changes=changes)
    reference = nas.build_search_model(estimator="gumbel", seed=5, config_changes=changes)
    reference.set_all_paths_form("where")  # the old form, kept as MixedOp's reference

    noises = [
        est.gumbel_noise(tf.constant([11, c], tf.int64), len(search.mixed), 4) for c in range(3)
    ]
    new = theta_step_gradients(search, inputs, targets)
    results = [new(noise) for noise in noises]  # the forward-only form
    old = theta_step_gradients(reference, inputs, targets)
    references = [old(noise) for noise in noises]
    for (loss, grads), (ref_loss, ref_grads) in zip(results, references):
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
        theta = len(search.arch_variables)
        assert all(np.any(g) for g in ref_grads[:theta])
        for i, (a, b) in enumerate(zip(grads, ref_grads)):
            atol = GRADIENT_STEPS * np.finfo(np.float32).eps * np.abs(b).max()
            np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=f"source {i}")


def test_weight_steps_skip_unsampled_gradients_unread_with_the_same_result(
    nas, monkeypatch, graph_rewrites_off
):
    """A weight step knows from its architecture which candidates' gradients are zero and leaves
    them out of the clip's passes and of SampledPathAdam's zero test: two search cycles end with
    the same weights, theta and per-variable Adam steps as when every gradient is read."""
    dm = nas.random_dataset(16, 4, seed=0).repeat()
    da = nas.random_dataset(8, 4, seed=1).repeat()
    ends = []
    for read_all in (False, True):
        search = nas.build_search_model(
            estimator="gumbel", weight_steps=2, seed=6, config_changes=CYCLE_BLOCKS
        )
        if read_all:
            monkeypatch.setattr(search, "_sampled_flags", lambda arch: [None] * 10**4)
        search.set_state("search", temperature=1.0)
        train = search.make_train_function()
        iterator = iter(cycle_dataset(dm, da, 2))
        train(iterator)
        train(iterator)
        steps = [float(s.numpy()) for s in search.weight_optimizer._steps]
        ends.append((snapshot(search.weight_variables + search.arch_variables), steps))
    (weights, steps), (ref_weights, ref_steps) = ends
    # some candidates were skipped (a candidate no weight step sampled stays at 0 steps)
    assert steps == ref_steps and min(steps) < max(steps) == 4
    for a, b in zip(weights, ref_weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_fixed_genotype_model_is_refused(nas):
    from mmnas_tf.tasks import get_task

    task = get_task("vqa")
    model = task.build_model(
        nas.tiny_config(task, genotype=Genotype(("SA", "FFN"), ("SA", "GA", "FFN"))).replace(
            num_answers=10
        )
    )
    with pytest.raises(ValueError, match="genotype=None"):
        SearchModel(task, model)


def test_sampled_path_adam_leaves_unused_variables_and_moments_alone():
    from mmnas_tf.nas.search_model import SampledPathAdam

    used, unused = tf.Variable([1.0, 2.0]), tf.Variable([3.0, 4.0])
    plain_unused = tf.Variable([3.0, 4.0])
    # epsilon 0: Keras adds epsilon before the bias correction, PyTorch (and SampledPathAdam)
    # after it, so only without epsilon are the two the same formula.
    opt, plain = SampledPathAdam(0.1, epsilon=0.0), keras.optimizers.Adam(0.1, epsilon=0.0)
    opt.build([used, unused])
    plain.build([plain_unused])
    step = tf.function(lambda o, vs, gs: o.apply(gs, vs))
    step(opt, [used, unused], [tf.constant([1.0, 1.0]), tf.constant([1.0, -1.0])])
    step(plain, [plain_unused], [tf.constant([1.0, -1.0])])
    # A sampled step is an Adam step, up to float32 rounding (the two order the operations
    # differently; tests/nas/test_sampled_path_adam.py compares with torch's own numbers).
    np.testing.assert_allclose(unused.numpy(), plain_unused.numpy(), rtol=1e-6)
    before = unused.numpy()
    moments = (opt._momentums[1].numpy(), opt._velocities[1].numpy())
    step(opt, [used, unused], [tf.constant([1.0, 1.0]), tf.zeros(2)])  # unused not sampled
    step(plain, [plain_unused], [tf.zeros(2)])
    np.testing.assert_array_equal(unused.numpy(), before)
    np.testing.assert_array_equal(opt._momentums[1].numpy(), moments[0])
    np.testing.assert_array_equal(opt._velocities[1].numpy(), moments[1])
    assert not np.allclose(plain_unused.numpy(), before)  # plain Adam's momentum moves it
    np.testing.assert_allclose(used.numpy(), [0.8, 1.8], atol=1e-4)  # two Adam steps of lr 0.1
