"""The suite entry ``serving_latency`` at smoke size: a real export of the tiny VQA model, the
development server over gRPC on localhost, 8 concurrent clients, and a stand-in of the original
(the interface of ``mmnas.model.full_vqa.Net_Full``) whose forward logs what it is given. The
report's structure and the numbers' sanity (positive, p99 >= p50, every request answered) are
asserted; timings never are."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from bench import serving_latency  # noqa: E402
from bench.summary import summarize  # noqa: E402

#: Eval-mode forward only: the entry never trains the original.
STAND_IN = textwrap.dedent(
    """
    import json, os
    import torch

    LOG = os.path.join(os.path.dirname(__file__), "forwards.jsonl")


    class Net_Full(torch.nn.Module):
        def __init__(self, cfg, init_dict):
            super().__init__()
            self.image = torch.nn.Linear(cfg.FRCNFEAT_SIZE, init_dict["ans_size"])

        def forward(self, input):
            with open(LOG, "a") as f:
                f.write(json.dumps({"training": self.training,
                                    "shapes": [list(t.shape) for t in input]}) + "\\n")
            return self.image(input[0]).mean(1)
    """
)
REQUESTS = 16  # 8 clients x 2 requests in each throughput cell


def _stand_in(folder) -> str:
    (folder / "mmnas" / "model").mkdir(parents=True)
    (folder / "arch").mkdir()
    for init in ("mmnas/__init__.py", "mmnas/model/__init__.py"):
        (folder / init).write_text("")
    (folder / "mmnas" / "model" / "full_vqa.py").write_text(STAND_IN)
    (folder / "arch" / "mmnas_vqa.json").write_text(json.dumps({"epoch0": {"enc": [], "dec": []}}))
    return str(folder)


def _ordered(latency: dict) -> None:
    assert 0 < latency["p50"] <= latency["p99"], latency
    assert latency["mean"] > 0


def test_smoke_run_through_the_signature_the_server_and_the_original(tmp_path):
    pytest.importorskip("torch")
    src = _stand_in(tmp_path / "original")
    out = serving_latency.run_serving_latency(True, src, threads=1, requests=REQUESTS)

    assert out["status"] == "ok" and out["requests"] == REQUESTS
    n = out["model"]["max_regions"]
    low, high = out["regions"]["uniform_in"]
    assert (low, high) == (2, n) and all(
        low <= m <= high for m in out["regions"]["mean_per_example"].values()
    )
    for batch in ("b1", "b8"):
        latency = out["in_process"][batch]
        assert latency["n"] == REQUESTS
        _ordered(latency)
        cell = out["grpc"][batch]
        assert (cell["clients"], cell["requests"], cell["failed"]) == (1, REQUESTS, 0)
        assert cell["batch"] == int(batch[1:])
        _ordered(cell["latency_ms"])
    assert set(out["throughput"]) == {"batching_off", "batching_on"}
    for name, cells in out["throughput"].items():
        assert set(cells) == {"own_region_count", "padded_to_max"}
        for cell in cells.values():
            assert (cell["clients"], cell["requests"], cell["failed"]) == (8, REQUESTS, 0)
            assert cell["server_batching"] is (name == "batching_on")
            assert cell["examples_per_second"] > 0
            _ordered(cell["latency_ms"])
    assert out["failed_requests"] == 0

    original = out["original"]
    assert original["status"] == "ok" and original["b1"]["n"] == REQUESTS
    _ordered(original["b1"])
    assert original["padded_regions"] == n and original["threads"] == 1
    forwards = [json.loads(line) for line in open(os.path.join(src, "mmnas/model/forwards.jsonl"))]
    # every distinct request once untimed, then the timed ones: eval mode, batch 1, padded to n
    assert len(forwards) == out["distinct"] + REQUESTS
    m = out["model"]["max_tokens"]
    for f in forwards:
        assert not f["training"]
        assert f["shapes"] == [[1, n, 16], [1, n, 5], [1, n, n, 4], [1, m], [1, m, m, 3]]
    ratio = original["b1"]["p50"] / out["in_process"]["b1"]["p50"]
    assert out["b1_speed_over_original_p50"] == pytest.approx(ratio, rel=1e-12)
    summary = summarize({"serving_latency": out})["serving_b1_speed_over_original_p50"]
    assert summary["value"] == out["b1_speed_over_original_p50"] and summary["target"] == ">= 2.0"
    assert summary["met"] is (ratio >= 2.0)
    assert out["peak_rss_mb"] > 0 and out["load_average_1min"] >= 0


class _Stop(Exception):
    pass


def test_without_the_original_one_skip_line(monkeypatch, capsys):
    def stop(*args):
        raise _Stop

    monkeypatch.setattr(serving_latency, "build_and_export", stop)  # the skip is said first
    with pytest.raises(_Stop):
        serving_latency.run_serving_latency(True, "", requests=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if "serving_latency" in line]
    assert lines == [
        "[bench] serving_latency: the original's forward skipped, no --original_src=DIR "
        "(a directory holding the original code)"
    ]
    skipped = summarize({"serving_latency": {"status": "skipped"}})
    assert skipped["serving_b1_speed_over_original_p50"] is None
