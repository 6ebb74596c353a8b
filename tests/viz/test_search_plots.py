"""Theta curves and the genotype diagram: files written, sane sizes, every block shown."""

import json
import os
import sys

import numpy as np
import pytest

from mmnas_tf.genotype import Genotype, get_op, op_names
from mmnas_tf.nas import reporting
from mmnas_tf.viz import draw_genotype, plot_selection, plot_theta_history
from mmnas_tf.viz.search_plots import (
    genotype_figure,
    genotype_labels,
    selection_figure,
    theta_curves,
    theta_figure,
)

OPS = {"encoder": ["SA", "FFN"], "decoder": ["SA", "GA", "RSA", "FFN"]}


def history(epochs=4):
    out = {}
    for e in range(1, epochs + 1):
        t = e / epochs
        out[f"epoch{e}"] = {
            "theta": {
                "ops": OPS,
                "encoder": [[0.5 + t / 2, 0.5 - t / 2], [0.5, 0.5]],
                "decoder": [[0.25, 0.25 + t / 2, 0.25, 0.25 - t / 2], [0.1, 0.2, 0.3, 0.4]],
            },
            "eval": {"loss": 1.0},
        }
    return out


def rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_theta_curves_follow_the_history(tmp_path):
    path = tmp_path / reporting.THETA_FILE
    path.write_text(json.dumps(history()))
    curves = theta_curves(str(path))
    assert list(curves) == [("encoder", 0), ("encoder", 1), ("decoder", 0), ("decoder", 1)]
    c = curves[("decoder", 0)]
    assert c["ops"] == ("SA", "GA", "RSA", "FFN") and c["epochs"] == [1, 2, 3, 4]
    np.testing.assert_allclose(c["p"][:, 1], [0.375, 0.5, 0.625, 0.75])
    fig = theta_figure(str(path))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["encoder 0", "encoder 1", "decoder 0", "decoder 1"]
    lines = {ax.get_title(): [ln.get_label() for ln in ax.lines] for ax in fig.axes}
    assert lines["decoder 1"] == ["SA", "GA", "RSA", "FFN"] and lines["encoder 0"] == ["SA", "FFN"]
    assert fig.get_supxlabel() == "epoch"
    assert theta_figure(str(path), "search cycles / 10").get_supxlabel() == "search cycles / 10"


def test_theta_plot_file(tmp_path):
    out = tmp_path / "theta.png"
    image = plot_theta_history(history(), str(out))
    assert 5_000 < os.path.getsize(out) < 500_000
    assert image.ndim == 3 and 200 < image.shape[0] < 1500 and 300 < image.shape[1] < 2000
    colours = {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}
    assert {rgb(get_op(op).colour) for op in op_names()} <= colours  # one coloured line per op


def test_theta_history_errors():
    with pytest.raises(ValueError, match="non-empty"):
        theta_curves({})
    with pytest.raises(ValueError, match="'epoch<K>'"):
        theta_curves({"first": {}})
    with pytest.raises(ValueError, match="epoch1: expected 'theta'"):
        theta_curves({"epoch1": {"eval": {}}})


@pytest.mark.parametrize(
    "genotype",
    [Genotype(("SA",) * 6, ("RSA", "GA", "FFN", "SA", "GA", "RSA") * 2), Genotype((), ("GA",))],
)
def test_genotype_diagram_lists_every_block(genotype, tmp_path):
    fig = genotype_figure(genotype)
    want = [f"encoder {i}: {op}" for i, op in enumerate(genotype.encoder)]
    want += [f"decoder {i}: {op}" for i, op in enumerate(genotype.decoder)]
    assert genotype_labels(fig) == want
    out = tmp_path / "genotype.png"
    image = draw_genotype(genotype, str(out))
    assert 3_000 < os.path.getsize(out) < 300_000
    colours = {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}
    assert {rgb(get_op(op).colour) for op in set(genotype.encoder + genotype.decoder)} <= colours


def test_search_pictures_and_fallback(tmp_path, monkeypatch):
    h = history()
    for e in h.values():
        e["genotype"] = Genotype(("SA", "SA"), ("GA", "FFN")).to_original()
    pictures = reporting.pictures(h, str(tmp_path))
    assert set(pictures) == {"theta_plot", "genotype_diagram"}
    assert (tmp_path / reporting.THETA_PLOT).exists()
    assert (tmp_path / reporting.GENOTYPE_PLOT).exists()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # no viz extra: no pictures, no error
    assert reporting.pictures(h, None) is None


SELECTION = {
    "genotype": "enc[FFN] dec[GA]",
    "argmax": "enc[SA] dec[SA]",
    "candidates": [
        {"genotype": "enc[SA] dec[SA]", "score": 0.391},
        {"genotype": "enc[FFN] dec[RSA]", "score": 0.364},
        {"genotype": "enc[FFN] dec[GA]", "score": 0.428},
    ],
}


def test_selection_bars_follow_the_scores(tmp_path):
    fig = selection_figure(SELECTION, "in_vocabulary_accuracy")
    ax = fig.axes[0]
    bars = ax.patches
    np.testing.assert_allclose([b.get_width() for b in bars], [0.391, 0.364, 0.428], rtol=1e-6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "enc[SA] dec[SA]  (argmax)",
        "enc[FFN] dec[RSA]",
        "enc[FFN] dec[GA]  (selected)",
    ]
    dark = [b.get_facecolor() for b in bars].count(bars[2].get_facecolor())
    assert dark == 1 and bars[0].get_facecolor() != bars[2].get_facecolor()  # the kept one alone
    assert "in_vocabulary_accuracy" in ax.get_xlabel()
    out = tmp_path / "selection" / "selection.json"
    out.parent.mkdir()
    out.write_text(json.dumps(SELECTION))
    image = plot_selection(str(out), str(tmp_path / "selection.png"))
    assert os.path.getsize(tmp_path / "selection.png") > 3000 and image.ndim == 3


def test_selection_errors():
    with pytest.raises(ValueError, match="'candidates': \\[\\{'genotype', 'score'\\}"):
        selection_figure({"genotype": "enc[SA] dec[SA]", "candidates": []})
    with pytest.raises(ValueError, match="a selection is"):
        selection_figure({"genotype": "x", "candidates": [{"genotype": "x"}]})
