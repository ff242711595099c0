"""The system under test LoadGen drives: a plugin session's ``stage``/``predict``/``sync``, nothing more.

LoadGen runs its test (``StartTest``) in a helper thread and calls back from its own threads; every call
into the plugin happens on the worker's main thread, the one that prepared the session (thread-local
state such as torch's inference mode, TF's device scope and OpenMP's thread count stays as the plugin
set it). The callbacks only put work on a queue, so an exception can never reach LoadGen's C++ threads
(which would abort the process); a failing ``predict`` fails the case once LoadGen has finished.

Queries are answered one at a time, in arrival order: no dynamic batching, the SUT is the framework,
not a serving system. That makes the Server scenario a single-server queue with the model's service
time, which the fixed-service test plugin checks against queueing arithmetic.

Staging. Samples of single-sample queries (SingleStream, Server) are staged when LoadGen loads the
query sample library, off the clock, as dlbench's own SingleStream stages its queries. Multi-sample
queries (MultiStream's 8, Offline's one big query) are gathered from the test set and staged per
batch on the clock, as MLPerf's reference SUTs do; the SUT times that apart so the record can say
how much of an Offline run was staging and LoadGen's per-sample bookkeeping. Offline's last, partial
batch is padded with its own samples to the full batch: a new input shape would make tracing
frameworks (Keras' tf.function, JAX) compile again on LoadGen's clock.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

clock = time.perf_counter
_DONE = object()
KEEP = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
MAX_KEPT = 1_000_000  # single-sample predict times kept per test (8 MB); MLPerf's 600 s runs can issue more


@dataclass
class SutTimes:
    """Where the SUT's time went during one LoadGen test (seconds, on LoadGen's clock)."""

    stage_s: float = 0.0  # gathering and staging multi-sample queries
    predict_s: float = 0.0  # predict + sync
    complete_s: float = 0.0  # handing responses back to LoadGen
    queries: int = 0
    samples: int = 0
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
        return out


class SessionSUT:
    """A LoadGen SUT and QSL around one (guarded) plugin session and the task's test set."""

    def __init__(self, lg: Any, session: Any, x: np.ndarray, batch_size: int, stage_samples: bool,
                 performance_samples: int, pad_batches: bool = False) -> None:
        self.lg, self.session, self.x = lg, session, x
        self.batch_size = max(1, batch_size)
        self.stage_samples = stage_samples
        self.pad_batches = pad_batches  # Offline: every batch has batch_size rows (no new shape to compile)
        self.performance_samples = max(1, min(len(x), performance_samples))
        self.staged: dict[int, Any] = {}
        self.work: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.responses = [lg.QuerySampleResponse(0, 0, 0) for _ in range(self.batch_size)]
        self.error: Optional[BaseException] = None
        self.times = SutTimes()

    # -- LoadGen's callbacks (its threads): only queue work for the main thread -------------------------
    def _issue(self, ids: list[int], indices: list[int]) -> None:
        self.work.put((ids, indices))

    def _flush(self) -> None:
        pass

    def _load(self, indices: list[int]) -> None:
        done = threading.Event()
        self.work.put(("load", list(indices), done))
        done.wait()

    def _unload(self, indices: list[int]) -> None:
        done = threading.Event()
        self.work.put(("unload", list(indices), done))
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

    def _serve(self) -> None:
        while True:
            item = self.work.get()
            if item is _DONE:
                return
            if len(item) == 3:
                kind, indices, done = item
                try:
                    self._load_samples(indices) if kind == "load" else self._unload_samples(indices)
                except BaseException as exc:
                    self.error = self.error or exc
                finally:
                    done.set()
                continue
            ids, indices = item
            if self.error is None:
                try:
                    self._answer(indices)
                except BaseException as exc:  # answered below anyway, so LoadGen can finish its test
                    self.error = exc
            started = clock()
            self._complete(ids)
            self.times.complete_s += clock() - started

    def _load_samples(self, indices: list[int]) -> None:
        if self.stage_samples:
            for index in indices:
                self.staged[index] = self.session.stage(self.x[index: index + 1])

    def _unload_samples(self, indices: list[int]) -> None:
        for index in indices:
            self.staged.pop(index, None)

    def _answer(self, indices: list[int]) -> None:
        session = self.session
        if len(indices) == 1 and self.stage_samples:
            begin = clock()
            session.predict(self.staged[indices[0]])
            session.sync()
            took = clock() - begin
            self.times.predict_s += took
            self.times.keep_single(took)
        else:
            order = np.asarray(indices, dtype=np.int64)
            for start in range(0, len(order), self.batch_size):
                stage_begin = clock()
                rows = order[start: start + self.batch_size]
                if self.pad_batches and len(rows) < self.batch_size:  # repeat the batch's own samples
                    rows = np.resize(rows, self.batch_size)
                staged = session.stage(self.x[rows])
                predict_begin = clock()
                self.times.stage_s += predict_begin - stage_begin
                session.predict(staged)
                self.times.predict_s += clock() - predict_begin
            sync_begin = clock()
            session.sync()
            self.times.predict_s += clock() - sync_begin
        self.times.queries += 1
        self.times.samples += len(indices)

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

        Used only to tell LoadGen what to expect; never reported as a result.
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
