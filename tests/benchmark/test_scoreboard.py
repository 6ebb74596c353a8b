"""scoreboard_statistics on the smoke table and a made-up scoreboard, against hand values."""

from __future__ import annotations

import numpy as np
import pytest

from mmnas_tf.benchmark import Table, TableError, baselines, render_markdown, scoreboard_statistics


@pytest.fixture
def board(smoke):
    n = smoke.name
    t = Table(smoke.make_table())
    truth = {g: t.accuracy(g) for g in smoke.ALL}
    return {
        "default_estimator": "good",
        "estimators": {
            "good": {
                "seeds": [0, 1, 2, 3],
                "cpu_minutes": [2.0, 2.0, 2.0, 2.0],
                "picks": [n(("GA", "RSA")), n(("GA", "RSA")), n(("RSA", "RSA")), n(("GA", "RSA"))],
                "supernet": [truth, {g: -v for g, v in truth.items()}],
            },
            "bad": {
                "seeds": [0, 1, 2, 3],
                "cpu_minutes": [1.0, 1.0, 1.0, 1.0],
                "picks": [n(("FFN", "FFN")), n(("FFN", "RSA")), n(("GA", "GA")), n(("RSA", "FFN"))],
                "supernet": truth,
            },
        },
    }


def test_per_estimator_figures(smoke, board):
    stats = scoreboard_statistics(board, smoke.make_table())
    good = stats["estimators"]["good"]
    assert good["ground_truth"]["values"] == [57.5, 57.5, 55.0, 57.5]
    assert good["ground_truth"]["mean"] == pytest.approx(56.875)
    assert good["regret"]["mean"] == pytest.approx(0.625)
    lo, hi = good["ground_truth"]["interval"]
    assert 55.0 <= lo < 56.875 < hi <= 57.5
    assert good["kendall_tau"]["per_seed"] == [1.0, -1.0]
    assert good["kendall_tau"]["mean"] == 0.0 and good["kendall_tau"]["interval"] == [-1.0, 1.0]
    assert stats["estimators"]["bad"]["kendall_tau"] == {
        "per_seed": [1.0],
        "mean": 1.0,
        "interval": None,
    }
    assert good["cpu_minutes"]["retrain_pick"] == pytest.approx(63 / 60)  # mean of 60 s and 66 s
    t = Table(smoke.make_table())
    informative = t.informative_families()
    assert stats["table"]["informative_families"] == informative == ["a"]
    want = np.mean(
        [t.informative_accuracy(g, informative) for g in board["estimators"]["good"]["picks"]]
    )
    assert good["informative_macro"]["mean"] == pytest.approx(want)
    assert stats["scoreboard_cpu_hours"] == pytest.approx(12 / 60)


def test_pairs_and_default_against_random(smoke, board):
    stats = scoreboard_statistics(board, smoke.make_table(), runs=100)
    (pair,) = stats["pairs"]
    assert (pair["a"], pair["b"]) == ("bad", "good")  # sorted names: bad - good
    assert pair["differences"] == pytest.approx([-17.0, -12.25, -4.0, -10.25])
    assert pair["sign_flip"]["p"] == 2 / 16 and pair["wilcoxon"]["p"] == 2 / 16
    vs = stats["default"]["against_random_search"]
    cost = 2.0 + 63 / 60
    assert vs["cpu_minutes"] == pytest.approx([cost] * 4)
    expected = baselines.expected_found(Table(smoke.make_table()), "random", cost, 100, 0)
    assert vs["random_search_expected"] == pytest.approx([expected] * 4)
    assert vs["sign_flip"]["p"] == 1 / 16  # four positive differences, one-sided
    goals = stats["default"]["goals"]
    assert goals["beats_random_search_p_below_0.05"] is False  # 4 seeds cannot reach p < 0.05
    assert goals["mean_percentile_at_least_90"] is True
    assert goals["kendall_tau_at_least_0.5"] is False


def test_markdown(smoke, board):
    text = render_markdown(scoreboard_statistics(board, smoke.make_table(), runs=50))
    assert "| `good` | 4 | 56.88 [" in text
    assert "| `bad` - `good` | 4 | -10.88 | 0.125 | 0.125 |" in text
    assert "Default `good` against random search at equal cost" in text


def test_a_pick_missing_from_the_table_is_listed(smoke, board):
    board["estimators"]["bad"]["picks"][0] = "enc[SA] dec[SA SA]"
    stats = scoreboard_statistics(board, smoke.make_table(), runs=20)
    assert stats["estimators"]["bad"]["missing_from_table"] == ["enc[SA] dec[SA SA]"]
    assert stats["pairs"][0]["seeds"] == [1, 2, 3]


def test_a_scoreboard_missing_keys_is_named(smoke, board):
    del board["estimators"]["good"]["picks"]
    with pytest.raises(TableError, match="estimator 'good' lacks key 'picks'"):
        scoreboard_statistics(board, smoke.make_table())
    with pytest.raises(TableError, match="lacks key 'estimators'"):
        scoreboard_statistics({}, smoke.make_table())
