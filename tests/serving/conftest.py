"""Shared helpers for the serving tests: stand-in SavedModels, servers, free ports."""

from __future__ import annotations

import socket
import types

import numpy as np
import pytest
from support.stand_in import StandInModel, export_stand_in

from mmnas_tf.devserver.batching import BatchingOptions
from mmnas_tf.devserver.server import ModelServer, single_model_config

# Words of the tricky questions below; the vocabulary's ids are line numbers.
VOCAB = ["PAD", "UNK", "CLS"] + (
    "what colour is the cat on left side right x ray man s hat how many dogs are there "
    "red blue a of in"
).split()
#: Punctuation, hyphens and slashes, apostrophes, case, tabs, unknown words, empty, over-long.
QUESTIONS = [
    "What colour is the cat?",
    "what's on the LEFT-side/right?!",
    "x-ray man's hat (red) ; blue: #1 *",
    "  how   many\tdogs are there ",
    "zebra unknownword qwerty",
    "",
    " ".join(["red"] * 40) + " blue",
]
ANSWERS = [f"answer{i}" for i in range(12)]


def _text(value) -> list:
    """Nested lists of str from arrays of bytes or str (gRPC gives bytes, clients and JSON str)."""
    return (
        [_text(v) for v in value]
        if np.ndim(value)
        else (value.decode() if isinstance(value, bytes) else value)
    )


def assert_outputs_equal(got: dict, want: dict, tolerance: float = 1e-5) -> None:
    """Same output names and shapes; strings equal (decoded), numbers equal within ``tolerance``."""
    assert set(got) == set(want)
    for key, value in want.items():
        value, have = np.asarray(value), np.asarray(got[key])
        assert have.shape == value.shape, key
        if value.dtype == object or value.dtype.kind in "SU":
            assert _text(have) == _text(value), key
        else:
            np.testing.assert_allclose(have, value, rtol=tolerance, atol=tolerance, err_msg=key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stand_in(task: str, seed: int = 0, **kwargs) -> StandInModel:
    kwargs.setdefault("vocab_size", len(VOCAB))
    return StandInModel(task, answers=ANSWERS if task == "vqa" else None, seed=seed, **kwargs)


def model_config(name: str, base_path, labels: dict[str, int] | None = None, policy: str = ""):
    """A ModelConfig proto; ``policy`` is "" (latest 1), "all", or "specific:1,2"."""
    config = single_model_config(name, str(base_path))[0]
    if policy == "all":
        config.model_version_policy.all.SetInParent()
    elif policy.startswith("specific:"):
        config.model_version_policy.specific.versions.extend(
            int(v) for v in policy.split(":")[1].split(",")
        )
    for label, version in (labels or {}).items():
        config.version_labels[label] = version
    return config


class Served:
    """A running in-process server plus the in-memory models it serves (for comparisons)."""

    def __init__(self, server: ModelServer, models: dict[str, StandInModel]):
        self.server, self.models = server, models

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def rest_target(self) -> str:
        return f"127.0.0.1:{self.server.rest_port}"


def start_server(base, batching: BatchingOptions | None = None, poll: float = 0.0) -> Served:
    models = {task: stand_in(task, seed=i) for i, task in enumerate(("vqa", "itm", "vg"))}
    configs = []
    for task, model in models.items():
        export_stand_in(model, str(base / task), 1, vocab=VOCAB)
        configs.append(model_config(task, base / task))
    server = ModelServer(
        configs, grpc_port=0, rest_port=0, batching=batching, poll_wait_seconds=poll
    )
    return Served(server.start(), models)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """vqa, itm and vg stand-ins (with predict_text), no batching, gRPC + REST."""
    s = start_server(tmp_path_factory.mktemp("served"))
    yield s
    s.server.stop()


@pytest.fixture(scope="session")
def reference_exports(tmp_path_factory, reference_by_task):
    """``export(task) -> (model, config, base)``: the task's reference checkpoint (initial weights,
    tests/fixtures/reference) imported, and exported with ``predict_text`` and warm-up records as
    version 1 under ``base``; its vocabulary is VOCAB then fillers up to the checkpoint's 50 tokens,
    VQA's answers "answer 0", "answer 1", ... Made once per session: an import and export of the
    real network costs seconds, and test_export_e2e and test_session_loader read the same one."""
    from mmnas_tf.compat import import_original
    from mmnas_tf.serving.export import export_saved_model

    made = {}

    def export(task: str):
        if task not in made:
            ref, root = reference_by_task[task], tmp_path_factory.mktemp(f"export_{task}")
            vocab = VOCAB + [f"w{i}" for i in range(50 - len(VOCAB))]
            (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
            answers = None
            if task == "vqa":
                answers = str(root / "answers.txt")
                count = ref.io["logits"].shape[1]
                (root / "answers.txt").write_text("".join(f"answer {i}\n" for i in range(count)))
            model, config = import_original(task, ref.checkpoint, ref.arch, **ref.sizes)
            export_saved_model(
                model,
                task,
                config,
                str(root / task),
                1,
                vocab_file=str(root / "vocab.txt"),
                answers_file=answers,
            )
            made[task] = (model, config, root / task)
        return made[task]

    return export


@pytest.fixture(scope="session")
def helpers() -> types.SimpleNamespace:
    """The helpers above for test modules (which cannot import conftest under importlib mode)."""
    return types.SimpleNamespace(
        VOCAB=VOCAB,
        QUESTIONS=QUESTIONS,
        ANSWERS=ANSWERS,
        free_port=free_port,
        assert_outputs_equal=assert_outputs_equal,
        stand_in=stand_in,
        model_config=model_config,
        start_server=start_server,
        export=export_stand_in,
    )
