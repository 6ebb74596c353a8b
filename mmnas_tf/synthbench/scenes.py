"""Synthetic scenes rendered as detector-like regions (the built-in benchmark's images).

A scene is a few objects with a colour, a shape, a size and a position on a 640 x 480 canvas.
It is "detected" as regions: one proposal per object (box slightly jittered), duplicate proposals
(boxes jittered more, features noisier) and background regions. A region's feature is a fixed,
seeded non-linear map of the object's attributes plus noise; position is ONLY in the box, so
questions about where things are need the boxes (RSA's relative geometry), and counting needs
objects, not proposals. Everything is vectorised numpy over all scenes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

COLOURS = ("red", "green", "blue", "yellow", "purple", "grey")
SHAPES = ("square", "circle", "triangle", "star")
SIZES = ("small", "large")
IMAGE_H, IMAGE_W = 480, 640
GRID_ROWS, GRID_COLS = 4, 5
WORLD_SEED = 20200  # the attribute -> feature map; the same for every split and size


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """Scene and detector sizes of one benchmark size (``tiny``, ``full`` or ``quick``)."""

    min_objects: int
    max_objects: int
    max_duplicates: int
    min_regions: int
    max_regions: int
    feature_dim: int


SCENE_SETTINGS = {
    "tiny": SceneSpec(4, 7, 2, 8, 28, 128),
    "full": SceneSpec(4, 10, 4, 10, 100, 2048),
    # the quickstart's: few objects, no duplicate proposals, every region fits 6 slots
    "quick": SceneSpec(3, 5, 0, 3, 6, 128),
}


@dataclasses.dataclass
class Scenes:
    """S scenes padded to K object slots (``valid`` marks real objects)."""

    colour: np.ndarray  # int [S, K]
    shape: np.ndarray  # int [S, K]
    size: np.ndarray  # int [S, K]
    boxes: np.ndarray  # float32 [S, K, 4] true boxes x1 y1 x2 y2
    valid: np.ndarray  # bool [S, K]

    def __len__(self) -> int:
        return len(self.valid)

    def __getitem__(self, index: slice) -> Scenes:
        return Scenes(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    @property
    def centers(self) -> np.ndarray:
        return (self.boxes[..., :2] + self.boxes[..., 2:]) / 2

    def distances(self) -> np.ndarray:
        """[S, K, K] centre distances; inf where either slot is empty or on the diagonal."""
        c = self.centers
        d = np.linalg.norm(c[:, :, None] - c[:, None], axis=-1)
        bad = ~(self.valid[:, :, None] & self.valid[:, None]) | np.eye(
            self.valid.shape[1], dtype=bool
        )
        return np.where(bad, np.inf, d)


def sample_scenes(num: int, spec: SceneSpec, rng: np.random.Generator) -> Scenes:
    """Objects with distinct (colour, shape) pairs, one per grid cell, sizes by class."""
    k = spec.max_objects
    count = rng.integers(spec.min_objects, spec.max_objects + 1, num)
    valid = np.arange(k)[None] < count[:, None]
    pairs = np.argsort(rng.random((num, len(COLOURS) * len(SHAPES))), axis=1)[:, :k]
    cells = np.argsort(rng.random((num, GRID_ROWS * GRID_COLS)), axis=1)[:, :k]
    size = rng.integers(0, len(SIZES), (num, k))
    side = np.where(size == 0, rng.uniform(34, 50, (num, k)), rng.uniform(70, 96, (num, k)))
    aspect = rng.uniform(0.85, 1.18, (num, k))
    w, h = side * aspect, side / aspect
    cell_w, cell_h = IMAGE_W / GRID_COLS, IMAGE_H / GRID_ROWS
    cx = (cells % GRID_COLS + 0.5) * cell_w + rng.uniform(-0.25, 0.25, (num, k)) * cell_w
    cy = (cells // GRID_COLS + 0.5) * cell_h + rng.uniform(-0.25, 0.25, (num, k)) * cell_h
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    boxes = np.clip(boxes, 0, [IMAGE_W - 1, IMAGE_H - 1, IMAGE_W - 1, IMAGE_H - 1]).astype(
        np.float32
    )
    return Scenes(pairs // len(SHAPES), pairs % len(SHAPES), size, boxes, valid)


@dataclasses.dataclass
class Regions:
    """Flat regions of many scenes, grouped by scene (``offsets[s]:offsets[s+1]``)."""

    features: np.ndarray  # [R, d]
    boxes: np.ndarray  # float32 [R, 4]
    offsets: np.ndarray  # int [S + 1]


def _jitter(boxes: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    shift = rng.uniform(-scale, scale, (len(boxes), 4)) * np.stack([w, h, w, h], -1)
    out = boxes + shift
    return np.clip(out, 0, [IMAGE_W - 1, IMAGE_H - 1, IMAGE_W - 1, IMAGE_H - 1]).astype(np.float32)


def _feature_map(dim: int):
    world = np.random.default_rng(WORLD_SEED)
    code = len(COLOURS) + len(SHAPES) + len(SIZES) + 1
    w1 = world.normal(0, 1.2, (code, 96)).astype(np.float32)
    b1 = world.normal(0, 0.3, 96).astype(np.float32)
    w2 = world.normal(0, 1 / np.sqrt(96), (96, dim)).astype(np.float32)
    b2 = world.normal(0, 0.1, dim).astype(np.float32)

    def apply(x: np.ndarray) -> np.ndarray:
        out = np.tanh(x @ w1 + b1) @ w2
        out += b2
        return np.maximum(out, 0, out=out)

    return apply


def render_regions(
    scenes: Scenes, spec: SceneSpec, rng: np.random.Generator, dtype: str = "float32"
) -> Regions:
    """Proposals of every scene: objects, duplicates and background, in random order per scene."""
    s_idx, k_idx = np.nonzero(scenes.valid)
    copies = 1 + rng.integers(0, spec.max_duplicates + 1, len(s_idx))
    obj_per_scene = np.bincount(s_idx, weights=copies, minlength=len(scenes)).astype(int)
    total = rng.integers(np.maximum(spec.min_regions, obj_per_scene), spec.max_regions + 1)
    n_bg = total - obj_per_scene

    rep = np.repeat(np.arange(len(s_idx)), copies)
    is_dup = np.ones(len(rep), bool)
    is_dup[np.cumsum(copies) - copies] = False
    obj_boxes = scenes.boxes[s_idx[rep], k_idx[rep]]
    obj_boxes = np.where(
        is_dup[:, None], _jitter(obj_boxes, 0.15, rng), _jitter(obj_boxes, 0.03, rng)
    )
    nc, ns = len(COLOURS), len(SHAPES)
    code = np.zeros((len(rep), nc + ns + len(SIZES) + 1), np.float32)
    rows = np.arange(len(rep))
    code[rows, scenes.colour[s_idx[rep], k_idx[rep]]] = 1
    code[rows, nc + scenes.shape[s_idx[rep], k_idx[rep]]] = 1
    code[rows, nc + ns + scenes.size[s_idx[rep], k_idx[rep]]] = 1
    code += rng.normal(0, 1, code.shape).astype(np.float32) * np.where(is_dup, 0.3, 0.12)[:, None]

    bg_scene = np.repeat(np.arange(len(scenes)), n_bg)
    xy = rng.uniform(0, 1, (len(bg_scene), 2)) * [IMAGE_W - 60, IMAGE_H - 60]
    wh = rng.uniform(30, 200, (len(bg_scene), 2))
    bg_boxes = np.concatenate([xy, np.minimum(xy + wh, [IMAGE_W - 1, IMAGE_H - 1])], 1).astype(
        np.float32
    )
    bg_code = rng.normal(0, 0.35, (len(bg_scene), code.shape[1])).astype(np.float32)
    bg_code[:, -1] += 1

    scene_of = np.concatenate([s_idx[rep], bg_scene])
    order = np.lexsort((rng.random(len(scene_of)), scene_of))  # by scene, random within
    features = _feature_map(spec.feature_dim)(np.concatenate([code, bg_code])[order])
    features += rng.random(features.shape, dtype=np.float32) * np.float32(0.1)  # sensor noise
    boxes = np.concatenate([obj_boxes, bg_boxes])[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(scene_of, minlength=len(scenes)))])
    return Regions(features.astype(dtype), boxes, offsets)
