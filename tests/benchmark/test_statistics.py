"""Every statistic against a brute-force or hand-computed value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mmnas_tf.benchmark import statistics as st


def brute_sign_flip(d, alternative):
    d = np.asarray(d, float)
    sums = [np.dot(s, d) for s in itertools.product((1, -1), repeat=len(d))]
    obs = d.sum()
    if alternative == "greater":
        return np.mean([s >= obs - 1e-12 for s in sums])
    return np.mean([abs(s) >= abs(obs) - 1e-12 for s in sums])


def brute_wilcoxon(d, alternative):
    """Every sign vector over the ranks of the non-zero |d| (ties averaged), W+ counted."""
    d = np.asarray([x for x in d if x != 0], float)
    a = np.abs(d)
    ranks = np.array([np.sum(a < x) + (np.sum(a == x) + 1) / 2 for x in a])
    w = ranks[d > 0].sum()
    null = [
        sum(r for r, s in zip(ranks, signs) if s)
        for signs in itertools.product((0, 1), repeat=len(d))
    ]
    up, low = np.mean([x >= w for x in null]), np.mean([x <= w for x in null])
    return w, {"greater": up, "less": low}.get(alternative, min(1.0, 2 * min(up, low)))


def brute_tau_b(x, y):
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if a == 0 and b == 0:
            continue
        if a == 0:
            tx += 1
        elif b == 0:
            ty += 1
        elif a == b:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


def test_robust_seed_std_by_hand():
    # per-genotype medians of |a - b| over pairs: 1; 4; median(0, 3, 3) = 3 -> median 3
    assert st.robust_seed_std([[1, 2], [0, 4], [5, 5, 8], [7]]) == pytest.approx(3 / st.ROBUST)
    assert math.isnan(st.robust_seed_std([[1], [2]]))


def test_bootstrap_of_two_values_spans_them_and_is_seeded():
    # means of resamples of [0, 10]: 0 (1/4), 5 (1/2), 10 (1/4): the 2.5th and 97.5th are 0 and 10
    assert st.bootstrap_interval([0.0, 10.0]) == (0.0, 10.0)
    x = [1.0, 4.0, 2.0, 8.0, 3.0]
    assert st.bootstrap_interval(x, seed=3) == st.bootstrap_interval(x, seed=3)
    lo, hi = st.bootstrap_interval(x)
    assert 1.0 < lo < np.mean(x) < hi < 8.0
    assert st.bootstrap_interval([7.5]) == (7.5, 7.5)
    with pytest.raises(ValueError, match="non-empty list"):
        st.bootstrap_interval([])


@pytest.mark.parametrize(
    "d", [[1.0, 2.0, 3.0], [1.0, 2.0, -0.5, 3.0, 0.0], [0.3, -0.3, 1.2, -2.0, 0.7, 0.1]]
)
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_sign_flip_is_the_enumerated_permutation_p(d, alternative):
    out = st.sign_flip_test(d, alternative)
    assert out["exact"] and out["p"] == pytest.approx(brute_sign_flip(d, alternative))


def test_sign_flip_by_hand_and_monte_carlo():
    assert st.sign_flip_test([1.0, 2.0, 3.0], "greater")["p"] == 1 / 8
    assert st.sign_flip_test([1.0, 2.0, 3.0])["p"] == 2 / 8
    d = np.random.default_rng(1).normal(0.4, 1.0, size=18)  # above the exact limit
    exact = brute_sign_flip(d, "two-sided")
    out = st.sign_flip_test(d, draws=40_000)
    assert not out["exact"]
    assert abs(out["p"] - exact) < 4 * math.sqrt(exact * (1 - exact) / 40_000) + 1e-4
    with pytest.raises(ValueError, match="accepted values are"):
        st.sign_flip_test(d, "bigger")


@pytest.mark.parametrize(
    "d",
    [
        [1.0, 2.0, 3.0],
        [1.0, -1.0, 2.0, 2.0, -3.0, 0.0, 4.0],
        [0.5, 1.5, -0.5, 2.5, 1.5, 3.0, -4.0, 2.0],
    ],
)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_is_the_enumerated_signed_rank_distribution(d, alternative):
    out = st.wilcoxon_signed_rank(d, alternative)
    w, p = brute_wilcoxon(d, alternative)
    assert out["exact"] and out["statistic"] == w and out["p"] == pytest.approx(p)


def test_wilcoxon_normal_approximation_is_close_to_exact(monkeypatch):
    d = np.round(np.random.default_rng(2).normal(0.3, 1.0, size=60), 1)  # ties included
    approx = st.wilcoxon_signed_rank(d)
    monkeypatch.setattr(st, "EXACT_MAX_WILCOXON", 100)
    exact = st.wilcoxon_signed_rank(d)
    assert not approx["exact"] and exact["exact"]
    assert approx["p"] == pytest.approx(exact["p"], abs=0.01)


def test_kendall_tau_is_the_brute_force_pair_count():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30).astype(float), rng.integers(0, 4, 30).astype(float)  # many ties
    assert st.kendall_tau(x, y) == pytest.approx(brute_tau_b(x, y))
    assert st.kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert st.kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0
    with pytest.raises(ValueError, match="equal length >= 2, got 2 and 3"):
        st.kendall_tau([1, 2], [1, 2, 3])


def test_average_ranks():
    assert st.average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_ranking_by_group_splits_the_pairs():
    truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    member = [False, False, False, True, True, True]  # the top three
    # the group's order reversed, the rest kept, and the groups kept apart
    scores = [1.0, 2.0, 3.0, 12.0, 11.0, 10.0]
    split = st.ranking_by_group(scores, truth, member)
    assert split["within_group"] == -1.0 and split["within_rest"] == 1.0
    assert split["across"] == 1.0  # every member above every non-member, as in the truth
    assert split["all"] == st.kendall_tau(scores, truth)
    # one member below one non-member: 1 of 9 across pairs reversed
    split = st.ranking_by_group([1.0, 2.0, 3.0, 2.5, 5.0, 6.0], truth, member)
    assert split["across"] == pytest.approx((8 - 1) / 9)
    # a tie counts as neither
    split = st.ranking_by_group([1.0, 2.0, 3.0, 3.0, 5.0, 6.0], truth, member)
    assert split["across"] == pytest.approx(8 / 9)
    with pytest.raises(ValueError, match=">= 2 items in the group and in the rest, got 1 and 5"):
        st.ranking_by_group(scores, truth, [True] + [False] * 5)
    with pytest.raises(ValueError, match="equally long scores, truth and in_group, got 6, 6 and 2"):
        st.ranking_by_group(scores, truth, [True, False])
