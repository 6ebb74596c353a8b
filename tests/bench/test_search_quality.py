"""The estimator scoreboard (``bench.search_quality``): its figures (the statistics of
``mmnas_tf.benchmark``, and Table 2a), recomputed from the two JSON files by the functions the
scoreboard uses, checked by ``check``, and its smoke run (a 4-genotype table, one search per
estimator) with every metric present and well formed. Timings are never asserted."""

from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import pytest

from bench import search_quality as sq
from bench import search_space_table as tables
from mmnas_tf.benchmark import scoreboard_statistics
from mmnas_tf.nas import recipes


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


def _quality(picks, cpu=3.0, supernet=None):
    return {
        "default_estimator": "gumbel",
        "estimators": {
            "gumbel": {
                "seeds": list(range(len(picks))),
                "picks": list(picks),
                "supernet": supernet or {"enc[SA] dec[GA]": 0.5, "enc[SA] dec[RSA]": 0.4},
                "cpu_minutes": [cpu] * len(picks),
            }
        },
    }


def test_the_figures_of_the_two_files_are_the_statistics():
    """What the legacy scoreboard computed, the statistics give (the one owner), by hand."""
    table = _table(MEANS, noise=1.0)
    quality = _quality(["enc[SA] dec[GA]", "enc[SA] dec[RSA]", "enc[SA] dec[GA]"])
    stats = scoreboard_statistics(quality, table, runs=50)
    g = stats["estimators"]["gumbel"]
    assert g["ground_truth"]["values"] == [40.0, 20.0, 40.0]
    assert g["regret"]["values"] == [0.0, 20.0, 0.0]
    assert g["regret"]["mean"] == pytest.approx(20 / 3)
    assert g["percentile"]["values"] == [75.0, 25.0, 75.0]
    assert g["kendall_tau"]["per_seed"] == [1.0]
    assert stats["table"]["pooled_seed_std"] == pytest.approx(np.sqrt(2.0))  # values m +- 1
    assert stats["table"]["complete"] is True
    # 3 CPU-minutes of search + the pick's 1-minute retraining buy random search 4 one-minute
    # trainings without repeats: both genotypes, and the better one observed (41 or 39 > 21, 19)
    rs = g["random_search_equal_cost"]
    assert g["cpu_minutes"]["per_seed_with_retraining"] == {"0": 4.0, "1": 4.0, "2": 4.0}
    assert rs["per_seed"] == [40.0] * 3 and rs["mean_percentile"] == 75.0
    one = scoreboard_statistics(_quality(["enc[SA] dec[GA]"] * 3, cpu=0.01), table, runs=200)
    found = one["estimators"]["gumbel"]["random_search_equal_cost"]["mean"]
    assert found == pytest.approx(30.0, abs=3)  # one training: either genotype
    assert sq.table_2a(table, quality) == []  # no pool of the paper's Table 2a fits in {GA, RSA}
    sq.check(stats, quality)


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


def test_check_refuses_missing_or_malformed_figures():
    table = _table(MEANS)
    good = _quality(["enc[SA] dec[GA]"], cpu=1.0, supernet=dict.fromkeys(MEANS, 0.3))
    good["estimators"]["gumbel"]["supernet"]["enc[SA] dec[GA]"] = 0.4
    stats = scoreboard_statistics(good, table, runs=5)
    sq.check(stats, good)
    for key, message in (("supernet", "'supernet' missing"), ("cpu_minutes", "'cpu_minutes'")):
        bad = copy.deepcopy(good)
        del bad["estimators"]["gumbel"][key]
        with pytest.raises(ValueError, match=message):
            sq.check(scoreboard_statistics(bad, table, runs=5), bad)
    bad = copy.deepcopy(good)
    bad["estimators"]["gumbel"]["cpu_minutes"] = [float("nan")]
    with pytest.raises(ValueError, match=r"gumbel: cpu_minutes must be positive, got \[nan\]"):
        sq.check(stats, bad)  # main checks the file before its statistics
    bad = copy.deepcopy(good)
    bad["estimators"]["gumbel"]["picks"] = ["enc[SA] dec[FFN]"]  # not in the complete table
    with pytest.raises(ValueError, match=r"picks \['enc\[SA\] dec\[FFN\]'\] are not in the comp"):
        sq.check(scoreboard_statistics(bad, table, runs=5), bad)
    broken = copy.deepcopy(stats)
    broken["estimators"]["gumbel"]["percentile"]["interval"][1] = 100.5
    with pytest.raises(
        ValueError, match=r"gumbel: percentile must be finite and within \[0.0, 100"
    ):
        sq.check(broken, good)
    broken = copy.deepcopy(stats)
    broken["estimators"]["gumbel"]["regret"]["values"] = [float("nan")]
    with pytest.raises(ValueError, match="gumbel: regret must be finite"):
        sq.check(broken, good)
    broken = copy.deepcopy(stats)
    broken["estimators"]["gumbel"]["kendall_tau"]["per_seed"] = [1.5]
    with pytest.raises(ValueError, match=r"kendall_tau out of \[-1, 1\]: \[1.5\]"):
        sq.check(broken, good)
    broken = copy.deepcopy(stats)
    broken["estimators"]["gumbel"]["kendall_tau"]["per_seed"] = []  # a complete table: no tau
    with pytest.raises(ValueError, match="no supernet ranks the table"):
        sq.check(broken, good)
    broken = copy.deepcopy(stats)
    del broken["table"]["percentiles"]
    with pytest.raises(ValueError, match="table summary lacks 'percentiles'"):
        sq.check(broken, good)
    with pytest.raises(ValueError, match="Table 2a pool \\['GA'\\]: malformed row"):
        row = {"pool": ["GA"], "best": None, "searched": {"mean_ground_truth": None}}
        sq.check(stats, {**good, "table_2a": [row]})


def test_check_allows_a_sampled_tables_picks_until_they_are_trained():
    table = _table(MEANS)
    table.update(sample=list(MEANS), space_size=2)
    quality = _quality(["enc[SA] dec[GA]", "enc[SA] dec[FFN]"], cpu=1.0)
    stats = scoreboard_statistics(quality, table, runs=5)
    assert stats["table"]["complete"] is True  # the sample is trained; the pick comes later
    assert stats["estimators"]["gumbel"]["missing_from_table"] == ["enc[SA] dec[FFN]"]
    sq.check(stats, quality)


@pytest.mark.slow
def test_smoke_scoreboard(smoke_runs):
    run = smoke_runs["search_quality"]
    quality = run.result()
    # started without TF_CPP_MIN_LOG_LEVEL, as a user starts it: progress lines only on stderr,
    # none of TensorFlow's start-up, run-time or deprecation lines (the table builder's too)
    lines = run.stderr.splitlines()
    assert lines and all(line.startswith("epoch ") for line in lines), lines[:20]
    folder = pathlib.Path(run.dir)
    png = folder / "smoke_quality.png"  # not the docs' picture: no --plot given
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
    # the stored figures are what the shared functions recompute from the two files
    raw = {k: v for k, v in quality.items() if k not in ("statistics", "table_2a")}
    again = scoreboard_statistics(raw, table)
    assert json.dumps(again, sort_keys=True) == json.dumps(stats, sort_keys=True)
    assert quality["table_2a"] == sq.table_2a(table, raw) and "scoreboard" not in quality
    for e in stats["estimators"].values():
        for key in ("ground_truth", "percentile", "regret"):
            assert np.isfinite(e[key]["mean"]), key
        assert -1 <= e["kendall_tau"]["mean"] <= 1 and np.isfinite(
            e["random_search_equal_cost"]["mean"]
        )
    sq.check(stats, quality)
    assert png.stat().st_size > 1000 or not _has_matplotlib()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
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
