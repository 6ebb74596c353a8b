"""The committed ground-truth table (``bench/results/search_space_table.json``) and its builder.

While the build is under way the committed table is partial: the test validates what is there
and says so (a warning naming how many genotypes and seeds are in); once every genotype of the
space is present it checks the whole space with at least two seeds each."""

from __future__ import annotations

import json
import math
import os
import warnings

import pytest

from bench import search_space_table as tables

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(REPO_ROOT, "bench", "results", "search_space_table.json")


@pytest.fixture(scope="module")
def table():
    with open(TABLE, encoding="utf-8") as f:
        return json.load(f)


def test_table_format(table):
    assert table["metric"] == tables.METRIC
    assert table["space"] == tables.space()
    protocol = table["protocol"]
    assert protocol == tables.PROTOCOL  # the builder refuses to mix protocols in one file
    assert protocol["dtype"] == "float32" and protocol["bucketing"] is False
    assert protocol["eval_split"] == "val"
    assert table["command"].startswith("python -m bench.search_space_table")
    assert table["code_version"] and table["code_version"] != "unknown"
    assert table["families"] == tables.family_names(protocol)


def test_every_entry_is_well_formed(table):
    names = {str(g) for g in tables.genotypes(table["space"])}
    assert len(names) == 64
    assert set(table["genotypes"]) <= names, set(table["genotypes"]) - names
    for name, e in table["genotypes"].items():
        assert e["seeds"] and len(e["seeds"]) == len(e["seed_ids"]) == len(e["runs"]), name
        assert len(set(e["seed_ids"])) == len(e["seed_ids"]), name
        assert all(math.isfinite(v) and 0 <= v <= 100 for v in e["seeds"]), name
        assert e["params"] > 0 and e["flops"] > 0, name
        assert set(e["per_family"]) == set(table["families"]), name
        for run, value in zip(e["runs"], e["seeds"]):
            assert run[tables.METRIC] == value
            families = run["per_family"].values()
            assert sum(families) / len(families) == pytest.approx(value, abs=0.01)
            assert run["train_cpu_seconds"] > 0 and run["train_seconds"] > 0


def test_complete_or_partial(table):
    names = {str(g) for g in tables.genotypes(table["space"])}
    done = {n for n, e in table["genotypes"].items() if len(e["seeds"]) >= 2}
    if done == names:
        return  # complete: every genotype with >= 2 seeds
    trainings = sum(len(e["seeds"]) for e in table["genotypes"].values())
    warnings.warn(
        f"the committed table is PARTIAL: {len(table['genotypes'])}/{len(names)} genotypes, "
        f"{len(done)} with 2 seeds, {trainings}/{2 * len(names)} trainings",
        stacklevel=1,
    )


def test_builder_resumes_and_refuses_another_protocol(tmp_path, monkeypatch):
    calls = []

    def fake_train(data_dir, protocol, genotype, seed, batches, families, spec=None):
        calls.append((str(genotype), seed))
        per = {f: 10.0 * (1 + len(calls) % 3) for f in families}
        return {tables.METRIC: sum(per.values()) / len(per), "overall": 1.0, "per_family": per,
                "params": 5, "flops": 7, "train_seconds": 1.0, "train_cpu_seconds": 1.0,
                "final_loss": 0.1}  # fmt: skip

    monkeypatch.setattr(tables, "train_one", fake_train)
    monkeypatch.setattr(tables, "prepare_data", lambda d, p: d)
    monkeypatch.setattr(tables, "eval_batches", lambda d, p: [])
    spec = tables.space(("GA", "RSA"), 2)
    out = str(tmp_path / "t.json")
    tables.build(out, "unused", tables.PROTOCOL, 2, "cmd", limit=3, spec=spec, log=lambda s: None)
    first = json.load(open(out))
    assert sum(len(e["seeds"]) for e in first["genotypes"].values()) == 3
    order = [str(g) for g in tables.build_order(spec)]
    assert sorted(order) == sorted(str(g) for g in tables.genotypes(spec))
    assert calls == [(order[0], 0), (order[0], 1), (order[1], 0)]  # the seeds of one together
    tables.build(out, "unused", tables.PROTOCOL, 2, "cmd", spec=spec, log=lambda s: None)
    assert len(calls) == 8 and len(set(calls)) == 8  # nothing trained twice
    final = json.load(open(out))
    assert all(e["seed_ids"] == [0, 1] for e in final["genotypes"].values())
    with pytest.raises(ValueError, match="another protocol"):
        tables.build(out, "unused", {**tables.PROTOCOL, "steps": 1}, 2, "cmd", spec=spec)
    with pytest.raises(ValueError, match="holds the space"):
        tables.build(out, "unused", tables.PROTOCOL, 2, "cmd", spec=tables.space(("GA", "SA"), 2))


def test_two_shards_share_one_file(tmp_path, monkeypatch):
    calls = []

    def fake_train(data_dir, protocol, genotype, seed, batches, families, spec=None):
        calls.append((str(genotype), seed))
        per = dict.fromkeys(families, 50.0)
        return {tables.METRIC: 50.0, "overall": 50.0, "per_family": per, "params": 5,
                "flops": 7, "train_seconds": 1.0, "train_cpu_seconds": 1.0, "final_loss": 0.1}  # fmt: skip

    monkeypatch.setattr(tables, "train_one", fake_train)
    monkeypatch.setattr(tables, "prepare_data", lambda d, p: d)
    monkeypatch.setattr(tables, "eval_batches", lambda d, p: [])
    spec = tables.space(("GA", "RSA"), 2)
    out = str(tmp_path / "t.json")
    for shard in ((1, 2), (0, 2)):
        tables.build(out, "u", tables.PROTOCOL, 2, "cmd", spec=spec, shard=shard, log=print)
    assert len(calls) == len(set(calls)) == 8
    table = json.load(open(out))
    assert all(sorted(e["seed_ids"]) == [0, 1] for e in table["genotypes"].values())
    with pytest.raises(ValueError, match="shard 2/2"):
        tables.build(out, "u", tables.PROTOCOL, 2, "cmd", spec=spec, shard=(2, 2))


def test_genotype_strings_are_the_package_form():
    first = tables.genotypes()[0]
    assert str(first) == "enc[SA] dec[SA SA SA]"
    assert len({str(g) for g in tables.genotypes()}) == 64
