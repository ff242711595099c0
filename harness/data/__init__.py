"""Data for every task, loaded and preprocessed once by the harness so every framework gets the same arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from dlbench.contract import TaskData
from dlbench.data.errors import DataError
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


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None


def task_status(name: str, data_dir: Optional[str] = None) -> TaskStatus:
    task = get_task(name)
    where = task.locate(search_dirs(data_dir))
    return TaskStatus(task, where is not None, str(where) if where else "")


def load_task(name: str, data_dir: Optional[str] = None, seed: int = 0) -> TaskData:
    """The task's arrays; DataError (one line, naming the file and the fix) when the data is missing or bad."""
    task = get_task(name)
    where = task.locate(search_dirs(data_dir))
    if where is None:
        raise DataError(f"no data for task {name!r} in {', '.join(map(str, search_dirs(data_dir)))}; "
                        f"{task.how_to_get}")
    return task.load(where, seed)


__all__ = ["DataError", "TaskData", "TaskStatus", "TASKS", "get_task", "load_task", "task_status"]
