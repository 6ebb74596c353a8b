"""``python -m mmnas_tf.benchmark``: its output and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mmnas_tf.benchmark.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def files(tmp_path, smoke):
    table = tmp_path / "table.json"
    table.write_text(json.dumps(smoke.make_table()))
    board = tmp_path / "board.json"
    board.write_text(
        json.dumps(
            {
                "default_estimator": "a",
                "estimators": {
                    "a": {
                        "seeds": [0, 1],
                        "picks": [smoke.name(("GA", "RSA"))] * 2,
                        "cpu_minutes": [1.0, 1.0],
                    }
                },
            }
        )
    )
    return str(table), str(board)


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_show_and_score(files, capsys, smoke):
    code, out, _ = run(["show", files[0], smoke.name(("RSA", "RSA"))], capsys)
    got = json.loads(out)
    assert code == 0 and got["accuracy"] == 55.0 and got["params"] == 1004
    assert got["regret"] == 2.5 and got["train_cpu_seconds"] == [60.0, 66.0]
    code, out, _ = run(
        ["score", files[0], smoke.name(("RSA", "RSA")), smoke.name(("GA", "RSA"))], capsys
    )
    assert code == 0 and json.loads(out)["mean_ground_truth"] == 56.25


def test_baseline_and_stats(files, capsys):
    code, out, _ = run(["baseline", files[0], "--method=local", "--budget=30", "--runs=5"], capsys)
    assert code == 0 and json.loads(out)["mean"] == [57.5]  # 30 minutes: every genotype, best seen
    code, out, _ = run(
        [
            "baseline",
            files[0],
            "--method=evolution",
            "--budget",
            "1",
            "30",
            "--runs=5",
            "--population=4",
        ],
        capsys,
    )
    got = json.loads(out)
    assert got["options"] == {"population": 4, "sample_size": 3} and got["budget_minutes"] == [
        1.0,
        30.0,
    ]
    code, out, _ = run(["stats", files[1], files[0], "--runs=10", "--markdown"], capsys)
    assert code == 0 and "| `a` | 2 | `enc[SA] dec[GA RSA]` x2 | 57.50 [57.50, 57.50]" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["show", "{table}", "GA RSA"],
            "'GA RSA' is not in the accepted format enc[OP ...] dec[OP ...]",
        ),
        (["show", "{table}", "enc[SA] dec[SA]"], "'enc[SA] dec[SA]' is not in"),
        (["show", "/nonexistent.json", "enc[SA] dec[SA]"], "no table file '/nonexistent.json'"),
        (["baseline", "{broken}", "--budget=3"], "missing key 'families'"),
        (["baseline", "{table}", "--budget=-1"], "must be positive"),
    ],
)
def test_errors_name_the_problem(files, tmp_path, capsys, argv, message):
    broken = tmp_path / "broken.json"
    data = json.loads(open(files[0]).read())
    del data["families"]
    broken.write_text(json.dumps(data))
    argv = [a.format(table=files[0], broken=broken) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and message in err and err.startswith("error: ")


def test_module_entry_point_without_tensorflow(files, smoke):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "mmnas_tf.benchmark", "show", files[0], smoke.name(("GA", "GA"))],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accuracy"] == 51.0
    light = "import sys, mmnas_tf.benchmark; sys.exit(int('tensorflow' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", light], env=env, check=False).returncode == 0
