"""What a search reports per epoch: the genotype history files, entropies, the theta plot and the
genotype diagram (PNG files next to ``genotypes.json`` and TensorBoard images)."""

from __future__ import annotations

import json
import os

import numpy as np

from mmnas_tf.files import replaced_when_written

#: The original's per-epoch architecture file (``{"epochK": {"enc": ..., "dec": ...}}``).
GENOTYPE_FILE = "genotypes.json"
#: softmax(theta) per block and epoch, with the evaluation of the argmax architecture.
THETA_FILE = "theta_history.json"
#: softmax(theta) per block over the epochs, one line per op (``mmnas_tf.viz.plot_theta_history``).
THETA_PLOT = "theta.png"
#: The latest epoch's genotype, blocks coloured by op (``mmnas_tf.viz.draw_genotype``).
GENOTYPE_PLOT = "genotype.png"


def block_probabilities(table: dict) -> list[list[float]]:
    """The rows of a ``SearchModel.theta_table()``: encoder blocks, then decoder blocks."""
    return [list(p) for p in table["encoder"]] + [list(p) for p in table["decoder"]]


def entropies(table: dict) -> list[float]:
    """Entropy (nats) of each block's op distribution (0 = decided, log P = uniform)."""
    out = []
    for p in block_probabilities(table):
        p = np.asarray(p, np.float64)
        out.append(float(-np.sum(p * np.log(np.maximum(p, 1e-12)))))
    return out


def heatmap(table: dict, cell: int = 12) -> np.ndarray:
    """softmax(theta) as an RGB image [blocks * cell, ops * cell, 3] uint8: rows are blocks
    (encoder first), columns the ops of the decoder pool; white = 0, dark blue = 1; cells of ops
    outside a block's pool are grey. What TensorBoard gets when the drawing libraries are not
    installed (:func:`pictures` is the readable version)."""
    ops = table["ops"]
    columns = list(ops["decoder"]) + [op for op in ops["encoder"] if op not in ops["decoder"]]
    rows = []
    for stage in ("encoder", "decoder"):
        for p in table[stage]:
            row = np.full(len(columns), np.nan)
            pool = ops[stage] if len(p) == len(ops[stage]) else ops[stage][:1]
            for op, value in zip(pool, p):
                row[columns.index(op)] = value
            rows.append(row)
    values = np.asarray(rows)
    white, blue = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
    rgb = white + np.nan_to_num(values)[..., None] * (blue - white)
    rgb[np.isnan(values)] = 160.0
    image = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    image[::cell, :] = 255.0  # grid lines between blocks
    return image.astype(np.uint8)


def write_history(directory: str, history: dict) -> None:
    """Writes ``genotypes.json`` (the original format, readable by ``Genotype.load``) and
    ``theta_history.json`` from the checkpointed history ``{"epochK": {"genotype", "theta",
    "eval"}}``; atomically (write + rename), so a killed run never leaves half a file."""
    ordered = sorted(history, key=lambda k: int(k[5:]))
    write_json(os.path.join(directory, GENOTYPE_FILE), {k: history[k]["genotype"] for k in ordered})
    write_json(
        os.path.join(directory, THETA_FILE),
        {k: {"theta": history[k]["theta"], "eval": history[k]["eval"]} for k in ordered},
    )


def pictures(history: dict, directory: str | None = None) -> dict[str, np.ndarray] | None:
    """The theta plot and the latest genotype's diagram as RGB arrays ``{"theta_plot",
    "genotype_diagram"}`` (written as ``theta.png`` and ``genotype.png`` into ``directory`` when
    given), or None when the drawing libraries (the ``viz`` extra) are not installed or no epoch
    has ended yet (a search resumed in its first epoch)."""
    if not history:
        return None
    try:
        from mmnas_tf import viz

        viz.require("matplotlib")
        viz.require("PIL.Image")
    except ImportError:
        return None
    from mmnas_tf.genotype import Genotype

    ordered = sorted(history, key=lambda k: int(k[5:]))
    last = ordered[-1]
    path = (lambda name: os.path.join(directory, name)) if directory else (lambda name: None)
    out = {}
    if any(len(p) > 1 for p in block_probabilities(history[last]["theta"])):
        out["theta_plot"] = viz.plot_theta_history(
            {k: {"theta": history[k]["theta"]} for k in ordered}, path(THETA_PLOT)
        )
    genotype = Genotype.from_original(history[last]["genotype"])
    out["genotype_diagram"] = viz.draw_genotype(
        genotype, path(GENOTYPE_PLOT), title=f"{last}: {genotype}"
    )
    return out


def write_json(path: str, data) -> None:
    """Writes ``data`` as JSON atomically (write + rename)."""
    with replaced_when_written(path) as f:
        json.dump(data, f, indent=1)
        f.write("\n")
