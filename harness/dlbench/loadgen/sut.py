"""The system under test LoadGen drives: a plugin session's ``stage``/``predict``/``sync``, nothing more.

LoadGen runs its test (``StartTest``) in a helper thread and calls back from its own threads; every call
into the plugin happens on the worker's main thread, the one that prepared the session (thread-local
state such as torch's inference mode, TF's device scope and OpenMP's thread count stays as the plugin
set it). The callbacks only put work on a queue, so an exception can never reach LoadGen's C++ threads
(which would abort the process); a failing ``predict`` fails the case once LoadGen has finished.

Serving (``batching.ServePolicy``). ``single``: queries are answered one at a time, in arrival order, and
the Server scenario is a single-server queue with the model's service time. ``batched``: the main thread
gathers the queued single-sample queries into one ``predict`` of up to ``max_batch`` samples, waiting at
most the timeout after the first query arrived. It waits on the queue (a lock with a timeout: no
spinning, the GIL released, the core left to the model) and there is no extra thread. Each query is
completed with its own id, so LoadGen times each from its own issue. MultiStream has one query
outstanding at a time (LoadGen issues the next when it completes), so there is nothing to gather.

Staging. Samples of single-sample queries (SingleStream, Server) are staged when LoadGen loads the query
sample library, off the clock, as dlbench's own SingleStream stages its queries; a query answered alone
uses its staged sample. A gathered batch is taken from the test set and staged on the clock: one
host-to-device copy and one ``sync`` per batch (its queries are complete only when the device is done),
never per query. Multi-sample queries (MultiStream's 8, Offline's one big query) are gathered and staged
per batch on the clock, as MLPerf's reference SUTs do. On an accelerator Offline stages a *window* of
batches (up to ``window_bytes`` of input) and syncs (the copies are done: staging time), then predicts
them back to back and syncs (predict time): the framework's share is timed as dlbench's own Offline times
it, back-to-back predicts on staged input and one sync at the end, and a sync, which drains the device's
queue, comes twice a window, never per batch. On the CPU (and for MultiStream) each batch is staged and
predicted in turn and the query ends with one sync, as before: a batch predicted right after staging is
in cache as dlbench's own reused batch is, and syncs between the batches made JAX's predict alone read
1.5-2.7x too fast (its runtime's work lands in the next staging; docs/loadgen.md). Offline's last,
partial batch is padded with its own samples: a new shape would compile again on LoadGen's clock.

GIL. LoadGen's callbacks need Python's GIL to queue a query. The frameworks release it inside their kernels,
so a query is handed over while the main thread predicts; shortening Python's switch interval (5 ms) was
tried and measured no steadier (docs/loadgen.md).

``empty``: the SUT answers without staging or predicting, so a test measures LoadGen's own path alone
(its issue, the callback, the hand-over, completion), which the consistency check reports apart.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from dlbench.loadgen.batching import SINGLE, ServePolicy

clock = time.perf_counter
_DONE = object()
KEEP = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
MAX_KEPT = 1_000_000  # single-sample predict times kept per test (8 MB); MLPerf's 600 s runs can issue more


class _Query(NamedTuple):
    ids: list[int]
    indices: list[int]
    arrived: float  # when LoadGen's callback handed it over: the gather timeout counts from here


class _Control(NamedTuple):
    kind: str  # load | unload
    indices: list[int]
    done: threading.Event


@dataclass
class SutTimes:
    """Where the SUT's time went during one LoadGen test (seconds, on LoadGen's clock)."""

    stage_s: float = 0.0  # gathering and staging multi-sample queries and gathered batches
    predict_s: float = 0.0  # predict + sync
    complete_s: float = 0.0  # handing responses back to LoadGen
    wait_s: float = 0.0  # batched: waiting for more queries after the first
    queries: int = 0
    samples: int = 0
    padded_samples: int = 0  # batched: rows repeated to reach a bucket
    batch_sizes: Counter = field(default_factory=Counter)  # batched: real samples per predict call -> calls
    # predict + sync of each single-sample query (the first MAX_KEPT): the framework's own share of each
    # LoadGen latency, so the record can tell it apart from LoadGen's issue-to-completion path
    single_predict_s: "array[float]" = field(default_factory=lambda: array("d"))

    def keep_single(self, seconds: float) -> None:
        if len(self.single_predict_s) < MAX_KEPT:
            self.single_predict_s.append(seconds)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage_s": self.stage_s, "predict_s": self.predict_s, "complete_s": self.complete_s,
                               "queries": self.queries, "samples": self.samples}
        if self.single_predict_s:
            kept = np.frombuffer(self.single_predict_s, dtype=np.float64) * 1000
            p50, p90, p99 = np.percentile(kept, [50, 90, 99])  # linear, as dlbench.stats.estimators.percentile
            out["single_predict_ms"] = {"p50": float(p50), "p90": float(p90), "p99": float(p99), "count": len(kept)}
        if self.batch_sizes:
            calls = sum(self.batch_sizes.values())
            out["batches"] = {"calls": calls, "mean_samples": sum(n * c for n, c in self.batch_sizes.items()) / calls,
                              "max_samples": max(self.batch_sizes), "padded_samples": self.padded_samples,
                              "wait_s": self.wait_s,
                              "histogram": {str(n): c for n, c in sorted(self.batch_sizes.items())}}
        return out


@dataclass
class Serving:
    """How one LoadGen test is served (see the module's docstring)."""

    batch_size: int  # multi-sample queries are predicted in batches of this many
    stage_samples: bool  # single-sample queries: stage each loaded sample, off the clock
    pad_batches: bool = False  # Offline: every batch has batch_size rows (no new shape to compile)
    policy: ServePolicy = SINGLE  # single-sample queries: one at a time, or gathered
    window_bytes: int = 0  # Offline on an accelerator: input staged ahead of its predicts
    window_sync: bool = False  # Offline on an accelerator: windows, synced after staging and after predicting
    empty: bool = False  # answer without staging or predicting: LoadGen's own path


class SessionSUT:
    """A LoadGen SUT and QSL around one (guarded) plugin session and the task's test set."""

    def __init__(self, lg: Any, session: Any, x: np.ndarray, serving: Serving, performance_samples: int,
                 warmed: Optional[set[int]] = None) -> None:
        self.lg, self.session, self.x, self.serving = lg, session, x, serving
        self.batch_size = max(1, serving.batch_size)
        self.policy = serving.policy
        self.performance_samples = max(1, min(len(x), performance_samples))
        self.warmed = warmed if warmed is not None else set()  # bucket sizes already compiled (shared per case)
        self.staged: dict[int, Any] = {}
        self.work: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.held: Any = None  # an item the gatherer took but could not add to its batch
        self.responses = [lg.QuerySampleResponse(0, 0, 0) for _ in range(1024)]
        self.error: Optional[BaseException] = None
        self.times = SutTimes()

    # -- LoadGen's callbacks (its threads): only queue work for the main thread -------------------------
    def _issue(self, ids: list[int], indices: list[int]) -> None:
        self.work.put(_Query(ids, indices, clock()))

    def _flush(self) -> None:
        pass

    def _load(self, indices: list[int]) -> None:
        done = threading.Event()
        self.work.put(_Control("load", list(indices), done))
        done.wait()

    def _unload(self, indices: list[int]) -> None:
        done = threading.Event()
        self.work.put(_Control("unload", list(indices), done))
        done.wait()

    # -- the main thread -------------------------------------------------------------------------------
    def run(self, settings: Any, out_dir: Path) -> None:
        """One LoadGen test with ``settings``; its summary and detail logs are left in ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        lg = self.lg
        log = lg.LogSettings()
        log.log_output.outdir = str(out_dir)
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = False
        self.warm_buckets()  # off the clock: no compile of a new batch shape during LoadGen's test
        sut = lg.ConstructFastSUT(self._issue, self._flush)
        qsl = lg.ConstructQSL(len(self.x), self.performance_samples, self._load, self._unload)
        failure: list[BaseException] = []

        def test() -> None:
            try:
                lg.StartTestWithLogSettings(sut, qsl, settings, log)
            except BaseException as exc:  # pragma: no cover - LoadGen reports through its logs
                failure.append(exc)
            finally:
                self.work.put(_DONE)

        thread = threading.Thread(target=test, name="loadgen-test", daemon=True)
        thread.start()
        self._serve()  # returns once LoadGen's test is over; plugin errors are kept, not raised, until then
        thread.join()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        for name in ("mlperf_log_accuracy.json", "mlperf_log_trace.json"):  # empty in performance mode
            (out_dir / name).unlink(missing_ok=True)
        if self.error is not None:
            raise self.error
        if failure:
            raise failure[0]

    def warm_buckets(self) -> None:
        """Compile every batch shape a gathered batch can take (twice: some frameworks specialise late)."""
        if not self.policy.batched or self.serving.empty:
            return
        for size in self.policy.buckets():
            if size > 1 and size not in self.warmed:
                staged = self.session.stage(self.x[np.arange(size) % len(self.x)])
                for _ in range(2):
                    self.session.predict(staged)
                    self.session.sync()
                self.warmed.add(size)

    def _next(self) -> Any:
        item, self.held = self.held, None
        return item if item is not None else self.work.get()

    def _serve(self) -> None:
        while True:
            item = self._next()
            if item is _DONE:
                return
            if isinstance(item, _Control):
                self._control(item)
                continue
            if self.policy.batched and self.serving.stage_samples:
                batch = self._gather(item)
                ids = [i for query in batch for i in query.ids] if len(batch) > 1 else item.ids
                indices = [i for query in batch for i in query.indices] if len(batch) > 1 else item.indices
            else:
                batch, ids, indices = [item], item.ids, item.indices
            if self.error is None:
                try:
                    self._answer(indices)
                except BaseException as exc:  # answered below anyway, so LoadGen can finish its test
                    self.error = exc
            self.times.queries += len(batch)
            self.times.samples += len(indices)
            started = clock()
            self._complete(ids)
            self.times.complete_s += clock() - started

    def _control(self, item: _Control) -> None:
        try:
            if item.kind == "load" and self.serving.stage_samples and not self.serving.empty:
                for index in item.indices:
                    self.staged[index] = self.session.stage(self.x[index: index + 1])
            elif item.kind == "unload":
                for index in item.indices:
                    self.staged.pop(index, None)
        except BaseException as exc:
            self.error = self.error or exc
        finally:
            item.done.set()

    def _gather(self, first: _Query) -> list[_Query]:
        """``first`` and the queries queued behind it, up to ``max_batch`` samples or the timeout after its
        arrival, whichever comes first (a query that already waited that long goes with what is queued)."""
        batch, samples = [first], len(first.indices)
        limit, deadline = self.policy.max_batch, first.arrived + self.policy.timeout_s
        began = clock()
        while samples < limit:
            wait = deadline - clock()
            try:
                item = self.work.get(timeout=wait) if wait > 0 else self.work.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Query) or samples + len(item.indices) > limit:
                self.held = item
                break
            batch.append(item)
            samples += len(item.indices)
        self.times.wait_s += clock() - began
        return batch

    def _answer(self, indices: list[int]) -> None:
        if self.serving.empty:
            return
        if len(indices) == 1 and self.serving.stage_samples:
            session = self.session
            begin = clock()
            session.predict(self.staged[indices[0]])
            session.sync()
            took = clock() - begin
            self.times.predict_s += took
            self.times.keep_single(took)
            if self.policy.batched:
                self.times.batch_sizes[1] += 1
        elif self.serving.stage_samples:
            self._answer_gathered(indices)
        else:
            self._answer_query(indices)

    def _answer_gathered(self, indices: list[int]) -> None:
        """A gathered batch of single-sample queries: padded to its bucket, staged, one predict, one sync
        (in pieces of ``max_batch`` should a query ever hold more samples than that)."""
        limit = self.policy.max_batch
        for start in range(0, len(indices), limit):
            piece = indices[start: start + limit]
            size = self.policy.bucket(len(piece))
            rows = np.resize(np.asarray(piece, dtype=np.int64), size)  # repeats the batch's own samples
            begin = clock()
            staged = self.session.stage(self.x[rows])
            middle = clock()
            self.session.predict(staged)
            self.session.sync()
            self.times.predict_s += clock() - middle
            self.times.stage_s += middle - begin
            self.times.batch_sizes[len(piece)] += 1
            self.times.padded_samples += size - len(piece)

    def _answer_query(self, indices: list[int]) -> None:
        """A multi-sample query (MultiStream, Offline), in batches of ``batch_size``: on an accelerator a
        window at a time; on the CPU each batch staged and predicted in turn, one sync at the end."""
        order = np.asarray(indices, dtype=np.int64)
        batches = [order[start: start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if self.serving.pad_batches and len(batches[-1]) < self.batch_size:  # repeat the batch's own samples
            batches[-1] = np.resize(batches[-1], self.batch_size)
        if not self.serving.window_sync:
            self._answer_in_turn(batches)
            return
        per_window = max(1, self.serving.window_bytes // max(1, self.x[:1].nbytes * self.batch_size))
        for start in range(0, len(batches), per_window):
            self._answer_window(batches[start: start + per_window])

    def _answer_in_turn(self, batches: Sequence[np.ndarray]) -> None:
        session = self.session
        for rows in batches:
            begin = clock()
            staged = session.stage(self.x[rows])
            middle = clock()
            session.predict(staged)
            self.times.stage_s += middle - begin
            self.times.predict_s += clock() - middle
        begin = clock()
        session.sync()
        self.times.predict_s += clock() - begin

    def _answer_window(self, batches: Sequence[np.ndarray]) -> None:
        session = self.session
        begin = clock()
        staged = [session.stage(self.x[rows]) for rows in batches]
        session.sync()  # the copies are done: their time is staging, not predict
        middle = clock()
        for one in staged:
            session.predict(one)
        session.sync()
        self.times.stage_s += middle - begin
        self.times.predict_s += clock() - middle

    def _complete(self, ids: list[int]) -> None:
        pool = self.responses
        for start in range(0, len(ids), len(pool)):
            chunk = ids[start: start + len(pool)]
            responses = pool[: len(chunk)]
            for response, sample_id in zip(responses, chunk):
                response.id = sample_id
            self.lg.QuerySamplesComplete(responses)

    def time_query(self, samples: int, repeats: int = 5) -> float:
        """Seconds one query of ``samples`` samples takes through this SUT (fastest of ``repeats``, warmed up).

        Used only to tell LoadGen what to expect and where to start a search; never reported as a result.
        """
        rows = np.arange(samples) % len(self.x)
        staged_one = self.session.stage(self.x[:1]) if samples == 1 else None
        best = float("inf")
        for index in range(repeats + 2):
            begin = clock()
            staged = staged_one if staged_one is not None else self.session.stage(self.x[rows])
            self.session.predict(staged)
            self.session.sync()
            if index >= 2:
                best = min(best, clock() - begin)
        return best


def keep_logs(out_dir: Path) -> dict[str, str]:
    """The kept log files of one test, by kind (summary, detail)."""
    return {name.split("_")[-1].split(".")[0]: str(out_dir / name) for name in KEEP if (out_dir / name).exists()}
