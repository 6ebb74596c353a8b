import json
import os

import pytest

from mmnas_tf.experiments import GENOTYPE_DIR
from mmnas_tf.genotype import Genotype, OpPools, mcan

GENOTYPES = GENOTYPE_DIR
SUMMARY = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "reference", "mmnas_arch_summary.json"
)


def test_published_architectures_ship_verbatim():
    with open(SUMMARY) as f:
        summary = json.load(f)
    assert sorted(summary) == sorted(os.listdir(GENOTYPES))
    for name, entry in summary.items():
        g = Genotype.load(os.path.join(GENOTYPES, name))
        assert list(g.encoder) == entry["enc_short"]
        assert list(g.decoder) == entry["dec_short"]
        assert g.head_size == 64
        assert g.to_original() == entry["genotype_epoch0_verbatim"]
    assert Genotype.load(os.path.join(GENOTYPES, "mcan.json")) == mcan(12, 18)


def test_reads_any_epoch_and_head_suffix(tmp_path):
    data = {
        "epoch3": {
            "enc": [["self_att_32"], ["feed_forward"]],
            "dec": [["rel_self_att_32"], ["guided_att_32"]],
        },
        "epoch12": {
            "enc": [["feed_forward"], ["feed_forward"]],
            "dec": [["self_att_32"], ["feed_forward"]],
        },
    }
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    latest = Genotype.load(str(path))
    assert latest.encoder == ("FFN", "FFN") and latest.decoder == ("SA", "FFN")
    early = Genotype.load(str(path), "epoch3")
    assert early.decoder == ("RSA", "GA") and early.head_size == 32
    with pytest.raises(ValueError, match="available"):
        Genotype.load(str(path), "epoch7")


def test_round_trips_both_formats(tmp_path):
    g = Genotype(("SA", "FFN"), ("RSA", "GA", "FFN"), head_size=16)
    for original in (False, True):
        path = tmp_path / f"g{original}.json"
        g.save(str(path), original=original)
        back = Genotype.load(str(path))
        assert back == g and back.head_size == 16


def test_rejects_bad_genotypes(tmp_path):
    with pytest.raises(ValueError, match="unknown op 'conv_3'"):
        Genotype.from_original({"enc": [["conv_3"]], "dec": [["feed_forward"]]})
    with pytest.raises(ValueError, match="not in the pool"):
        Genotype(("GA",), ("SA",))  # GA is a decoder-only op
    with pytest.raises(ValueError, match="expected 12"):
        mcan(4, 6).validate(OpPools(), num_encoder=12)
    with pytest.raises(ValueError, match="different head sizes"):
        Genotype.from_original({"enc": [["self_att_64"]], "dec": [["self_att_32"]]})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        Genotype.load(str(bad))
    with pytest.raises(ValueError, match="accepted"):
        OpPools(decoder=("SA", "CONV"))


def test_search_space_size():
    assert OpPools().search_space_size(12, 18) == 2**12 * 4**18
    assert mcan(4, 6).search_space_size() == 2**4 * 4**6
    assert OpPools(decoder=("GA", "FFN")).search_space_size(2, 3) == 2**2 * 2**3


def test_head_count_from_genotype():
    assert mcan(4, 6).num_heads(512, 1) == 8
    with pytest.raises(ValueError, match="multiple"):
        mcan(4, 6).num_heads(100, 1)
