"""Tasks: what differs between VQA, ITM and VG (head, loss, serving outputs, sizes)."""

from mmnas_tf.tasks.base import Task
from mmnas_tf.tasks.grounding import GroundingTask
from mmnas_tf.tasks.itm import ITMTask
from mmnas_tf.tasks.vqa import VQATask

TASKS = {"vqa": VQATask, "itm": ITMTask, "vg": GroundingTask}


def get_task(name: str) -> Task:
    """The Task object for ``name`` in ("vqa", "itm", "vg")."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {sorted(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "GroundingTask", "ITMTask", "Task", "VQATask", "get_task"]
