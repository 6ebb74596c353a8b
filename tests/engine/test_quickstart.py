"""The README's first command end to end (synthetic -> search -> retrain -> evaluate -> export ->
prediction) on a very small dataset."""

import os

import numpy as np
import pytest
import tensorflow as tf
from support.session_loader import SessionModel, loaded_outputs

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
    # TF Serving's loader path (session, restore op, init op): warm-up records of both
    # signatures replay, and predict_text answers as through tf.saved_model.load.
    loaded = tf.saved_model.load(out["export"])
    with SessionModel(out["export"]) as session:
        replayed = session.replay_warmup()
        assert {name for name, _, _ in replayed} == {"serving_default", "predict_text"}
        for name, inputs, got in replayed:
            want = loaded_outputs(loaded, inputs, name)
            np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
            assert got["top_answers"].tolist() == want["top_answers"].tolist()
        question = out["prediction"].split(" -> ")[0].strip("'\"")
        images = {k: v[:1] for k, v in replayed[0][1].items() if k != "text_ids"}
        text = {"text": np.array([question.encode()], object), **images}
        got = session.run(text, "predict_text")
        want = loaded_outputs(loaded, text, "predict_text")
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
        assert got["top_answers"].tolist() == want["top_answers"].tolist()
