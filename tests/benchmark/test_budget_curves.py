"""``python -m bench.budget_curves`` on smoke tables: the report's metadata, curves, placements
and statistics, and the two pictures."""

from __future__ import annotations

import json

import pytest

from bench import budget_curves

LONGER = "a (warm-up 1800 + search 200 cycles)"


def test_report_and_pictures(tmp_path, smoke):
    pytest.importorskip("matplotlib")
    (tmp_path / "search_space_table.json").write_text(json.dumps(smoke.make_table()))
    sample = smoke.ALL[:5]
    (tmp_path / "search_space_table_large.json").write_text(
        json.dumps(smoke.make_table(sample=sample))
    )
    board = {
        "default_estimator": "a",
        "estimators": {
            "a": {
                "seeds": [0, 1],
                "picks": [smoke.name(("GA", "RSA")), smoke.name(("RSA", "RSA"))],
                "cpu_minutes": [3.0, 4.0],
                "supernet": {g: 1.0 for g in smoke.ALL},
            }
        },
    }
    (tmp_path / "search_quality.json").write_text(json.dumps(board))
    longer = {  # the same estimator at a longer warm-up: placed beside it, named by its budget
        **board,
        "search": {"warmup_cycles": 1800, "search_cycles": 200},
        "estimators": {"a": {**board["estimators"]["a"], "cpu_minutes": [9.0, 10.0]}},
    }
    (tmp_path / "search_quality_warmup1800.json").write_text(json.dumps(longer))
    out, pics = tmp_path / "r.json", (tmp_path / "a.png", tmp_path / "b.png")
    argv = [
        f"--results={tmp_path}",
        f"--out={out}",
        f"--plot={pics[0]}",
        f"--plot_large={pics[1]}",
        "--runs=20",
    ]
    assert budget_curves.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python -m bench.budget_curves --results=")
    assert "machine" in report and "load_average_1min" in report
    first, large = report["spaces"]["first"], report["spaces"]["large"]
    assert sorted(first["curves"]) == ["evolution", "local", "random"]
    assert list(large["curves"]) == ["random"] and large["reference"] == 5
    assert first["curves"]["evolution"]["options"] == {"population": 8, "sample_size": 3}
    grid = first["curves"]["random"]["budget_minutes"]
    assert grid[0] == pytest.approx(63 / 60) and grid[-1] == pytest.approx(9 * 63 / 60)
    a, a_longer = first["estimators"]["a"], first["estimators"][LONGER]
    assert list(first["estimators"]) == ["a", LONGER]
    assert a["cpu_minutes"] == pytest.approx(3.5 + 63 / 60)  # mean search + the pick's training
    assert a["ground_truth"] == pytest.approx((57.5 + 55.0) / 2) and a["default"] is True
    assert a_longer["estimator"] == a["estimator"] == "a"
    assert a_longer["cpu_minutes"] == pytest.approx(9.5 + 63 / 60)
    assert a_longer["ground_truth"] == a["ground_truth"]  # the same picks
    (other,) = first["other_budgets"].values()
    assert other["budget"] == "warm-up 1800 + search 200 cycles"
    assert other["statistics"]["estimators"]["a"]["cpu_minutes"]["search"] == pytest.approx(9.5)
    assert "other_budgets" not in large
    assert first["statistics"]["estimators"]["a"]["kendall_tau"]["mean"] == 0.0  # constant scores
    assert "statistics" not in large and large["estimators"] == {}  # no scoreboard yet
    assert all(p.stat().st_size > 10_000 for p in pics)
