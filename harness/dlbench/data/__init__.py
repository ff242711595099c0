"""Data for every task, loaded and preprocessed once by the harness so every framework gets the same arrays.

Cheap to import: numpy and the standard library only; scikit-learn, urllib and the augmentation code
are imported when a task or command needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from dlbench.contract import TaskData
from dlbench.errors import DataError, UnknownName
from dlbench.data.tasks import TASKS, Task, search_dirs


@dataclass(frozen=True)
class TaskStatus:
    """Whether a task's data is here, where, and how to get it if not."""

    task: Task
    found: bool
    where: str

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def hint(self) -> str:
        """One line saying how to get the data; empty when it was found."""
        return "" if self.found else self.task.how_to_get


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownName("task", name, TASKS) from None


def task_status(name: str, data_dir: Optional[str] = None) -> TaskStatus:
    """Where the task's data is, without reading it (cheap enough to call for every task)."""
    task = get_task(name)
    where = task.locate(search_dirs(data_dir))
    return TaskStatus(task, where is not None, where or "")


def load_task(name: str, data_dir: Optional[str] = None, seed: int = 0, augment: bool = False) -> TaskData:
    """The task's arrays; DataError (one line, naming the file and the fix) when the data is missing or bad.

    ``seed`` fixes the validation split (and the augmentation draws); ``augment`` adds one randomly
    rotated / shifted / sheared copy of the training images in place of the originals (image tasks only).
    """
    task = get_task(name)
    if augment and task.modality != "image":
        raise DataError(f"task {name} is {task.modality}: augmentation (rotation/shift/shear) applies to image "
                        "tasks only; drop --augment for it")
    where = task.locate(search_dirs(data_dir))
    if where is None:
        raise DataError(f"no data for task {name!r} in {', '.join(map(str, search_dirs(data_dir)))}; "
                        f"{task.how_to_get}")
    return task.load(where, seed, augment=augment)


__all__ = ["DataError", "TaskData", "TaskStatus", "TASKS", "get_task", "load_task", "task_status"]
