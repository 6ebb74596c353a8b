"""The estimator scoreboard (``bench.search_quality``): its figures, recomputed from the two JSON
files by the function the scoreboard uses, and its smoke run (a 4-genotype table, one search per
estimator) with every metric present and well formed. Timings are never asserted."""

from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import pytest

from bench import search_quality as sq
from bench import search_space_table as tables
from mmnas_tf.nas import recipes


def test_kendall_tau_matches_hand_counts():
    assert sq.kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert sq.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # pairs: (1,2)+ (1,3)+ (2,3)-  -> (2 - 1) / 3
    assert sq.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tau-b with a tie in x: concordant 2, discordant 0, n0=3, ties_x=1 -> 2 / sqrt(2 * 3)
    assert sq.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))
    with pytest.raises(ValueError, match="equal length"):
        sq.kendall_tau([1, 2], [1])


def test_percentile_counts_ties_half():
    values = [10, 20, 30, 40]
    assert sq.percentile(values, 40) == pytest.approx(87.5)
    assert sq.percentile(values, 25) == pytest.approx(50.0)
    assert sq.percentile(values, 5) == 0.0


def _table(means, seeds=2, noise=0.0):
    genotypes = {}
    for k, (name, m) in enumerate(means.items()):
        values = [m + noise * (-1) ** s for s in range(seeds)]
        runs = [{"train_cpu_seconds": 60.0, "per_family": {"f": v}} for v in values]
        genotypes[name] = {
            "seeds": values,
            "seed_ids": list(range(seeds)),
            "runs": runs,
            "params": 100 + k,
            "flops": 1,
            "per_family": {"f": m},
        }
    return {
        "metric": tables.METRIC,
        "space": tables.space(("GA", "RSA"), 1),
        "families": ["f"],
        "protocol": {"eval_split": "val"},
        "genotypes": genotypes,
    }


MEANS = {"enc[SA] dec[GA]": 40.0, "enc[SA] dec[RSA]": 20.0}


def test_scoreboard_from_the_two_files():
    table = _table(MEANS, noise=1.0)
    quality = {
        "default_estimator": "gumbel",
        "estimators": {
            "gumbel": {
                "picks": ["enc[SA] dec[GA]", "enc[SA] dec[RSA]", "enc[SA] dec[GA]"],
                "supernet": {"enc[SA] dec[GA]": 0.5, "enc[SA] dec[RSA]": 0.4},
                "cpu_minutes": [3.0, 3.0, 3.0],
            }
        },
    }
    board = sq.scoreboard(table, quality)
    g = board["estimators"]["gumbel"]
    assert g["ground_truth"] == [40.0, 20.0, 40.0]
    assert g["regret"] == [0.0, 20.0, 0.0]
    assert g["mean_regret"] == pytest.approx(20 / 3)
    assert g["percentile"] == [75.0, 25.0, 75.0]
    assert g["kendall_tau"] == pytest.approx(1.0)
    assert board["table"]["seed_std"] == pytest.approx(np.sqrt(2.0))  # values m +- 1
    assert board["table"]["complete"] is True
    # 3 CPU-minutes of search + the pick's 1-minute retraining buy random search 4 one-minute
    # trainings without repeats: both genotypes, and the better one observed (41 or 39 > 21, 19)
    rs = g["random_search_equal_cost"]
    assert (rs["cpu_minutes"], rs["mean_found"], rs["mean_regret"]) == (4.0, 40.0, 0.0)
    one = sq.scoreboard(
        table,
        {
            **quality,
            "estimators": {
                "gumbel": {**quality["estimators"]["gumbel"], "cpu_minutes": [0.01] * 3}
            },
        },
    )
    assert one["estimators"]["gumbel"]["random_search_equal_cost"]["mean_found"] == pytest.approx(
        30.0, abs=3
    )  # one training: either genotype
    rows = {" ".join(r["pool"]): r for r in board["table_2a"]}
    assert set(rows) == set()  # no pool of the paper's Table 2a fits inside {GA, RSA}
    sq.check(board, {**quality, "estimators": {"gumbel": quality["estimators"]["gumbel"]}})


def test_table_2a_best_per_pool():
    means = {"enc[SA] dec[GA FFN]": 30.0, "enc[SA] dec[SA GA]": 35.0, "enc[SA] dec[RSA GA]": 50.0}
    table = _table(means)
    table["space"] = tables.space(("SA", "GA", "RSA", "FFN"), 2)
    quality = {
        "default_estimator": "gumbel",
        "estimators": {
            "gumbel": {"picks": ["enc[SA] dec[RSA GA]"], "supernet": {}, "cpu_minutes": [1.0]}
        },
        "pool_searches": {"GA FFN": ["enc[SA] dec[GA FFN]"]},
    }
    rows = {" ".join(r["pool"]): r for r in sq.table_2a(table, quality)}
    assert rows["GA FFN"]["best"]["accuracy"] == 30.0
    assert rows["GA FFN"]["searched"]["mean_ground_truth"] == 30.0
    assert rows["SA GA FFN"]["best"]["genotype"] == "enc[SA] dec[SA GA]"
    assert rows["SA GA FFN"]["searched"]["picks"] is None
    assert rows["SA GA RSA FFN"]["best"]["accuracy"] == 50.0
    assert rows["SA GA RSA FFN"]["searched"]["mean_ground_truth"] == 50.0


def test_check_refuses_missing_or_malformed_metrics():
    table = _table(MEANS)
    good = {
        "default_estimator": "gumbel",
        "estimators": {
            "gumbel": {
                "picks": ["enc[SA] dec[GA]"],
                "supernet": dict.fromkeys(MEANS, 0.3) | {"enc[SA] dec[GA]": 0.4},
                "cpu_minutes": [1.0],
            }
        },
    }
    sq.check(sq.scoreboard(table, good), good)
    for key in ("picks", "supernet", "cpu_minutes"):
        bad = copy.deepcopy(good)
        del bad["estimators"]["gumbel"][key]
        with pytest.raises((ValueError, KeyError)):
            sq.check(sq.scoreboard(table, bad), bad)
    bad = copy.deepcopy(good)
    bad["estimators"]["gumbel"]["cpu_minutes"] = [float("nan")]
    with pytest.raises(ValueError, match="cpu_minutes"):
        sq.check(sq.scoreboard(table, bad), bad)
    bad = copy.deepcopy(good)
    bad["estimators"]["gumbel"]["picks"] = ["enc[SA] dec[FFN]"]  # not in the table
    with pytest.raises(ValueError, match="mean_ground_truth"):
        sq.check(sq.scoreboard(table, bad), bad)


def test_smoke_scoreboard(smoke_runs):
    run = smoke_runs["search_quality"]
    quality = run.result()
    folder = pathlib.Path(run.dir)
    png = folder / "quality.png"
    table = json.loads((folder / "smoke_table.json").read_text())
    names = {str(g) for g in tables.genotypes(table["space"])}
    assert set(table["genotypes"]) == names and len(names) == 4
    assert quality["default_estimator"] == sq.DEFAULT_ESTIMATOR == "gumbel_selection"
    assert set(quality["estimators"]) == set(sq.ESTIMATORS)
    # the picks of main before the search ran through the library's search function
    before = {
        "gumbel": "enc[SA] dec[GA GA]",
        "gumbel_sampled": "enc[SA] dec[GA GA]",
        "proxyless": "enc[SA] dec[GA GA]",
        "uniform": "enc[SA] dec[RSA RSA]",
    }
    assert {k: quality["estimators"][k]["picks"][0] for k in before} == before
    # gumbel is gumbel_selection's theta search, whose 4-genotype space gets 1 candidate (5%)
    gs = quality["estimators"]["gumbel_selection"]
    assert gs["details"][0]["theta"] == quality["estimators"]["gumbel"]["details"][0]["theta"]
    assert [c["genotype"] for c in gs["details"][0]["selection_candidates"]] == gs["picks"]
    for name, e in quality["estimators"].items():
        assert e["recipe"] == recipes.get_recipe(name).to_json(), name
        assert e["provenance"][0]["commit"] and e["provenance"][0]["tensorflow"], name
    for name, e in quality["estimators"].items():
        assert set(e["picks"]) <= names, name
        assert set(e["supernet"]) == names, name
        assert len(e["supernets"]) == len(e["seeds"]) and e["supernets"][0] == e["supernet"], name
        assert all(0 <= v <= 100 for v in e["supernet"].values()), name
        assert len(e["cpu_minutes"]) == len(e["picks"]) and min(e["cpu_minutes"]) > 0
    assert quality["estimators"]["uniform"]["details"][0]["selection_candidates"]
    # the statistics over seeds are written beside the scoreboard, one entry per estimator
    stats = quality["statistics"]
    assert set(stats["estimators"]) == set(quality["estimators"])
    assert len(stats["pairs"]) == len(quality["estimators"]) * (len(quality["estimators"]) - 1) // 2
    # the stored scoreboard is what the shared function recomputes from the two files
    board = sq.scoreboard(table, {k: v for k, v in quality.items() if k != "scoreboard"})
    assert json.dumps(board, sort_keys=True) == json.dumps(quality["scoreboard"], sort_keys=True)
    for e in board["estimators"].values():
        for key in ("mean_ground_truth", "mean_percentile", "mean_regret", "kendall_tau"):
            assert np.isfinite(e[key]), key
    assert png.stat().st_size > 1000 or not _has_matplotlib()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_theta_history_reruns_the_scoreboard_search(smoke_runs, tmp_path):
    """``--theta_history``: seed 0 of the default estimator rerun with theta recorded after the
    warm-up and every search cycle picks what the scoreboard's search picked, and the history is
    drawn."""
    run = smoke_runs["search_quality"]
    quality = run.result()
    table = json.loads((pathlib.Path(run.dir) / "smoke_table.json").read_text())
    settings = {**sq.SEARCH, **sq.SMOKE_SEARCH}
    out = tmp_path / "theta"
    result = sq.theta_histories(
        table, str(tmp_path / "data"), ["gumbel", "uniform"], settings, str(out), 1, quality
    )
    assert set(result) == {"gumbel"}  # uniform has no theta
    assert result["gumbel"]["pick"] == result["gumbel"]["scoreboard_pick"] is not None
    history = json.loads((out / "theta_gumbel.json").read_text())
    assert sorted(history) == ["epoch0", "epoch1", "epoch2"]  # 2 smoke search cycles
    for entry in history.values():
        for row in entry["theta"]["decoder"]:
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
    assert history["epoch0"] != history["epoch2"]  # the theta steps moved it
    assert (out / "theta_gumbel.png").stat().st_size > 1000 or not _has_matplotlib()
