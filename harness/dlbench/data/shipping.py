"""Data for a node that lacks it: the driver's parsed arrays, shipped through Ray's object store.

A cluster needs no shared disk. The driver reads a task's raw arrays once (the same parsed arrays a
local worker reads, tens of MB) and puts them in the object store; a node that cannot find the task's
data itself fetches them, writes them to a node-local ``.npz``, and its worker applies the shared
preprocessing (seeded split, scaling, augmentation) to them exactly as it would to files on disk.
Only plain arrays and strings travel: nothing is unpickled from another machine.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from dlbench.contract import TaskData
from dlbench.errors import DataError

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
SHIPPED = "shipped by the driver through Ray's object store"


def read_for_shipping(task_name: str, data_dir: Optional[str]) -> Optional[dict[str, Any]]:
    """The task's raw arrays and provenance as the driver sees them; None for generated tasks."""
    from dlbench.data import get_task, search_dirs

    task = get_task(task_name)
    if task.synthetic:
        return None  # every node generates it
    where = task.locate(search_dirs(data_dir))
    if where is None:
        return None
    raw = task.read(where)
    return {**{name: getattr(raw, name) for name in ARRAYS}, "pipeline": raw.pipeline, "source": raw.source}


def write_shipment(shipment: dict[str, Any], folder: Path) -> Path:
    """The shipped arrays as an uncompressed ``.npz`` in ``folder`` (node-local), for the worker to read."""
    path = Path(folder) / "shipped-data.npz"
    meta = json.dumps({"pipeline": shipment["pipeline"], "source": shipment["source"]})
    np.savez(path, __meta__=np.array(meta), **{name: np.asarray(shipment[name]) for name in ARRAYS})
    return path


def load_shipped(path: str, task_name: str, seed: int, augment: bool = False) -> TaskData:
    """The task's data from a shipped ``.npz``, through the very preprocessing ``Task.load`` applies."""
    from dlbench.data import get_task
    from dlbench.data.tasks import Raw

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAYS}
            meta = json.loads(str(npz["__meta__"]))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: the data shipped by the driver cannot be read ({exc}); rerun the case") from None
    raw = Raw(*(arrays[name] for name in ARRAYS), pipeline=meta["pipeline"],
              source=f"{meta['source']}, {SHIPPED}")
    task = dataclasses.replace(get_task(task_name), read=lambda _where: raw)
    return task.load(path, seed, augment=augment)
