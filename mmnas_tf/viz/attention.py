"""Draws an :class:`~mmnas_tf.viz.explain.Explanation`: weighted region boxes on the image (or a
blank canvas of the image's size), the sentence's words shaded by weight, and the outcome."""

from __future__ import annotations

import numpy as np

from mmnas_tf.viz.deps import require
from mmnas_tf.viz.explain import Explanation

LONG_SIDE = 480  # the image panel's longer side in pixels
ATTENTION = (220, 40, 40)  # region and word shading
CHOSEN = (20, 160, 60)  # VG: the chosen box
CANDIDATE = (240, 150, 0)  # VG: the next best candidates
TOP_K = 3


def _font(size: int):
    font = require("PIL.ImageFont")
    try:
        return font.load_default(size=size)
    except TypeError:  # a Pillow without FreeType: the fixed bitmap font
        return font.load_default()


def _image_panel(explanation: Explanation, image):
    pil = require("PIL.Image")
    h, w = explanation.image_size
    if image is not None:
        if isinstance(image, str):
            image = pil.open(image)
        elif isinstance(image, np.ndarray):
            image = pil.fromarray(image.astype(np.uint8))
        image = image.convert("RGB")
        w, h = image.size
        sx, sy = w / explanation.image_size[1], h / explanation.image_size[0]
    else:
        image = pil.new("RGB", (w, h), (235, 235, 235))
        sx = sy = 1.0
    scale = LONG_SIDE / max(w, h)
    panel = image.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    return panel, np.array([sx, sy, sx, sy]) * scale


def _draw_regions(panel, explanation: Explanation, to_panel: np.ndarray) -> list[tuple]:
    draw_mod = require("PIL.ImageDraw")
    pil = require("PIL.Image")
    overlay = pil.new("RGBA", panel.size, (0, 0, 0, 0))
    draw = draw_mod.Draw(overlay)
    weights = explanation.region_weights
    low, high = (float(weights.min()), float(weights.max())) if len(weights) else (0.0, 1.0)
    drawn = []
    for i in np.argsort(weights, kind="stable"):  # strongest drawn last, on top
        # contrast between the regions: the least weighted faint, the most weighted full
        strength = (float(weights[i]) - low) / (high - low) if high > low else 1.0
        box = [float(v) for v in explanation.boxes[i] * to_panel]
        draw.rectangle(
            box,
            fill=ATTENTION + (int(90 * strength),),
            outline=ATTENTION + (int(40 + 215 * strength),),
            width=1 + int(3 * strength),
        )
        drawn.append((int(i), float(weights[i])))
    out = pil.alpha_composite(panel.convert("RGBA"), overlay)
    draw = draw_mod.Draw(out)
    font = _font(13)
    marked = explanation.top_regions(TOP_K)
    if explanation.chosen is not None:  # VG: the chosen region and the next best candidates
        marked = [explanation.chosen] + [i for i in marked if i != explanation.chosen][: TOP_K - 1]
    labels = []
    for rank, i in enumerate(marked):
        box = [float(v) for v in explanation.boxes[i] * to_panel]
        at = [box[0] + 3, box[1] + 2]
        while any(abs(at[0] - x) < 40 and abs(at[1] - y) < 14 for x, y in labels):
            at[1] += 15  # duplicate proposals: stack their labels instead of overprinting
        labels.append(tuple(at))
        colour = ATTENTION
        if explanation.chosen is not None:
            colour = CHOSEN if rank == 0 else CANDIDATE
            draw.rectangle(box, outline=colour, width=4 if rank == 0 else 2)
        label = f"#{rank + 1} {explanation.region_weights[i]:.2f}"
        draw.text(
            tuple(at), label, fill=colour, font=font, stroke_width=2, stroke_fill=(255, 255, 255)
        )
    if explanation.box is not None:
        box = [float(v) for v in np.asarray(explanation.box) * to_panel]
        draw.rectangle(box, outline=CHOSEN, width=2)
    return out.convert("RGB"), drawn


def _words(draw, explanation: Explanation, top: int, width: int) -> tuple[int, list[tuple]]:
    font, small = _font(16), _font(11)
    x, y = 10, top
    weights = explanation.word_weights
    peak = max(float(weights.max()), 1e-12) if len(weights) else 1.0
    drawn = []
    for word, weight in zip(explanation.words, weights):
        right = x + draw.textlength(word, font=font) + 8
        if right > width - 10 and x > 10:
            x, y = 10, y + 40
            right = x + draw.textlength(word, font=font) + 8
        shade = float(weight) / peak
        fill = tuple(int(255 - (255 - c) * shade * 0.8) for c in ATTENTION)
        draw.rectangle([x, y, right, y + 24], fill=fill)
        draw.text((x + 4, y + 3), word, fill=(0, 0, 0), font=font)
        draw.text((x + 4, y + 25), f"{weight:.2f}", fill=(90, 90, 90), font=small)
        drawn.append((word, float(weight)))
        x = right + 6
    return y + 44, drawn


def _outcome_lines(explanation: Explanation) -> list[tuple[str, float | None]]:
    e = explanation
    if e.answers:
        return [("top answers:", None)] + [(f"{a}  {s:.3f}", s) for a, s in e.answers[:5]]
    regions = [
        f"region {i} ({e.region_weights[i]:.2f})"
        for i in ([e.chosen] if e.chosen is not None else []) + e.top_regions(TOP_K)
    ]
    if e.score is not None:
        return [
            (f"match score: {e.score:.3f}", e.score),
            ("regions that drove it: " + ", ".join(regions[:TOP_K]), None),
        ]
    box = ", ".join(f"{v:.0f}" for v in e.box) if e.box is not None else "?"
    return [
        (f"chosen: {regions[0]}, box [{box}]", None),
        ("next best: " + ", ".join(r for r in regions[1:] if r != regions[0])[:80], None),
    ]


def draw_explanation(explanation: Explanation, path: str | None = None, image=None) -> dict:
    """Draws ``explanation``: the regions' boxes shaded and outlined by their weight (the top
    three numbered), on ``image`` (a path, PIL image or uint8 array; its boxes are scaled from the
    explanation's ``image_size``) or on a blank canvas of ``image_size``; the words shaded by
    their weight; then the top answers with scores (VQA), the match score and the regions that
    drove it (ITM), or the chosen box (green) and the next best candidates (orange) (VG).

    Returns ``{"image": the picture as RGB uint8 [H, W, 3], "regions": [(index, weight)],
    "words": [(word, weight)]}``, what was drawn; writes ``path`` (PNG) when given.
    """
    pil, draw_mod = require("PIL.Image"), require("PIL.ImageDraw")
    panel, to_panel = _image_panel(explanation, image)
    panel, regions = _draw_regions(panel, explanation, to_panel)
    lines = _outcome_lines(explanation)
    width = max(panel.width, 360)
    canvas = pil.new("RGB", (width, panel.height + 90 + 44 * 2 + 22 * len(lines)), "white")
    canvas.paste(panel, (0, 0))
    draw = draw_mod.Draw(canvas)
    y, words = _words(draw, explanation, panel.height + 10, width)
    font = _font(14)
    for text, value in lines:
        if value is not None:
            draw.rectangle([10, y + 3, 10 + int(140 * value), y + 17], fill=(200, 215, 240))
        draw.text((14, y + 2), text, fill=(0, 0, 0), font=font)
        y += 22
    canvas = canvas.crop((0, 0, width, y + 8))
    if path:
        canvas.save(path)
    return {"image": np.asarray(canvas), "regions": regions, "words": words}
