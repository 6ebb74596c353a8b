"""Shared fixtures: the reference vectors made with the original PyTorch code (tests/fixtures)."""

import json
import os

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "reference")
TEXT_KEY = {"vqa": "ques_ix", "itm": "cap_ix", "vg": "query_ix"}


class Reference:
    """One task's reference vectors: metadata, io arrays, checkpoint and architecture paths."""

    def __init__(self, task):
        self.task = task
        base = os.path.join(FIXTURES, f"mmnas_{task}_small")
        self.checkpoint = base + ".pkl"
        self.weights_npz = base + "_weights.npz"
        self.arch = base + "_arch.json"
        with open(base + ".json") as f:
            self.meta = json.load(f)
        with np.load(base + "_io.npz") as z:
            self.io = {k: z[k] for k in z.files}

    @property
    def inputs(self):
        io = self.io
        return {
            "text_ids": io[TEXT_KEY[self.task]].astype("int32"),
            "image_features": io["frcn_feat"],
            "boxes": io["boxes_xyxy"],
            "image_size": io["image_hw"],
        }

    @property
    def sizes(self):
        return {
            "max_tokens": self.io[TEXT_KEY[self.task]].shape[1],
            "max_regions": self.io["frcn_feat"].shape[1],
        }


@pytest.fixture(scope="session", params=["vqa", "itm", "vg"])
def reference(request):
    return Reference(request.param)


@pytest.fixture(scope="session")
def reference_by_task():
    return {t: Reference(t) for t in ("vqa", "itm", "vg")}
