"""Smoke test of the benchmark suite: ``python -m bench.run --suite=all --smoke`` runs and its
report has the promised structure. Timings are NEVER asserted (shared, noisy machines). The runs
are started together by ``conftest.smoke_runs``."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATUSES = ("ok", "skipped")


def test_smoke_report_structure(smoke_runs):
    report = smoke_runs["all"].result()
    assert report["schema"] == "mmnas_tf.bench/1" and report["smoke"] is True
    for key in ("cpu", "cores", "tensorflow"):
        assert key in report["machine"]
    # the entries run with the machine's oneDNN choice, as a program of ours does (an exported
    # value kept), and the report says what TensorFlow really ran
    from mmnas_tf import machine
    from mmnas_tf.precision import cpu_flags

    value = os.environ.get(machine.ONEDNN_ENV) or machine.choose().onednn_opts
    expected = {"1": True, "0": False}.get(value, machine.tensorflow_onednn_default(cpu_flags()))
    assert report["machine"]["onednn_env"] == (value or "unset")
    assert report["machine"]["onednn_on"] is expected
    assert set(report["load_average_1min"]) == {"start", "end"}

    sys.path.insert(0, REPO_ROOT)
    from bench.run import ENTRIES

    assert set(report["entries"]) == set(ENTRIES)
    for name, entry in report["entries"].items():
        assert entry["status"] in STATUSES, (name, entry)
        if entry["status"] == "skipped":
            assert entry["reason"], name
            continue
        assert entry["suite"] == ENTRIES[name][0]
        if name != "peak":
            assert entry["peak_rss_mb"] > 0, name
    entries = report["entries"]
    assert entries["peak"]["peak_gflops"] > 0
    for name in ("train_b8", "eval_b64", "eval_b8", "train_b64"):
        for variant in entries[name]["variants"].values():
            assert {"median", "min", "max", "n"} <= set(variant["step_s"])
            assert variant["traces"] >= 1
    assert set(entries["bucketing"]["examples_per_s"]) == {"padded", "bucketed"}
    dropout = entries["dropout_generator"]  # the training step with each generator, A/B
    assert set(dropout["generators"]) == {"uniform", "bytes"}
    for g in dropout["generators"].values():
        assert g["step_s"]["n"] >= 1 and g["traces"] == 1
    assert dropout["keep_probability"]["bytes"] * 256 == round(
        dropout["keep_probability"]["bytes"] * 256
    )
    assert len(dropout["uniform_over_bytes"]["per_round"]) == dropout["rounds"]
    split = entries["search_cycle"]["split"]  # the gumbel cycle: weight steps vs theta step
    assert set(split) == {"weight_steps_over_5_fixed", "theta_step_over_1_fixed"}
    assert all(v["n"] >= 1 and np.isfinite(v["median"]) for v in split.values())  # no timing claim
    for fn in entries["retrace"]["functions"].values():
        assert {"after_warmup", "end", "constant"} <= set(fn)
    summary = report["summary"]
    assert set(summary["targets"]) >= {
        "train_b8_percent_of_peak",
        "eval_b64_percent_of_peak",
        "bucketing_speedup",
        "search_gumbel_over_fixed",
        "pipeline_over_train",
        "no_retracing",
    }


@pytest.mark.slow
def test_search_benchmarks_smoke(smoke_runs):
    """The searched-vs-random table and the search diagnosis run end to end on tiny data."""
    report = smoke_runs["searched_vs_random"].result()
    for arm in ("searched", "random"):
        (row,) = report[arm]
        assert row["genotype"].startswith("enc[")
        assert 0 <= row["relational"] <= 1 and len(row["runs"]) == 1
        assert set(report["summary"][arm]) == {"accuracy", "relational", "non_relational", "params"}
    assert set(report["searched"][0]["search_seconds"]) == {"warmup", "total"}

    report = smoke_runs["search_diagnosis"].result()
    assert set(report["probe_after_warmup"]) >= {"mcan_rsa", "mcan_sa", "rsa_everywhere"}
    variant = report["variants"]["gumbel:all"]
    assert len(variant["history"]) == 2  # smoke: 2 search cycles, one record per cycle
    shares = [h["rsa_share"] for h in variant["history"]]
    assert all(0 < s < 1 for s in shares)
    assert 0 <= variant["inherited"]["relational"] <= 1
