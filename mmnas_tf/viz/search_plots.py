"""The search, drawn: softmax(theta) per block over epochs and the genotype diagram."""

from __future__ import annotations

import io
import json
import os

import numpy as np

from mmnas_tf.genotype import Genotype, get_op, op_names
from mmnas_tf.viz.deps import pyplot, require


def _legend_ops() -> list:
    """Every registered op (colour, label), the same legend in every picture."""
    return [get_op(op) for op in op_names()]


def load_theta_history(history) -> dict:
    """``theta_history.json`` (a path) or its dict, epochs in order: ``{"epochK": {"theta":
    {"encoder", "decoder", "ops"}, "eval"}}``."""
    if isinstance(history, (str, os.PathLike)):
        with open(history, encoding="utf-8") as f:
            history = json.load(f)
    if not isinstance(history, dict) or not history:
        raise ValueError("a theta history is a non-empty {'epochK': {'theta': ...}} mapping")
    try:
        ordered = sorted(history, key=lambda k: int(k[5:]))
    except ValueError:
        raise ValueError(
            f"theta history keys must be 'epoch<K>', got {sorted(history)[:3]}"
        ) from None
    for key in ordered:
        table = history[key].get("theta") if isinstance(history[key], dict) else None
        if not table or not all(k in table for k in ("encoder", "decoder", "ops")):
            raise ValueError(f"{key}: expected 'theta' with 'encoder', 'decoder' and 'ops'")
    return {k: history[k] for k in ordered}


def theta_curves(history) -> dict:
    """``{("encoder", i): {"ops": (...), "epochs": [K...], "p": [epochs, ops]}}`` for every block
    whose pool has more than one op (fixed blocks have nothing to plot)."""
    history = load_theta_history(history)
    epochs = [int(k[5:]) for k in history]
    first = next(iter(history.values()))["theta"]
    curves = {}
    for stage in ("encoder", "decoder"):
        pool = tuple(first["ops"][stage])
        for i in range(len(first[stage])):
            p = np.asarray([h["theta"][stage][i] for h in history.values()], np.float64)
            if p.shape[1] > 1:
                curves[(stage, i)] = {"ops": pool, "epochs": epochs, "p": p}
    return curves


def _to_png(fig, path: str | None) -> np.ndarray:
    """Writes ``fig`` to ``path`` (when given) and returns it as an RGB uint8 array."""
    plt = pyplot()
    image = require("PIL.Image")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    plt.close(fig)
    data = buffer.getvalue()
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return np.asarray(image.open(io.BytesIO(data)).convert("RGB"))


def theta_figure(history, xlabel: str = "epoch"):
    """The matplotlib figure of :func:`plot_theta_history` (a grid, one panel per block)."""
    plt = pyplot()
    ticker = require("matplotlib.ticker")
    curves = theta_curves(history)
    if not curves:
        raise ValueError("no block of this search has more than one candidate op: nothing to plot")
    cols = min(len(curves), 6)
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.4 * cols, 2.1 * rows + 0.6), dpi=90, squeeze=False, sharey=True
    )
    for ax, ((stage, i), c) in zip(axes.flat, curves.items()):
        for j, op in enumerate(c["ops"]):
            ax.plot(c["epochs"], c["p"][:, j], color=get_op(op).colour, label=op, lw=1.6)
        ax.set_title(f"{stage} {i}", fontsize=9)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    legend = _legend_ops()
    handles = [plt.Line2D([], [], color=op.colour, lw=2) for op in legend]
    labels = [op.label for op in legend]
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.supxlabel(xlabel, fontsize=8)
    fig.supylabel("softmax(theta)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def plot_theta_history(history, path: str | None = None, xlabel: str = "epoch") -> np.ndarray:
    """softmax(theta) of every searched block over the epochs, one line per op (in the op's
    registered colour, ``genotype.OpDef.colour``), one labelled panel per block (encoder first).

    Args:
      history: the ``theta_history.json`` the search writes (a path or its loaded dict).
      path: PNG to write (optional).
      xlabel: what the history's ``epochK`` keys count (a search: epochs).

    Returns the picture as an RGB uint8 array [H, W, 3] (what goes to TensorBoard).
    """
    return _to_png(theta_figure(history, xlabel), path)


def genotype_figure(genotype: Genotype, title: str | None = None):
    """The matplotlib figure of :func:`draw_genotype`."""
    plt = pyplot()
    patches = require("matplotlib.patches")
    stages = (
        ("encoder", "text: words -> LSTM", genotype.encoder),
        ("decoder", "image: regions -> linear", genotype.decoder),
    )
    width = max(len(genotype.encoder), len(genotype.decoder), 1)
    fig, ax = plt.subplots(figsize=(1.2 * width + 2.6, 2.6), dpi=80)
    for row, (stage, source, ops) in enumerate(stages):
        y = 1 - row
        ax.text(-0.15, y, source, ha="right", va="center", fontsize=8)
        for i, op in enumerate(ops):
            ax.add_patch(
                patches.FancyBboxPatch(
                    (i + 0.05, y - 0.3),
                    0.9,
                    0.6,
                    boxstyle="round,pad=0.02",
                    facecolor=get_op(op).colour,
                    edgecolor="black",
                    lw=0.8,
                )
            )
            ax.text(
                i + 0.5,
                y + 0.08,
                get_op(op).label,
                ha="center",
                va="center",
                fontsize=10,
                color="white",
                weight="bold",
            )
            ax.text(
                i + 0.5,
                y - 0.18,
                f"{stage[:3]} {i}",
                ha="center",
                va="center",
                fontsize=7,
                color="white",
                gid=f"{stage} {i}: {op}",
            )
            if i:
                ax.annotate("", (i + 0.05, y), (i - 0.05, y), arrowprops={"arrowstyle": "->"})
        if not ops:
            ax.text(0.5, y, "(no blocks)", ha="center", va="center", fontsize=8)
    for i, op in enumerate(genotype.decoder):
        colour = get_op(op).colour
        if "guide" in get_op(op).needs and genotype.encoder:  # GA attends to the encoder's output
            ax.annotate(
                "",
                (i + 0.5, 0.3),
                (len(genotype.encoder) - 0.5, 0.7),
                arrowprops={"arrowstyle": "->", "color": colour, "alpha": 0.6, "lw": 0.8},
            )
    handles = [patches.Patch(color=op.colour, label=op.label) for op in _legend_ops()]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    ax.set_xlim(-2.6, width + 0.1)
    ax.set_ylim(-0.45, 1.45)
    ax.axis("off")
    ax.set_title(title or f"genotype: {genotype}", fontsize=9)
    fig.tight_layout()
    return fig


def genotype_labels(fig) -> list[str]:
    """The block labels drawn in a genotype figure (``"encoder 0: SA"``...), in drawing order."""
    return [t.get_gid() for t in fig.axes[0].texts if t.get_gid()]


def draw_genotype(genotype: Genotype, path: str | None = None, title: str | None = None):
    """The genotype as two rows of blocks coloured and labelled by op (``genotype.OpDef``): the
    encoder over the sentence, the decoder over the regions, GA blocks (ops that need the encoder
    output) linked to it.

    Returns the picture as an RGB uint8 array [H, W, 3]; writes ``path`` (PNG) when given.
    """
    return _to_png(genotype_figure(genotype, title), path)


def load_selection(selection) -> dict:
    """``selection.json`` (a path) or its dict: ``{"genotype", "candidates": [{"genotype",
    "score", ...}], "argmax"?}``."""
    if isinstance(selection, (str, os.PathLike)):
        with open(selection, encoding="utf-8") as f:
            selection = json.load(f)
    candidates = selection.get("candidates") if isinstance(selection, dict) else None
    if not candidates or not all("genotype" in c and "score" in c for c in candidates):
        raise ValueError("a selection is {'genotype', 'candidates': [{'genotype', 'score'}, ...]}")
    return selection


def selection_figure(selection, score_name: str = "the selection's score"):
    """The matplotlib figure of :func:`plot_selection`."""
    plt = pyplot()
    selection = load_selection(selection)
    candidates = selection["candidates"]
    scores = [c["score"] for c in candidates]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(candidates) + 1.1), dpi=90)
    rows = range(len(candidates))
    colours = [
        "#1f6fb4" if c["genotype"] == selection["genotype"] else "#9db8d3" for c in candidates
    ]
    ax.barh(list(rows), scores, color=colours, height=0.7)
    low, high = min(scores), max(scores)
    pad = max(high - low, 1e-3) * 0.4
    ax.set_xlim(low - pad, high + pad)
    labels = []
    for c in candidates:
        marks = [
            m
            for m, g in (("argmax", selection.get("argmax")), ("selected", selection["genotype"]))
            if c["genotype"] == g
        ]
        labels.append(c["genotype"] + (f"  ({', '.join(marks)})" if marks else ""))
    ax.set_yticks(list(rows), labels, fontsize=7, family="monospace")
    ax.invert_yaxis()  # the evaluation order, the argmax first
    for row, score in zip(rows, scores):
        ax.text(score, row, f" {score:.3f}", va="center", fontsize=7)
    ax.set_xlabel(f"{score_name} on D_a, the supernet's inherited weights", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(
        f"selection: {len(candidates)} candidates, {selection['genotype']} kept", fontsize=9
    )
    fig.tight_layout()
    return fig


def plot_selection(
    selection, path: str | None = None, score_name: str = "the selection's score"
) -> np.ndarray:
    """The selection step of a search: one bar per scored candidate in evaluation order (after a
    theta search the argmax first), the kept one dark, argmax and selected named.

    Args:
      selection: the ``selection.json`` a search writes (a path or its loaded dict).
      path: PNG to write (optional).
      score_name: what the score is (VQA: the in-vocabulary accuracy).

    Returns the picture as an RGB uint8 array [H, W, 3].
    """
    return _to_png(selection_figure(selection, score_name), path)
