"""Shared fixtures: the reference vectors made with the original PyTorch code (tests/fixtures)."""

import json
import os

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "reference")
TEXT_KEY = {"vqa": "ques_ix", "itm": "cap_ix", "vg": "query_ix"}


# The two sets of reference vectors: "initial" (mmnas_<task>_small*: weights as constructed, so
# every LayerNorm gain is 1 and every bias 0) and "trained" (mmnas_<task>_small_t*: other seeds,
# every parameter randomised, so a wrong LayerNorm or bias mapping shows). Same networks and files.
WEIGHT_SETS = {"initial": "", "trained": "_t"}


class Reference:
    """One task's reference vectors: metadata, io arrays, checkpoint and architecture paths."""

    def __init__(self, task, weights="initial"):
        self.task = task
        self.weights = weights
        base = os.path.join(FIXTURES, f"mmnas_{task}_small{WEIGHT_SETS[weights]}")
        self.checkpoint = base + ".pkl"
        self.weights_npz = base + "_weights.npz"
        # Both sets share the architecture (only seeds and weights differ).
        self.arch = os.path.join(FIXTURES, f"mmnas_{task}_small_arch.json")
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


@pytest.fixture(
    scope="session",
    params=[(t, w) for w in WEIGHT_SETS for t in ("vqa", "itm", "vg")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def reference(request):
    """Every task on both weight sets."""
    return Reference(*request.param)


@pytest.fixture(scope="session")
def reference_by_task():
    return {t: Reference(t) for t in ("vqa", "itm", "vg")}


@pytest.fixture(scope="session")
def trained_reference_by_task():
    return {t: Reference(t, "trained") for t in ("vqa", "itm", "vg")}


@pytest.fixture(autouse=True)
def _progress_back_on():
    """An entry point's ``main([... "--noprogress"])`` turns progress off for the process; the
    next test starts with it on again."""
    yield
    from mmnas_tf import console

    console.set_progress(True)


@pytest.fixture
def graph_rewrites_off():
    """Grappler's graph rewrites off for one test, back on after it. For tests whose cost is
    tracing whole search cycles once and running them for a few steps: there the rewrites cost
    more CPU than the steps. What such a test asserts does not depend on them (they change
    float32 round-off only; comparisons within a test run under one setting). The library's own
    runs, the entry points in subprocesses and every other test keep the default."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})


def pytest_collection_modifyitems(config, items):
    """The files that hold a slow test run first (otherwise in collection order): the suite runs
    on two workers that take whole files (setup.cfg), so the long files start together and the
    short ones fill in at the end instead of one long file ending the run alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable
