"""The README's first command end to end (synthetic -> search -> retrain -> evaluate -> export ->
prediction) on a very small dataset."""

import os

import pytest

from mmnas_tf import quickstart


@pytest.mark.slow
def test_quickstart_runs_every_stage(tmp_path, capsys):
    out = quickstart.main(["quickstart", f"--workdir={tmp_path}", "--num_images=30", "--epochs=1"])
    text = capsys.readouterr().out
    for stage in ("data", "search", "retrain", "evaluate", "export"):
        assert f"=== {stage}:" in text
    assert "skipped" not in text  # every entry point exists in this checkout
    assert out["genotype"] and out["genotype"].startswith("enc[")
    assert 0.0 <= out["metrics"]["overall"] <= 100.0
    assert os.path.exists(os.path.join(out["export"], "saved_model.pb"))
    assert " -> " in out["prediction"]
    # the pictures: the search's theta curves and genotype diagram, one attention picture
    assert "=== explain:" in text
    assert sorted(out["pictures"]) == ["attention", "genotype", "theta plot"]
    for name, path in out["pictures"].items():
        assert os.path.getsize(path) > 3000 and f"{name + ':':<11} {path}" in text
