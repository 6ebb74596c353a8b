"""The table API against the smoke table's hand-computed figures."""

from __future__ import annotations

import pytest

from mmnas_tf.benchmark import Table, TableError, parse_genotype


def test_a_genotypes_figures(table_dict, smoke):
    t = Table(table_dict)
    g = smoke.name(("GA", "RSA"))
    assert t.accuracy(g) == 57.5
    assert t.seeds(g) == {0: 58.0, 1: 57.0}
    assert t.per_family(g) == {"a": 84.5, "b": 30.5}  # (86 + 83) / 2, (30 + 31) / 2
    assert t.per_family(g, seed=1) == {"a": 83.0, "b": 31.0}
    assert t.params(g) == 1001 and t.flops(g) == 20001
    assert t.cost_seconds(g) == [60.0, 66.0]
    assert t.informative_accuracy(g, ["a"]) == 84.5
    assert t.informative_families() == ["a"]
    assert t.best == (g, 57.5)


def test_percentile_and_regret_by_hand(table_dict, smoke):
    t, name = Table(table_dict), smoke.name
    # means: 51, 57.5, 48.5, 53.5, 55, 47.25, 48.5, 45.25, 40.5; dec[GA FFN] = 48.5 ties dec[FFN GA]
    assert t.percentile(name(("GA", "FFN"))) == pytest.approx(
        100 * (3 + 0.5 * 2) / 9
    )  # 47.25, 45.25, 40.5 below
    assert t.percentile(name(("GA", "RSA"))) == pytest.approx(100 * 8.5 / 9)
    assert t.regret(name(("RSA", "RSA"))) == pytest.approx(2.5)
    score = t.score([name(("GA", "RSA")), name(("FFN", "FFN"))])
    assert score["mean_ground_truth"] == pytest.approx(49.0)
    assert score["mean_regret"] == pytest.approx((0 + 17) / 2)
    assert score["ground_truth_interval"] == [40.5, 57.5]  # two values: the bootstrap's extremes


def test_a_sampled_table_is_judged_against_its_sample_only(smoke):
    name, make_table = smoke.name, smoke.make_table
    sample = [name(("RSA", "RSA")), name(("GA", "GA")), name(("FFN", "FFN"))]
    t = Table(make_table(sample=sample))
    assert t.sampled and t.reference == sample and t.space_size == 9
    assert t.best == (name(("RSA", "RSA")), 55.0)
    pick = name(("GA", "RSA"))  # 57.5, not in the sample: above all of it, negative regret
    assert t.percentile(pick) == 100.0 and t.regret(pick) == pytest.approx(-2.5)
    assert t.score([pick])["picks"][0]["in_reference"] is False
    assert t.percentile(name(("GA", "GA"))) == pytest.approx(100 * 1.5 / 3)


def test_every_genotype_is_answered(table_dict, smoke):
    t = Table(table_dict)
    assert sorted(t.reference) == sorted(smoke.ALL)
    assert t.describe(smoke.ALL[0])["in_reference"] is True


@pytest.mark.parametrize("bad", ["dec[GA RSA]", "enc[SA] dec[]", "enc[SA]dec[GA]", 7])
def test_a_malformed_genotype_names_the_accepted_format(table_dict, bad):
    with pytest.raises(TableError, match=r"accepted format enc\[OP \.\.\.\] dec\[OP \.\.\.\]"):
        Table(table_dict).accuracy(bad)


def test_an_absent_genotype_names_the_table(table_dict, smoke):
    with pytest.raises(TableError, match=r"'enc\[SA\] dec\[SA SA\]' is not in table \(9 genotypes"):
        Table(table_dict).accuracy("enc[SA] dec[SA SA]")
    with pytest.raises(TableError, match=r"no seed 5; recorded seeds \[0, 1\]"):
        Table(table_dict).per_family(smoke.ALL[0], seed=5)


def test_parse_genotype():
    assert parse_genotype("enc[SA FFN] dec[GA RSA SA FFN]") == (
        ("SA", "FFN"),
        ("GA", "RSA", "SA", "FFN"),
    )


@pytest.mark.parametrize(
    "where, key",
    [((), "genotypes"), ((), "families"), (("entry",), "runs"), (("run",), "train_cpu_seconds")],
)
def test_a_missing_key_is_named(table_dict, smoke, where, key):
    ALL = smoke.ALL
    if not where:
        del table_dict[key]
    elif where == ("entry",):
        del table_dict["genotypes"][ALL[3]][key]
    else:
        del table_dict["genotypes"][ALL[3]]["runs"][1][key]
    with pytest.raises(TableError, match=f"'{key}'"):
        Table(table_dict)


def test_a_sampled_table_needs_its_space_size(smoke):
    data = smoke.make_table(sample=[smoke.ALL[0]])
    del data["space_size"]
    with pytest.raises(TableError, match="missing key 'space_size'"):
        Table(data)


def test_space_size_and_completeness(smoke):
    t = Table(smoke.make_table())
    assert (t.space_size, t.complete) == (9, True)  # 1 x 3 x 3 pools, every genotype trained
    partial = smoke.make_table()
    del partial["genotypes"][smoke.name(("FFN", "FFN"))]
    assert (Table(partial).space_size, Table(partial).complete) == (9, False)
    sampled = smoke.make_table(sample=smoke.ALL[:3])  # the sample trained, space_size recorded
    assert (Table(sampled).space_size, Table(sampled).complete) == (9, True)
    del sampled["genotypes"][smoke.ALL[0]]
    assert Table(sampled).complete is False
