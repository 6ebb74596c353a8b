"""Bottom-up-attention region features, one ``.npz`` per image.

Keys: ``x`` (2048 x n in the widely shared VQA features, n x 2048 from newer extractors: the
layout is detected from the number of boxes), ``bbox`` (n x 4, x1 y1 x2 y2 pixels), ``image_h``,
``image_w``, optional ``num_bbox`` (only the first ``num_bbox`` rows are real).
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

_ID = re.compile(r"(\d+)(?:\.jpg|\.png)?\.npz$")


class FeatureIndex:
    """Finds an image's ``.npz`` in one or more folders (searched recursively, once).

    Lookup by file stem (``COCO_train2014_000000000009.jpg``, ``1000092795.jpg``, ``1000092795``)
    or by the integer id at the end of the name (COCO ids).
    """

    def __init__(self, dirs: Sequence[str]):
        self.dirs = list(dirs)
        self.by_name: dict[str, str] = {}
        self.by_id: dict[int, str] = {}
        for d in self.dirs:
            if not os.path.isdir(d):
                raise FileNotFoundError(f"feature folder not found: {d}")
            for root, _, files in os.walk(d):
                for f in files:
                    if not f.endswith(".npz"):
                        continue
                    path = os.path.join(root, f)
                    stem = f[: -len(".npz")]
                    self.by_name.setdefault(stem, path)
                    self.by_name.setdefault(os.path.splitext(stem)[0], path)
                    m = _ID.search(f)
                    if m:
                        self.by_id.setdefault(int(m.group(1)), path)

    def find(self, image_id: int | None = None, names: Iterable[str] = ()) -> str | None:
        for n in names:
            for key in (n, os.path.splitext(n)[0]):
                if key in self.by_name:
                    return self.by_name[key]
        return self.by_id.get(image_id) if image_id is not None else None

    def require(self, wanted: Sequence[tuple[int | None, Sequence[str]]]) -> list[str]:
        """Paths for every (image id, candidate names); one error lists every missing image."""
        paths, missing = [], []
        for image_id, names in wanted:
            path = self.find(image_id, names)
            paths.append(path)
            if path is None:
                missing.append(f"{list(names)[0] if names else ''} (id {image_id})")
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise FileNotFoundError(
                f"no region-feature .npz for {len(missing)} image(s): {shown}; searched {self.dirs}"
            )
        return paths


class BadFeatureFile(ValueError):
    """A region-feature file that exists but cannot be read; the message names the file."""


EXPECTED = (
    "a numpy .npz archive with x (n x d or d x n), bbox (n x 4), image_h, image_w "
    "and optionally num_bbox"
)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError)


def load_regions(path: str, feature_dim: int | None = None) -> dict[str, np.ndarray]:
    """Reads one ``.npz``: features [n, d] (float32, transposed if stored d x n), boxes [n, 4],
    image_size (h, w).

    Raises FileNotFoundError when ``path`` is missing and :class:`BadFeatureFile` (naming the file,
    what is wrong and what was expected) when it is truncated, not an npz archive, lacks a key or
    holds inconsistent shapes.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"region-feature file not found: {path}")
    try:
        return _read_regions(path, feature_dim)
    except BadFeatureFile:
        raise
    except _READ_ERRORS as e:
        raise BadFeatureFile(
            f"{path}: unreadable region-feature file ({type(e).__name__}: {e}); expected {EXPECTED}"
        ) from e


def _read_regions(path: str, feature_dim: int | None) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise BadFeatureFile(
            f"{path}: not a zip archive (truncated, or another format); expected {EXPECTED}"
        )
    with np.load(path, allow_pickle=False) as z:
        for key in ("x", "bbox", "image_h", "image_w"):
            if key not in z.files:
                raise BadFeatureFile(
                    f"{path}: missing key {key!r} (has {z.files}; expected {EXPECTED})"
                )
        x, boxes = np.asarray(z["x"]), np.asarray(z["bbox"], np.float32).reshape(-1, 4)
        h, w = float(z["image_h"]), float(z["image_w"])
        num = int(z["num_bbox"]) if "num_bbox" in z.files else len(boxes)
    n = len(boxes)
    if x.ndim != 2 or n not in x.shape:
        raise BadFeatureFile(
            f"{path}: x has shape {x.shape}, which matches neither n x d nor d x n for n={n} boxes"
        )
    if x.shape[0] != n:  # d x n (the shared VQA features); n == d is read as n x d
        x = x.T
    if feature_dim is not None and x.shape[1] != feature_dim:
        raise BadFeatureFile(f"{path}: features are {x.shape[1]}-d, expected {feature_dim}")
    num = min(num, n)
    return {
        "features": np.ascontiguousarray(x[:num], np.float32),
        "boxes": boxes[:num],
        "image_size": (h, w),
    }
