"""How a run measures and where it runs its cases: the options of ``dlbench run`` after their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RunOptions:
    profile: str = "quick"
    threads: int = 1
    environment: str = "dlbench"  # the workers' environment: dlbench's (fixed allocator, pinned) or the user's
    seed: int = 0
    repeat: int = 1
    steps: Optional[int] = None
    infer_batch_size: Optional[int] = None
    target: Optional[float] = None
    augment: bool = False
    data_dir: Optional[str] = None
    case_timeout: Optional[float] = None
    verbose: bool = False
    sampling: dict = field(default_factory=dict)  # --estimator, --ci-target, --max-timing (sampling_cli.py)
    inference: str = "own"  # own: dlbench's Offline/SingleStream; loadgen: also MLPerf's LoadGen scenarios
    scenarios: tuple[str, ...] = ()  # LoadGen scenarios (empty: all four)
    latency_bound_ms: Optional[float] = None  # LoadGen Server p99 bound (None: the zoo model's)
    serve: str = "single"  # LoadGen Server: single (one query at a time) | batched (dlbench.loadgen.batching)
    max_batch: tuple[int, ...] = ()  # batched: the max batch sizes searched (empty: the default grid)
    batch_timeout_us: tuple[float, ...] = ()  # batched: the gather timeouts searched (empty: the default grid)
    launch: Optional[str] = None  # how workers start: fork | spawn (None: running.launcher.default_launch)
    executor: str = "local"  # where cases run: local | ray (dlbench.running.executors)
    ray_address: Optional[str] = None
    node_type: Optional[str] = None  # a custom Ray resource every case's node must have
    pack: bool = False  # let cases share a node's cores (never by default)
    retries: int = 1  # a crashed attempt is run again (on another node), this many times
