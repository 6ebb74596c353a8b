"""Tasks: everything that differs between VQA, ITM and VG, one folder each, and the registry of
their names.

The registry is the only list of task names: drivers take ``--task`` choices from
:func:`task_names` and look a task up with :func:`get_task`. Importing this package loads the
``Task`` protocol only; the built-in tasks (:data:`BUILT_IN`, one line each) are imported when the
registry is first read, so the engine, which needs the protocol, loads no concrete task. A task of
your own subclasses ``Task`` and is added with one :func:`register_task` call (see
``docs/architecture.md``, "Adding a task").
"""

from __future__ import annotations

import importlib

from mmnas_tf.tasks.base import (
    Annotation,
    EpochHooks,
    Recipe,
    SourceFlag,
    SourceFlagError,
    Task,
    TaskConfig,
)

#: The built-in tasks as ``module:class``, registered in this order when the registry is first read.
BUILT_IN: tuple[str, ...] = (
    "mmnas_tf.tasks.vqa:VQATask",
    "mmnas_tf.tasks.itm:ITMTask",
    "mmnas_tf.tasks.vg:GroundingTask",
)

#: name -> Task subclass, in registration order (read it through the functions below).
TASKS: dict[str, type[Task]] = {}
_built_in_loaded = False


def _load_built_in() -> None:
    global _built_in_loaded
    if _built_in_loaded:
        return
    _built_in_loaded = True
    for spec in BUILT_IN:
        module, name = spec.split(":")
        _add(getattr(importlib.import_module(module), name))


def _add(cls: type[Task]) -> type[Task]:
    if not (isinstance(cls, type) and issubclass(cls, Task)) or not cls.name:
        raise TypeError(f"register_task needs a Task subclass with a name, got {cls!r}")
    if TASKS.get(cls.name, cls) is not cls:
        raise ValueError(f"task {cls.name!r} is already registered by {TASKS[cls.name].__name__}")
    TASKS[cls.name] = cls
    return cls


def register_task(cls: type[Task]) -> type[Task]:
    """Adds a ``Task`` subclass under its ``name`` (usable as a class decorator)."""
    _load_built_in()
    return _add(cls)


def unregister_task(name: str) -> None:
    """Removes a task (tests that register a temporary one)."""
    TASKS.pop(name, None)


def task_names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    _load_built_in()
    return tuple(TASKS)


def get_task(name: str) -> Task:
    """The Task object of a registered ``name``."""
    _load_built_in()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {task_names()}")
    return TASKS[name]()


def find_task(predicate) -> str | None:
    """The name of the first registered task for which ``predicate(task)`` holds, or None."""
    return next((name for name in task_names() if predicate(get_task(name))), None)


def task_of_outputs(outputs) -> str:
    """The registered task whose served outputs these are (its ``prediction_output`` is among
    their keys)."""
    found = find_task(lambda task: task.prediction_output in outputs)
    if found is None:
        tasks = [get_task(name) for name in task_names()]
        wanted = [f"{t.prediction_output} ({t.name.upper()})" for t in tasks]
        raise ValueError(
            f"not a task's outputs: {sorted(outputs)}; expected "
            + (", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0])
        )
    return found


__all__ = [
    "BUILT_IN",
    "TASKS",
    "Annotation",
    "EpochHooks",
    "Recipe",
    "SourceFlag",
    "SourceFlagError",
    "Task",
    "TaskConfig",
    "find_task",
    "get_task",
    "register_task",
    "task_names",
    "task_of_outputs",
    "unregister_task",
]
