"""The committed ground-truth tables (``bench/results/search_space_table.json`` and, once
committed, ``search_space_table_large.json``) and their builder.

The first table is complete (every genotype with at least two seeds); its extra seeds (3 per
genotype, 5 per bimodal one) arrive while the builder runs, so the test accepts any count >= 2
but fails on a table that breaks the builder's invariants (:func:`check_table`): a run without
provenance or from an unchecked commit or machine kind, seed ids with gaps, figures that are
not their runs' means, a sample that its seed does not draw."""

from __future__ import annotations

import copy
import json
import math
import os

import pytest

from bench import search_space_table as tables

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(REPO_ROOT, "bench", "results", "search_space_table.json")
LARGE = TABLE.replace(".json", "_large.json")


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
    assert table["rules"] == tables.RULES  # decided before the extra seeds and the second table
    assert table["origin"]["machine_kind"] == "intel-amx"


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


def test_table_is_complete_and_sound(table):
    names = {str(g) for g in tables.genotypes(table["space"])}
    assert set(table["genotypes"]) == names  # every genotype of the space
    short = {n: len(e["seeds"]) for n, e in table["genotypes"].items() if len(e["seeds"]) < 2}
    assert not short, f"genotypes with fewer than 2 seeds: {short}"
    assert tables.check_table(table) == []
    assert sum(tables.runs_per_machine_kind(table).values()) == sum(
        len(e["runs"]) for e in table["genotypes"].values()
    )


def test_committed_informative_families(table):
    """The rule's verdict on the committed table (docs/search_results.md, "Protocol")."""
    stats = tables.family_stats(table)
    assert tables.informative_families(table) == ["colour_of_shape", "furthest_colour"]
    assert stats["colour_of_shape"]["between_std"] > 10 * stats["colour_of_shape"]["seed_std"]
    two_hop = stats["two_hop"]  # the closest miss: 2.67 between genotypes, 1.71 seed std
    assert two_hop["seed_std"] < two_hop["between_std"] < 3 * two_hop["seed_std"]
    assert 0.5 < tables.table_seed_std(table) < 2.0  # 0.83 with two seeds per genotype


def test_large_table_if_committed():
    if not os.path.exists(LARGE):
        pytest.skip("the large table is not committed yet")
    with open(LARGE, encoding="utf-8") as f:
        large = json.load(f)
    assert large["space"] == tables.space_large() and large["space_size"] == 1024
    assert large["protocol"] == tables.PROTOCOL and large["rules"] == tables.RULES
    assert len(large["sample"]) >= tables.SAMPLE
    assert tables.check_table(large) == []


def _broken(table, how):
    bad = copy.deepcopy(table)
    name = sorted(bad["genotypes"])[0]
    entry = bad["genotypes"][name]
    if how == "seed gap":
        entry["seed_ids"][-1] = 7
    elif how == "no provenance":
        del entry["runs"][0]["provenance"]
    elif how == "unchecked commit":
        entry["runs"][0]["provenance"]["commit"] = "0" * 40
    elif how == "per-family mean":
        entry["per_family"][bad["families"][0]] += 1.0
    elif how == "seed value":
        entry["seeds"][0] += 1.0
    return bad


@pytest.mark.parametrize(
    "how, message",
    [
        ("seed gap", "are not 0..1"),
        ("no provenance", "no provenance"),
        ("unchecked commit", "never passed the code-version check"),
        ("per-family mean", "is not the mean of its runs"),
        ("seed value", "is not its families' mean"),
    ],
)
def test_check_table_names_what_is_broken(table, how, message):
    problems = tables.check_table(_broken(table, how))
    assert len(problems) == 1 and message in problems[0], problems


def test_builder_resumes_and_refuses_another_protocol(tmp_path, monkeypatch):
    calls = []

    def fake_train(data_dir, protocol, genotype, seed, batches, families, spec=None):
        calls.append((str(genotype), seed))
        per = {f: 10.0 * (1 + len(calls) % 3) for f in families}
        return {
            tables.METRIC: sum(per.values()) / len(per),
            "overall": 1.0,
            "per_family": per,
            "params": 5,
            "flops": 7,
            "train_seconds": 1.0,
            "train_cpu_seconds": 1.0,
            "final_loss": 0.1,
        }

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
        return {
            tables.METRIC: 50.0,
            "overall": 50.0,
            "per_family": per,
            "params": 5,
            "flops": 7,
            "train_seconds": 1.0,
            "train_cpu_seconds": 1.0,
            "final_loss": 0.1,
        }

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


# ---- the builder's provenance, code-version check, rules and large space (fake trainings) ----
DATA = "no-data-generated"  # prepare_data is replaced: the data hash is of an empty folder


def _fake_trainer(monkeypatch, calls, value):
    """Replaces the training by ``value(genotype string, seed)`` (every family at that value)."""

    def fake_train(data_dir, protocol, genotype, seed, batches, families, spec=None):
        calls.append((str(genotype), seed))
        v = value(str(genotype), seed)
        return {
            tables.METRIC: v,
            "overall": v,
            "per_family": dict.fromkeys(families, v),
            "params": 5,
            "flops": 7,
            "train_seconds": 1.0,
            "train_cpu_seconds": 1.0,
            "final_loss": 0.1,
        }

    monkeypatch.setattr(tables, "train_one", fake_train)
    monkeypatch.setattr(tables, "prepare_data", lambda d, p: d)
    monkeypatch.setattr(tables, "eval_batches", lambda d, p: [])


def _quiet(_):
    pass


def test_every_run_records_its_provenance(tmp_path, monkeypatch):
    calls = []
    _fake_trainer(monkeypatch, calls, lambda g, s: 40.0 + s)
    monkeypatch.setattr(tables, "code_version", lambda: "a" * 40)
    out = str(tmp_path / "t.json")
    spec = tables.space(("GA", "RSA"), 2)
    tables.build(out, DATA, tables.PROTOCOL, 2, "cmd", spec=spec, log=_quiet)
    table = json.load(open(out))
    assert table["origin"] == {
        "commit": "a" * 40,
        "machine_kind": tables.machine_kind(
            tables.cpu_info()["vendor"], tables.cpu_info()["flags"]
        ),
    }
    runs = [r for e in table["genotypes"].values() for r in e["runs"]]
    assert len(runs) == 8
    for run in runs:
        prov = run["provenance"]
        assert set(prov) == set(tables.PROVENANCE_KEYS)
        assert prov["commit"] == "a" * 40 and prov["data_hash"] == table["data_hash"]
        assert prov["tensorflow"] and prov["keras"] and prov["numpy"]
        assert prov["threads"]["cpus"] >= 1
        assert table["cpu_flags"][prov["cpu_flags"]] == " ".join(tables.cpu_info()["flags"])
    assert tables.check_table(table) == []
    assert tables.runs_per_machine_kind(table) == {runs[0]["provenance"]["machine_kind"]: 8}


def test_machine_kinds():
    assert tables.machine_kind("GenuineIntel", ["avx2", "avx512f", "amx_tile"]) == "intel-amx"
    assert tables.machine_kind("AuthenticAMD", ["avx2", "avx512f", "avx512_bf16"]) == "amd-avx512"
    assert tables.machine_kind("AuthenticAMD", ["sse2", "avx2"]) == "amd-avx2"
    assert tables.machine_kind("", []) == "cpu-other"


def test_data_hash_reads_records_not_bytes(tmp_path):
    """The same example serialised with its feature map in two orders (as two processes with
    other string hashes write it): other bytes, one hash."""
    import tensorflow as tf

    feats = {
        k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        for k, v in (("a", 1), ("b", 2), ("c", 3))
    }
    one = [tf.train.Features(feature={k: f}).SerializeToString() for k, f in feats.items()]
    raw = []
    for order in (one, one[::-1]):  # map entries are repeated fields: they concatenate
        body = b"".join(order)
        raw.append(b"\x0a" + bytes([len(body)]) + body)  # Example.features, field 1
    assert raw[0] != raw[1]
    assert tf.train.Example.FromString(raw[0]) == tf.train.Example.FromString(raw[1])
    hashes = []
    for name, record in zip("xy", raw):
        (tmp_path / name).mkdir()
        with tf.io.TFRecordWriter(str(tmp_path / name / "train.tfrecord")) as w:
            w.write(record)
        hashes.append(tables.data_hash(str(tmp_path / name)))
    assert hashes[0] == hashes[1]
    (tmp_path / "y" / "vocab.txt").write_text("a b\n")
    assert tables.data_hash(str(tmp_path / "y")) != hashes[0]


def _two_seed_table(tmp_path, monkeypatch, value):
    """A 4-genotype table of two seeds each built by commit aaa (the origin)."""
    calls = []
    _fake_trainer(monkeypatch, calls, value)
    monkeypatch.setattr(tables, "code_version", lambda: "aaa")
    out = str(tmp_path / "t.json")
    spec = tables.space(("GA", "RSA"), 2)
    tables.build(out, DATA, tables.PROTOCOL, 2, "cmd", spec=spec, log=_quiet)
    return out, spec, calls


#: seed noise 0.4 on three genotypes, the best (60) stable; one bimodal (10 points apart)
BASE = {"enc[SA] dec[GA GA]": 60.0, "enc[SA] dec[GA RSA]": 50.0, "enc[SA] dec[RSA GA]": 45.0}


def _value(g, s):
    return BASE[g] + 0.4 * (s % 2) if g in BASE else 40.0 + 10.0 * (s % 2)


def test_version_check_refuses_a_run_that_does_not_reproduce(tmp_path, monkeypatch):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    table = json.load(open(out))
    std = tables.table_seed_std(table)
    assert std == pytest.approx(0.4 / tables.ROBUST)
    assert tables.stable_run(table) == ("enc[SA] dec[GA GA]", 0, 60.0)
    # a new commit whose numerics moved by more than the robust seed std: refused, recorded
    monkeypatch.setattr(tables, "code_version", lambda: "bbb")
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 1.5 * std)
    before = len(calls)
    with pytest.raises(
        RuntimeError,
        match=r"code-version check FAILED: commit bbb on .*enc\[SA\] dec\[GA GA\] seed 0",
    ):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert calls[before:] == [("enc[SA] dec[GA GA]", 0)]  # only the check trained
    table = json.load(open(out))
    assert all(len(e["seeds"]) == 2 for e in table["genotypes"].values())
    (check,) = table["verifications"]
    assert check["passed"] is False and check["difference"] == pytest.approx(1.5 * std, abs=1e-3)
    with pytest.raises(RuntimeError, match="FAILED"):  # the recorded failure: no new training
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert len(calls) == before + 1
    # another commit within the tolerance adds the runs
    monkeypatch.setattr(tables, "code_version", lambda: "ccc")
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 0.5 * std)
    tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    table = json.load(open(out))
    assert all(len(e["seeds"]) >= 3 for e in table["genotypes"].values())
    assert [v["passed"] for v in table["verifications"]] == [False, True]
    assert tables.check_table(table) == []
    kinds = {r["provenance"]["commit"] for e in table["genotypes"].values() for r in e["runs"]}
    assert kinds == {"aaa", "ccc"}


def test_cli_reports_a_refusal_in_one_line(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise RuntimeError("code-version check FAILED: commit bbb on amd-avx2: ...")

    monkeypatch.setattr(tables, "build", refuse)
    assert tables.main(["--smoke", f"--out={tmp_path / 't.json'}"]) == 2
    err = capsys.readouterr().err
    assert err == "search_space_table: code-version check FAILED: commit bbb on amd-avx2: ...\n"


def test_a_one_seed_table_checks_a_new_commit_on_its_samples_best_run_with_the_first_tables_noise(
    tmp_path, monkeypatch
):
    first, _, calls = _two_seed_table(tmp_path, monkeypatch, _value)  # commit aaa, std 0.4/ROBUST
    std = tables.table_seed_std(json.load(open(first)))
    spec = tables.space_large(("GA", "RSA"), 2)
    out = str(tmp_path / "large.json")
    build = dict(spec=spec, sample_size=6, sample_seed=3, log=_quiet)
    _fake_trainer(monkeypatch, calls, lambda g, s: 40.0 + len(g) + 0.1 * len(calls))
    tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", **build)  # its own origin
    table = json.load(open(out))
    best = max(table["genotypes"], key=lambda g: table["genotypes"][g]["seeds"][0])
    assert tables.stable_run(table) == (best, 0, table["genotypes"][best]["seeds"][0])
    recorded = table["genotypes"][best]["seeds"][0]
    # a new commit: without a table that has seed noise there is nothing to check against
    monkeypatch.setattr(tables, "code_version", lambda: "bbb")
    with pytest.raises(ValueError, match="one seed per genotype: no seed noise"):
        tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", **build)
    # moved by 1.5 x the first table's robust seed std: refused after training only the check
    _fake_trainer(monkeypatch, calls, lambda g, s: recorded + 1.5 * std)
    before = len(calls)
    with pytest.raises(RuntimeError, match=r"code-version check FAILED: commit bbb"):
        tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", noise=first, **build)
    assert calls[before:] == [(best, 0)]
    (check,) = json.load(open(out))["verifications"]
    assert check["tolerance"] == pytest.approx(std, abs=1e-3) and check["passed"] is False
    # another commit that reproduces it within that std adds runs (here a pick)
    monkeypatch.setattr(tables, "code_version", lambda: "ccc")
    _fake_trainer(monkeypatch, calls, lambda g, s: recorded + 0.5 * std)
    pick = next(str(g) for g in tables.genotypes(spec) if str(g) not in table["sample"])
    tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", picks=[pick], noise=first, **build)
    table = json.load(open(out))
    assert table["picks"] == [pick] and pick in table["genotypes"]
    assert tables.check_table(table) == []
    # the pick beats the sample's best, but it is not part of the reference: the check stays
    assert table["genotypes"][pick]["seeds"][0] > recorded
    assert tables.stable_run(table) == (best, 0, recorded)


def test_a_reference_with_seed_noise_keeps_its_own_tolerance(tmp_path, monkeypatch):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)  # std 0.4 / ROBUST
    std = tables.table_seed_std(json.load(open(out)))
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    wide, _, _ = _two_seed_table(noisy, monkeypatch, lambda g, s: _value(g, 0) + 4.0 * (s % 2))
    assert tables.table_seed_std(json.load(open(wide))) > 5 * std
    monkeypatch.setattr(tables, "code_version", lambda: "bbb")
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 1.5 * std)
    with pytest.raises(RuntimeError, match="code-version check FAILED"):  # not the wide noise
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet, noise=wide)


def test_cli_reference_of_the_large_table(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(tables, "build", lambda *a, **kw: seen.append(kw))
    out = f"--out={tmp_path / 'large.json'}"
    for extra in ([], ["--reference=self"], ["--reference=other.json"]):
        assert tables.main(["--space=large", out, *extra]) == 0
    first = os.path.join("bench", "results", "search_space_table.json")
    assert [kw["reference"] for kw in seen] == [first, None, "other.json"]
    assert [kw["noise"] for kw in seen] == [first] * 3  # one seed each: the first table's noise
    assert {(kw["sample_size"], kw["bimodal_seeds"]) for kw in seen} == {(tables.SAMPLE, 1)}
    assert tables.main([out]) == 0  # the first table is its own reference, 3 / 5 seeds
    assert (seen[-1]["reference"], seen[-1]["bimodal_seeds"]) == (None, tables.BIMODAL_SEEDS)
    assert seen[-1]["noise"] is None


def test_bimodal_genotypes_get_more_seeds_first(tmp_path, monkeypatch):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    table = json.load(open(out))
    assert tables.bimodal(table) == ["enc[SA] dec[RSA RSA]"]  # 10 points >= 5 x 0.59
    order = tables.build_order(spec)
    todo = tables.pending(table, order, 3, 5)
    assert todo[:3] == [(tables.genotypes(spec)[3], s) for s in (2, 3, 4)]
    assert [s for _, s in todo[3:]] == [2, 2, 2]
    assert tables.pending(table, order, 2, 5) == todo[:3]  # the target counts per genotype
    tables.build(out, DATA, tables.PROTOCOL, 3, "c", spec=spec, bimodal_seeds=5, log=_quiet)
    table = json.load(open(out))
    assert {g: len(e["seeds"]) for g, e in table["genotypes"].items()} == {
        **dict.fromkeys(BASE, 3),
        "enc[SA] dec[RSA RSA]": 5,
    }


def test_informative_rule_and_macros():
    """Between-genotype std >= 3 x the family's robust seed std, else not informative."""
    seeds = {"g1": (80.0, 81.0), "g2": (60.0, 60.0), "g3": (40.0, 42.0)}  # family a
    noise = {"g1": (50.0, 53.0), "g2": (52.0, 50.0), "g3": (51.0, 49.0)}  # family b
    table = {"families": ["a", "b"], "genotypes": {}}
    for g in seeds:
        runs = [{"per_family": {"a": a, "b": b}} for a, b in zip(seeds[g], noise[g])]
        per = {f: sum(r["per_family"][f] for r in runs) / 2 for f in ("a", "b")}
        table["genotypes"][g] = {
            "runs": runs,
            "per_family": per,
            "seeds": [(r["per_family"]["a"] + r["per_family"]["b"]) / 2 for r in runs],
        }
    stats = tables.family_stats(table)
    assert stats["a"]["seed_std"] == pytest.approx(1.0 / tables.ROBUST)  # median of 1, 0, 2
    assert stats["a"]["between_std"] == pytest.approx(math.sqrt((20**2 + 0.5**2 + 19.5**2) / 2))
    assert stats["b"]["seed_std"] == pytest.approx(2.0 / tables.ROBUST)
    assert stats["b"]["between_std"] == pytest.approx(
        math.sqrt(((2 / 3) ** 2 + (1 / 6) ** 2 + (5 / 6) ** 2) / 2)
    )
    assert tables.informative_families(table) == ["a"]
    assert tables.macros(table["genotypes"]["g1"], ["a"]) == {"all": 66.0, "informative": 80.5}
    # the large table takes its seed noise from another table (one seed per genotype)
    one_seed = copy.deepcopy(table)
    for e in one_seed["genotypes"].values():
        e["runs"], e["seeds"] = e["runs"][:1], e["seeds"][:1]
    assert math.isnan(tables.family_stats(one_seed)["a"]["seed_std"])
    assert tables.informative_families(one_seed, noise=table) == ["a"]


def test_large_space_and_its_sample():
    large = tables.space_large()
    assert large["encoder"] == [["SA", "FFN"]] * 2 and len(large["decoder"]) == 4
    names = [str(g) for g in tables.genotypes(large)]
    assert len(names) == len(set(names)) == 1024
    drawn = [str(g) for g in tables.sample(large, 96, 0)]
    assert drawn == [str(g) for g in tables.sample(large, 96, 0)]  # reproducible from its seed
    assert len(set(drawn)) == 96 and set(drawn) <= set(names)
    assert drawn != [str(g) for g in tables.sample(large, 96, 1)]
    with pytest.raises(ValueError, match="expected 1..1024"):
        tables.sample(large, 1025)
    assert tables.stage_pools(large) == (("SA", "FFN"), tables.DECODER_POOL, 4)
    assert tables.stage_pools(tables.space()) == (("SA",), tables.DECODER_POOL, 3)


def test_large_build_keeps_its_sample(tmp_path, monkeypatch):
    calls = []
    _fake_trainer(monkeypatch, calls, lambda g, s: 40.0)
    spec = tables.space_large(("GA", "RSA"), 2)
    out = str(tmp_path / "large.json")
    build = dict(spec=spec, sample_size=6, sample_seed=3, log=_quiet)
    tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", limit=4, **build)
    table = json.load(open(out))
    drawn = [str(g) for g in tables.sample(spec, 6, 3)]
    assert table["space_size"] == 16 and table["sample"] == drawn and table["sample_seed"] == 3
    assert [g for g, _ in calls] == drawn[:4]  # in draw order: a partial table is a sample too
    tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", **build)
    assert sorted(json.load(open(out))["genotypes"]) == sorted(drawn)
    assert tables.check_table(json.load(open(out))) == []
    with pytest.raises(ValueError, match="another sample"):
        tables.build(out, DATA, tables.PROTOCOL, 1, "c", **{**build, "sample_seed": 4})
    tampered = json.load(open(out))
    tampered["sample"][0] = (
        "enc[SA SA] dec[GA GA]"
        if drawn[0] != "enc[SA SA] dec[GA GA]"
        else "enc[FFN FFN] dec[GA GA]"
    )
    assert any("not the one seed 3 draws" in p for p in tables.check_table(tampered))


def test_picks_outside_the_sample_get_a_ground_truth_but_stay_out_of_the_reference(
    tmp_path, monkeypatch
):
    from mmnas_tf.benchmark.table import Table

    calls = []
    _fake_trainer(monkeypatch, calls, lambda g, s: 60.0 if g == pick else 40.0 + len(calls))
    spec = tables.space_large(("GA", "RSA"), 2)
    drawn = [str(g) for g in tables.sample(spec, 6, 3)]
    pick = next(str(g) for g in tables.genotypes(spec) if str(g) not in drawn)
    board = tmp_path / "board.json"
    board.write_text(json.dumps({"estimators": {"a": {"picks": [pick, drawn[0], pick]}}}))
    assert tables.scoreboard_picks(str(board)) == [pick, drawn[0]]
    out = str(tmp_path / "large.json")
    build = dict(spec=spec, sample_size=6, sample_seed=3, log=_quiet)
    tables.build(
        out, DATA, tables.PROTOCOL, 1, "cmd", picks=tables.scoreboard_picks(str(board)), **build
    )
    table = json.load(open(out))
    assert [g for g, _ in calls] == drawn + [pick]  # the sample first, then the picks, once
    assert table["picks"] == [pick] and table["sample"] == drawn
    assert tables.check_table(table) == []
    ref = Table(table)
    assert pick not in ref.reference and ref.accuracy(pick) == 60.0
    assert ref.percentile(pick) == 100.0 and ref.best[0] != pick  # placed in, not added to
    table["picks"].append("enc[XX XX] dec[GA GA]")
    assert any("not in the space" in p for p in tables.check_table(table))
    with pytest.raises(ValueError, match="is not a genotype of the space"):
        tables.build(out, DATA, tables.PROTOCOL, 1, "cmd", picks=["enc[SA] dec[GA GA]"], **build)
    with pytest.raises(ValueError, match="picks are for a sampled space"):
        tables.build(
            str(tmp_path / "s.json"),
            DATA,
            tables.PROTOCOL,
            1,
            "cmd",
            spec=tables.space(("GA", "RSA"), 2),
            picks=[pick],
            log=_quiet,
        )


@pytest.mark.slow
def test_large_smoke_build_trains_searchable_encoder_slots(tmp_path, capsys):
    """The real training on the smoke protocol: a genotype with two encoder slots over
    {SA, FFN} trains and is recorded; the supernet over the large space searches those slots."""
    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task

    out, data = str(tmp_path / "large.json"), str(tmp_path / "data")
    argv = ["--space=large", "--smoke", "--limit=1", f"--out={out}", f"--data_dir={data}"]
    assert tables.main(argv) == 0
    table = json.load(open(out))
    spec = tables.space_large(tables.SMOKE_POOL, tables.SMOKE_DECODER)
    assert table["space"] == spec and table["space_size"] == 16
    assert table["sample"] == [str(g) for g in tables.sample(spec, tables.SMOKE_LARGE_SAMPLE)]
    (name,) = table["genotypes"]
    assert name == table["sample"][0] and tables.check_table(table) == []
    assert table["genotypes"][name]["runs"][0]["provenance"]["data_hash"] == tables.data_hash(data)
    protocol = {**tables.PROTOCOL, **tables.SMOKE}
    config = tables.model_config(data, protocol, None, spec)
    assert config.num_encoder_blocks == 2 and config.pools.encoder == ("SA", "FFN")
    # the protocol decides the dropout generator; without the key (every committed table and
    # board) it is "uniform", whatever ModelConfig's default is
    assert "dropout_generator" not in tables.PROTOCOL and config.dropout_generator == "uniform"
    other = tables.model_config(data, {**protocol, "dropout_generator": "bytes"}, None, spec)
    assert other.dropout_generator == "bytes"
    task = get_task("vqa")
    search = SearchModel(task, task.build_model(config.replace(num_answers=len(questions.ANSWERS))))
    assert search.stages == {"encoder": 2, "decoder": 2}
    assert [stage for stage, _, _ in search.mixed] == ["encoder"] * 2 + ["decoder"] * 2
    for g in tables.sample(spec, tables.SMOKE_LARGE_SAMPLE):
        search.arch_of(g)  # every sampled genotype is a path of the supernet
    assert tables.main(["--report", f"--out={out}", "--space=large"]) == 0
    assert "runs_per_machine_kind" in capsys.readouterr().out


def _other_data(monkeypatch, digest="0123456789abcdef"):
    """Data that hash apart from the table's (as a new machine's copy did on 2026-12-07)."""
    monkeypatch.setattr(tables, "data_hash", lambda d: digest)


def _build_with_one_check_training(out, spec, calls) -> tuple[dict, list[str]]:
    """Builds 3 seeds; asserts that the stable run was trained first and once (the data check
    and the code-version check share it). Returns the table and the logged lines."""
    before = len(calls)
    logged = []
    tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=logged.append)
    assert calls[before] == ("enc[SA] dec[GA GA]", 0)
    assert calls[before + 1 :].count(("enc[SA] dec[GA GA]", 0)) == 0
    return json.load(open(out)), logged


def test_data_that_hash_apart_join_only_after_reproducing_a_run_exactly(tmp_path, monkeypatch):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    old = json.load(open(out))["data_hash"]
    # the same data for training: the stable run comes out exactly; a new commit's code-version
    # check reproduces the same run, so one training serves both checks
    _other_data(monkeypatch)
    monkeypatch.setattr(tables, "code_version", lambda: "bbb")
    table, logged = _build_with_one_check_training(out, spec, calls)
    (check,) = table["data_checks"]
    assert check["passed"] is True and check["table_data_hash"] == old
    assert check["reproduced"] == check["recorded"] == dict.fromkeys(table["families"], 60.0)
    assert table["data_hash"] == old and tables.same_data(table) == {old, "0123456789abcdef"}
    assert all(len(e["seeds"]) >= 3 for e in table["genotypes"].values())
    assert tables.check_table(table) == []
    assert any(line.startswith("data check passed: 0123456789abcdef") for line in logged)
    # a contradicting record is named
    table["data_checks"][0]["reproduced"]["a"] = 1.0
    assert "data check of 0123456789abcdef: 'passed' contradicts its numbers" in (
        tables.check_table(table)
    )


def test_data_that_train_otherwise_are_refused_and_the_failure_recorded(tmp_path, monkeypatch):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    _other_data(monkeypatch)
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 0.001)
    before = len(calls)
    with pytest.raises(RuntimeError, match=r"data check FAILED: enc\[SA\] dec\[GA GA\] seed 0"):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert len(calls) == before + 1  # only the check trained
    table = json.load(open(out))
    assert [c["passed"] for c in table["data_checks"]] == [False]
    assert all(len(e["seeds"]) == 2 for e in table["genotypes"].values())
    with pytest.raises(RuntimeError, match="a data check of 0123456789abcdef failed"):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert len(calls) == before + 1  # the recorded failure: no new training
    # runs recorded with data the table has not accepted are named
    table = json.load(open(out))
    run = table["genotypes"]["enc[SA] dec[GA GA]"]["runs"][0]
    run["provenance"]["data_hash"] = "0123456789abcdef"
    assert any(
        "data hash 0123456789abcdef is not the table's" in p for p in tables.check_table(table)
    )


def _new_kind(monkeypatch, out):
    """This process pretends to be a machine kind the table has no run of."""
    real = tables.provenance
    monkeypatch.setattr(tables, "provenance", lambda d: {**real(d), "machine_kind": "intel-amx"})
    if json.load(open(out))["origin"]["machine_kind"] == "intel-amx":
        pytest.skip("this machine is of the kind the test pretends to be")


def test_data_that_hash_apart_on_a_new_machine_kind_join_by_the_version_check(
    tmp_path, monkeypatch
):
    """No run of the kind to reproduce exactly (another kind's kernels round otherwise): the
    code-version check on these data decides, one training serving both checks."""
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    _other_data(monkeypatch)
    _new_kind(monkeypatch, out)
    std = tables.table_seed_std(json.load(open(out)))
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 0.5 * std)  # within the std
    table, logged = _build_with_one_check_training(out, spec, calls)
    (check,) = table["data_checks"]
    (verified,) = table["verifications"]
    assert check["method"] == tables.BY_VERSION_CHECK and check["passed"] is True
    assert check["machine_kind"] == verified["machine_kind"] == "intel-amx"
    assert check["reproduced"] == verified["reproduced"] == pytest.approx(60.0 + 0.5 * std)
    assert check["recorded"] == 60.0 and check["tolerance"] == verified["tolerance"]
    assert verified["provenance"]["data_hash"] == check["data_hash"] == "0123456789abcdef"
    assert tables.same_data(table) == {table["data_hash"], "0123456789abcdef"}
    assert all(len(e["seeds"]) >= 3 for e in table["genotypes"].values())
    assert tables.check_table(table) == []
    assert any("holds no run of this machine kind (intel-amx)" in line for line in logged)
    assert any(line.startswith("data check passed: 0123456789abcdef with") for line in logged)
    assert sum(line.startswith("code-version check passed") for line in logged) == 1
    # a record whose numbers contradict its verdict is named
    table["data_checks"][0]["reproduced"] = 70.0
    assert "data check of 0123456789abcdef: 'passed' contradicts its numbers" in (
        tables.check_table(table)
    )


def test_data_that_hash_apart_on_a_new_machine_kind_failing_the_version_check_are_refused(
    tmp_path, monkeypatch
):
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    _other_data(monkeypatch)
    _new_kind(monkeypatch, out)
    std = tables.table_seed_std(json.load(open(out)))
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 1.5 * std)
    before = len(calls)
    with pytest.raises(RuntimeError, match=r"code-version check FAILED: commit aaa on intel-amx"):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert len(calls) == before + 1  # only the check trained
    table = json.load(open(out))
    assert "data_checks" not in table and [v["passed"] for v in table["verifications"]] == [False]
    assert all(len(e["seeds"]) == 2 for e in table["genotypes"].values())
    # the recorded failure refuses without training again
    with pytest.raises(RuntimeError, match="code-version check FAILED"):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert len(calls) == before + 1


def test_once_a_new_kind_is_admitted_its_other_data_are_checked_exactly(tmp_path, monkeypatch):
    """After the version check admitted a new kind's data, that check's run is a run of the kind
    on accepted data: a third copy of the data must retrain it exactly."""
    out, spec, calls = _two_seed_table(tmp_path, monkeypatch, _value)
    _other_data(monkeypatch)
    _new_kind(monkeypatch, out)
    tables.build(out, DATA, tables.PROTOCOL, 2, "cmd", spec=spec, log=_quiet)
    assert [c["method"] for c in json.load(open(out))["data_checks"]] == [tables.BY_VERSION_CHECK]
    _other_data(monkeypatch, "fedcba9876543210")
    _fake_trainer(monkeypatch, calls, lambda g, s: _value(g, s) + 0.001)  # not the same digits
    before = len(calls)
    with pytest.raises(RuntimeError, match=r"data check FAILED: enc\[SA\] dec\[GA GA\] seed 0"):
        tables.build(out, DATA, tables.PROTOCOL, 3, "cmd", spec=spec, log=_quiet)
    assert calls[before:] == [("enc[SA] dec[GA GA]", 0)]
    checks = json.load(open(out))["data_checks"]
    assert [(c["data_hash"], c["passed"], "method" in c) for c in checks] == [
        ("0123456789abcdef", True, True),
        ("fedcba9876543210", False, False),
    ]
