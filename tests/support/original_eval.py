"""The original MMnas code's own evaluation, run on given data: the official VQA evaluation
(``mmnas/utils/vqa.py`` and ``vqaEval.py``), the ITM recall computation and the VG accuracy loop of
``train_itm.py`` / ``train_vgd.py`` (``eval``), with ``mmnas/utils/overlaps.py``.

Nothing of the original is copied here: its modules are loaded from the directory given in
``MMNAS_ORIGINAL_SRC`` (the extracted archive of the original repository), and the two ``eval``
computations are taken from the training scripts' source (their network and GPU plumbing replaced
by the data given), so neither torch nor a GPU is needed.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import os
import tempfile
import types

import numpy as np

ENV = "MMNAS_ORIGINAL_SRC"
VQA_EVAL = os.path.join("mmnas", "utils", "vqaEval.py")


def original_dir() -> str | None:
    """The original's directory from ``MMNAS_ORIGINAL_SRC``, or None when unset or not it."""
    path = os.environ.get(ENV)
    if path and os.path.isfile(os.path.join(path, VQA_EVAL)):
        return path
    return None


def _module(src: str, relative: str):
    path = os.path.join(src, relative)
    name = "original_" + relative.replace(os.sep, "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- VQA -----------------------------------------------------------------------------------------
def run_vqa(src: str, questions: list[dict]) -> tuple[dict, dict]:
    """The official evaluation of ``questions`` (dicts with ``question_id``, ``question_type``,
    ``answer_type``, ``answers`` (raw strings) and ``prediction``), through the VQA-format question,
    annotation and result files it reads. Returns (per-question accuracy in percent, rounded as it
    rounds, ``VQAEval.accuracy``)."""
    header = {
        "info": {},
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "data_subtype": "val2014",
        "license": {},
    }
    ques = {**header, "questions": []}
    anns = {**header, "annotations": []}
    results = []
    for q in questions:
        qid, image_id = int(q["question_id"]), int(q["question_id"]) // 10
        ques["questions"].append({"image_id": image_id, "question": "?", "question_id": qid})
        anns["annotations"].append(
            {
                "question_id": qid,
                "image_id": image_id,
                "question_type": q["question_type"],
                "answer_type": q["answer_type"],
                "multiple_choice_answer": q["answers"][0],
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                    for j, a in enumerate(q["answers"])
                ],
            }
        )
        results.append({"question_id": qid, "answer": q["prediction"]})
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (("questions", ques), ("annotations", anns), ("results", results)):
            paths[name] = os.path.join(tmp, f"{name}.json")
            with open(paths[name], "w", encoding="utf-8") as f:
                json.dump(data, f)
        return score_vqa_files(src, paths["questions"], paths["annotations"], paths["results"])


def score_vqa_files(src: str, questions: str, annotations: str, results: str):
    """``VQAEval`` on the three files; (per-question accuracies, ``accuracy``)."""
    vqa_module = _module(src, os.path.join("mmnas", "utils", "vqa.py"))
    eval_module = _module(src, VQA_EVAL)
    with contextlib.redirect_stdout(io.StringIO()):
        vqa = vqa_module.VQA(annotations, questions)
        res = vqa.loadRes(results, questions)
        evaluation = eval_module.VQAEval(vqa, res, n=2)
        evaluation.evaluate()
    return evaluation.evalQA, evaluation.accuracy


# ---- the eval methods of the training scripts ------------------------------------------------------
def _eval_source(src: str, script: str) -> ast.FunctionDef:
    with open(os.path.join(src, script), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "eval":
            return node
    raise ValueError(f"no eval method in {script}")


def _run(statements: list[ast.stmt], namespace: dict) -> dict:
    code = compile(ast.Module(body=statements, type_ignores=[]), "<original eval>", "exec")
    exec(code, namespace)  # noqa: S102 (the original's own statements, on our data)
    return namespace


class _Log(io.StringIO):
    def close(self):
        pass


def _common(config: dict) -> dict:
    """Globals for the eval statements: ``self.__C`` (outside a class body the name is not
    mangled), a silent ``print`` and a log file kept in memory."""
    self = types.SimpleNamespace(**{"__C": types.SimpleNamespace(RANK=0, VERSION="test", **config)})
    return {"np": np, "self": self, "print": lambda *a, **k: None, "open": lambda *a, **k: _Log()}


class _Tensor:
    """What the statements call on a torch tensor: ``.cpu().data.numpy()``, ``.device``,
    ``.item()``, ``.to(device)``."""

    def __init__(self, value):
        self.value, self.device = value, "cpu"

    def cpu(self):
        return self

    data = property(lambda self: self)

    def numpy(self):
        return self.value

    def to(self, device):
        return self

    def item(self):
        return np.asarray(self.value).reshape(-1)[0].item()


_TORCH = types.SimpleNamespace(
    tensor=_Tensor, distributed=types.SimpleNamespace(all_reduce=lambda t: None)
)


def run_itm(src: str, scores: np.ndarray) -> dict:
    """``train_itm.py``'s recall computation on ``scores`` [images, 5 * images] (caption c
    belongs to image c // 5, as there). Returns its figures and 0-based rank arrays."""
    fn = _eval_source(src, "train_itm.py")
    block = next(
        node
        for node in ast.walk(fn)
        if isinstance(node, ast.If) and "score_matrix" in ast.unparse(node)
    )
    ns = _common({})
    ns["scores_mat"] = _Tensor(np.asarray(scores, np.float32))
    _run(block.body, ns)
    names = [f"{d}_{m}" for d in ("i2t", "t2i") for m in ("r1", "r5", "r10", "medr", "meanr")]
    out = {name: float(ns[name]) for name in names}
    out["i2t_ranks"] = np.asarray(ns["minnum_rank_image"])
    out["t2i_ranks"] = np.asarray(ns["minnum_rank_caption"])
    return out


def run_vg(src: str, proposals, pred_scores, pred_deltas, image_hw, gt_boxes, threshold=0.5):
    """``train_vgd.py``'s accuracy loop (pick the best-scored proposal, decode, clip, overlap
    with ``bbox_overlaps`` of ``mmnas/utils/overlaps.py``, count IoU >= threshold) on one batch:
    ``proposals`` [B, 100, 4], ``pred_scores`` [B, 100], ``pred_deltas`` [B, 100, 4] (not
    normalised), ``image_hw`` [B, 2], ``gt_boxes`` [B, 4]. Returns (accuracy in percent,
    [(predicted box, overlap)] per example, as its loop computed them)."""
    fn = _eval_source(src, "train_vgd.py")
    body = next(node for node in ast.walk(fn) if isinstance(node, ast.With)).body
    boxes = _module(src, os.path.join("mmnas", "utils", "bbox_transform.py"))
    overlaps = _module(src, os.path.join("mmnas", "utils", "overlaps.py"))
    seen = []

    def recording_overlaps(a, b):
        result = overlaps.bbox_overlaps(a, b)
        seen.append((a[0].copy(), float(result[0, 0])))
        return result

    numpy = types.ModuleType("numpy")
    numpy.__dict__.update(np.__dict__)
    numpy.float = np.float64  # the VG code uses the alias numpy 1.24 removed
    ns = _common({"BBOX_NORM": False, "OVERLAP_THRESHOLD": threshold})
    batch = [None] * 12
    batch[9] = _Tensor(np.asarray(gt_boxes)[:, None, :])
    batch[10] = _Tensor(np.asarray(proposals))
    batch[11] = _Tensor(np.asarray(image_hw))
    ns.update(
        np=numpy,
        torch=_TORCH,
        tqdm=types.SimpleNamespace(tqdm=lambda it: it),
        eval_loader=[tuple(batch)],
        net=lambda inputs: (_Tensor(np.asarray(pred_scores)), _Tensor(np.asarray(pred_deltas))),
        bbox_transform_inv=boxes.bbox_transform_inv,
        clip_boxes=boxes.clip_boxes,
        bbox_overlaps=recording_overlaps,
    )
    _run(body, ns)
    return float(ns["accuracy"]), seen
