"""The suite entry ``original`` (the original PyTorch code side by side with ours): the one-line
skip without ``--original_src`` or torch, the errors on bad input, the summary's ratios, and a run
on a stand-in "original" written here (the same interface: ``mmnas.model.full_vqa.Net_Full`` and
``arch/mmnas_vqa.json``). Timings are never asserted."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from bench import original as original_module  # noqa: E402
from bench.run import main, parse_args  # noqa: E402
from bench.summary import summarize  # noqa: E402


def _run_skipped(tmp_path, capsys, *flags):
    out = tmp_path / "report.json"
    report = main(["--entries=original", f"--out={out}", *flags])
    lines = [line for line in capsys.readouterr().out.splitlines() if "original: skipped" in line]
    return report["entries"]["original"], lines


def test_skipped_in_one_line_without_src(tmp_path, capsys):
    entry, lines = _run_skipped(tmp_path, capsys)
    assert entry["status"] == "skipped"
    assert entry["reason"].startswith("original: skipped, no --original_src=DIR")
    assert lines == [f"[bench] {entry['reason']}"]


def test_skipped_in_one_line_without_torch(tmp_path, capsys, monkeypatch):
    real = original_module.importlib.util.find_spec
    monkeypatch.setattr(
        original_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    entry, lines = _run_skipped(tmp_path, capsys, f"--original_src={tmp_path}")
    assert entry["status"] == "skipped"
    assert (
        entry["reason"] == "original: skipped, torch is not installed (pip install -e '.[torch]')"
    )
    assert len(lines) == 1


def test_a_directory_without_the_original_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(original_module, "unavailable", lambda src: None)  # torch "installed"
    with pytest.raises(ValueError, match=r"lacks \['mmnas/model/full_vqa.py', 'arch/mmnas_vqa"):
        main(["--entries=original", f"--original_src={tmp_path}", f"--out={tmp_path}/r.json"])


@pytest.mark.parametrize("value", ["3", "0,4", "a,b", "1,2,3"])
def test_original_batches_must_be_two_positive_counts(value, capsys):
    with pytest.raises(SystemExit):
        parse_args([f"--original_batches={value}"])
    assert "expected two positive integers TRAIN,EVAL" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["train", "train:", "fit:xla", "eval:jit", "train:xla,eval:"])
def test_original_variants_must_name_a_mode_and_a_variant(value, capsys):
    with pytest.raises(SystemExit):
        parse_args([f"--original_variants={value}"])
    err = capsys.readouterr().err
    assert "is not MODE:VARIANT with MODE one of train, eval and VARIANT one of graph, xla" in err


def test_original_variants_parse_to_extra_variants_per_mode():
    parse = original_module.parse_variants
    assert parse("") == {}
    # repeats are dropped (a default variant named again is timed once: _interleave)
    assert parse("train:xla_fused_adam,eval:xla,train:graph_fused_adam,eval:xla") == {
        "train": ("xla_fused_adam", "graph_fused_adam"),
        "eval": ("xla",),
    }
    assert parse_args(["--original_variants=train:graph"]).original_variants == "train:graph"


@pytest.mark.parametrize(
    "flags, size, train",
    [
        ({"avx2"}, "PAPER", "xla_fused_adam"),  # the trainer's XLA choice at d=512
        ({"avx2"}, "SMOKE", "graph_fused_adam"),  # d=64: below the choice's width
        ({"avx2", "avx512f"}, "PAPER", "graph_fused_adam"),
    ],
)
def test_our_default_path_follows_the_machines_choice(flags, size, train, monkeypatch):
    from bench import model_step
    from mmnas_tf import machine

    real = machine.choose
    monkeypatch.setattr(machine, "choose", lambda *a, **k: real(flags, *a[1:], **k))
    sizes = {"PAPER": model_step.PAPER, "SMOKE": original_module.SMOKE}
    assert original_module.default_variants(sizes[size]) == {"train": train, "eval": "graph"}


def test_summary_reports_ours_over_the_original_and_both_probes():
    comparisons = {
        f"{m}_{c}": {"ours_over_original": {"median": r, "min": r / 2, "max": 2 * r, "n": 3}}
        for (m, c), r in zip(
            [("train_b8", "padded"), ("eval_b64", "realistic")], (1.25, 2.5), strict=True
        )
    }
    entry = {
        "status": "ok",
        "comparisons": comparisons,
        "matmul_probe_gflops": {"tensorflow": {"median": 120.0}, "torch": {"median": 170.0}},
    }
    s = summarize({"original": entry})
    assert s["ours_over_original"] == {"train_b8_padded": 1.25, "eval_b64_realistic": 2.5}
    assert s["original_matmul_probe_gflops"] == {"tensorflow": 120.0, "torch": 170.0}
    skipped = summarize({"original": {"status": "skipped", "reason": "x"}})
    assert skipped["ours_over_original"] is None


#: A stand-in of the original: the same import path, constructor and forward inputs; it logs the
#: shapes it is given, so the test sees what the entry feeds the original.
STAND_IN = textwrap.dedent(
    """
    import json, os
    import torch

    LOG = os.path.join(os.path.dirname(__file__), "calls.jsonl")


    class Net_Full(torch.nn.Module):
        def __init__(self, cfg, init_dict):
            super().__init__()
            self.embedding = torch.nn.Embedding(init_dict["token_size"], 300)
            self.embedding.weight.data.copy_(torch.from_numpy(init_dict["pretrained_emb"]))
            self.image = torch.nn.Linear(cfg.FRCNFEAT_SIZE, cfg.HSIZE)
            self.text = torch.nn.Linear(300, cfg.HSIZE)
            self.proj = torch.nn.Linear(cfg.HSIZE, init_dict["ans_size"])
            self.genotype = cfg.GENOTYPE

        def forward(self, input):
            feat, bbox, rel, ques, qrel = input
            with open(LOG, "a") as f:
                f.write(json.dumps({"training": self.training,
                                    "shapes": [list(t.shape) for t in input],
                                    "dtypes": [str(t.dtype) for t in input]}) + "\\n")
            y = self.image(feat).mean(1) + rel.mean((1, 2, 3))[:, None]
            return self.proj(y + self.text(self.embedding(ques)).mean(1))
    """
)


def test_runs_on_a_stand_in_of_the_original(tmp_path):
    pytest.importorskip("torch")
    from bench.model_step import make_batch  # noqa: F401 - TensorFlow loads here, not at import

    src = tmp_path / "original"
    (src / "mmnas" / "model").mkdir(parents=True)
    (src / "arch").mkdir()
    for init in ("mmnas/__init__.py", "mmnas/model/__init__.py"):
        (src / init).write_text("")
    (src / "mmnas" / "model" / "full_vqa.py").write_text(STAND_IN)
    (src / "arch" / "mmnas_vqa.json").write_text(json.dumps({"epoch0": {"enc": [], "dec": []}}))
    size = original_module.SMOKE
    out = original_module.run_original(
        str(src), size, {"train": 2, "eval": 3}, 2, 1, (2, 1), {"train": ("graph",)}
    )

    assert out["status"] == "ok" and out["rounds"] == 2 and out["threads"]["torch"] == 1
    comparisons = out["comparisons"]
    assert set(comparisons) == {
        "train_b2_padded",
        "train_b2_realistic",
        "eval_b3_padded",
        "eval_b3_realistic",
    }
    for name, c in comparisons.items():
        assert c["ours_over_original"]["n"] == 2 and c["ours_over_original"]["median"] > 0
        # every variant of ours timed in the same rounds, the default first, with its first
        # call per batch; the default's figures are the top-level ones
        variants = ["graph_fused_adam", "graph"] if name.startswith("train") else ["graph"]
        assert list(c["variants"]) == variants
        default = c["variants"][c["ours_variant"]]
        assert default["ours_over_original"] == c["ours_over_original"]
        for v in c["variants"].values():
            assert v["ours_over_original"]["n"] == 2
            assert len(v["first_call_s"]) == c["batches_per_round"]
            assert all(s > 0 for s in v["first_call_s"])
        assert c["original_slots"] == size.max_regions
        batches = 1 if name.endswith("padded") else (2 if name.startswith("train") else 1)
        assert c["batches_per_round"] == batches == len(c["ours_slots"])
        assert c["examples_per_round"] == batches * int(name.split("_b")[1].split("_")[0])
    assert comparisons["train_b2_padded"]["ours_slots"] == [size.max_regions]
    # realistic: ours padded to a bucket boundary in training; the original always to 100 (here 20)
    buckets = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    assert all(s in buckets for s in comparisons["train_b2_realistic"]["ours_slots"])
    for framework in ("tensorflow", "torch"):
        assert out["matmul_probe_gflops"][framework]["n"] == 2
    # the model-shaped probe: eval batch x regions, d, 4d; every kernel once per round
    shaped = out["model_shape_probe"]
    assert shaped["shape"] == [3 * size.max_regions, size.hidden_size, 4 * size.hidden_size]
    assert set(shaped["gflops"]) == {"tensorflow", "tensorflow_xla", "torch"}
    assert all(g["n"] == 2 and g["median"] > 0 for g in shaped["gflops"].values())

    calls = [json.loads(line) for line in (src / "mmnas" / "model" / "calls.jsonl").open()]
    # warm-up (one per comparison) + 2 rounds x (1 + 2 + 1 + 1) batches
    assert len(calls) == 4 + 2 * 5
    assert {c["training"] for c in calls} == {True, False}
    for c in calls:
        b = 2 if c["training"] else 3
        r, t = size.max_regions, size.max_tokens
        assert c["shapes"] == [[b, r, 16], [b, r, 5], [b, r, r, 4], [b, t], [b, t, t, 3]]
        assert c["dtypes"][3] == "torch.int64"
