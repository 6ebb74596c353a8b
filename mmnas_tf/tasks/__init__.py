"""Tasks: everything that differs between VQA, ITM and VG, and the registry of their names.

The registry is the only list of task names: drivers take ``--task`` choices from
:func:`task_names` and look a task up with :func:`get_task`. A new task subclasses ``Task`` and
is added with :func:`register_task` (see ``docs/architecture.md``, "Adding a task").
"""

from __future__ import annotations

from mmnas_tf.tasks.base import EpochHooks, Recipe, SourceFlag, SourceFlagError, Task
from mmnas_tf.tasks.grounding import GroundingTask
from mmnas_tf.tasks.itm import ITMTask
from mmnas_tf.tasks.vqa import VQATask

#: name -> Task subclass, in registration order.
TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Adds a ``Task`` subclass under its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Task)) or not cls.name:
        raise TypeError(f"register_task needs a Task subclass with a name, got {cls!r}")
    if TASKS.get(cls.name, cls) is not cls:
        raise ValueError(f"task {cls.name!r} is already registered by {TASKS[cls.name].__name__}")
    TASKS[cls.name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Removes a task (tests that register a temporary one)."""
    TASKS.pop(name, None)


def task_names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    return tuple(TASKS)


def get_task(name: str) -> Task:
    """The Task object of a registered ``name``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {task_names()}")
    return TASKS[name]()


def find_task(predicate) -> str | None:
    """The name of the first registered task for which ``predicate(task)`` holds, or None."""
    return next((name for name in TASKS if predicate(get_task(name))), None)


for _cls in (VQATask, ITMTask, GroundingTask):
    register_task(_cls)

__all__ = [
    "TASKS",
    "EpochHooks",
    "GroundingTask",
    "ITMTask",
    "Recipe",
    "SourceFlag",
    "SourceFlagError",
    "Task",
    "VQATask",
    "find_task",
    "get_task",
    "register_task",
    "task_names",
    "unregister_task",
]
