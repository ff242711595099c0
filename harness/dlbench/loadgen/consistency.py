"""LoadGen's Offline and SingleStream against dlbench's own numbers for the same session, and where the time went.

Offline through LoadGen also pays for gathering and staging each batch and for LoadGen's own path (its
issue of the query, the callback, completing every sample); the SUT times staging and predict apart
(``sut.py``), and an *empty* run (the same LoadGen test with a SUT that answers without predicting)
measures LoadGen's path alone. So the check is made on the framework's share (samples over predict
seconds) and the record accounts for the rest, per sample: predict, staging, LoadGen's path, and what none
of them explains. LoadGen's Offline is one long total, while the record's own number summarises short
blocks (a median by default, which steps over the blocks a busy machine stalled); so the check compares like
with like, against the own blocks' total rate (all samples over all block time), and reports the ratio to
the record's number too.

A SingleStream latency through LoadGen is the framework's predict plus LoadGen's own path (its issue thread,
the Python callback, the hand-over to the serving thread, the completion call: 20-35 µs a query on a 2-core
VM), which is most of the latency of a model answering in tens of microseconds. The SUT times each query's
predict alone, so the check compares that p50 with dlbench's own; the path is reported both as the
difference and as the empty run's own p50.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

# LoadGen's and dlbench's own timing of the framework's work "agree" within this ratio (quiet 2-core VM, three
# frameworks x mlp/cnn: Offline predict-alone 0.92-1.03, SingleStream predict-alone p50 1.05-1.34) ...
TOLERANCE = 0.10
# ... or, for SingleStream, within this many ms: a query that wakes LoadGen's idle serving thread runs its
# predict 5-9 µs slower than dlbench's back-to-back queries (cold caches after the wait), whatever the model
LATENCY_SLACK_MS = 0.012


def consistency(scenarios: dict[str, Any], own_offline: Optional[float], own_latency: dict[str, Any],
                own_blocks: Sequence[float] = (), path: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The check of one case; ``path`` holds the empty runs' summary records by scenario (LoadGen's own path)."""
    out: dict[str, Any] = {"tolerance": TOLERANCE, "latency_slack_ms": LATENCY_SLACK_MS}
    path = path or {}
    words: list[str] = []
    offline = scenarios.get("offline")
    if offline and own_offline:
        out["offline"] = offline_entry(offline, own_offline, own_blocks, path.get("offline"))
        words.append(_offline_words(out["offline"]))
    single = scenarios.get("single-stream")
    if single and own_latency.get("p50"):
        out["single_stream"] = single_stream_entry(single, own_latency, path.get("single-stream"))
        words.append(_single_words(out["single_stream"]))
    verdicts = [out[k]["agree"] for k in ("offline", "single_stream") if k in out]
    if verdicts:
        out["agree"] = all(verdicts)
        out["verdict"] = (("agree" if out["agree"] else "DIFFER") + f" within {100 * TOLERANCE:g}%: "
                          + "; ".join(words))
    return out


def offline_entry(offline: dict[str, Any], own_offline: float, own_blocks: Sequence[float],
                  empty: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Offline: the predict-alone rate against the own blocks' total rate, and the time per sample by part."""
    sut = offline.get("sut_s") or {}
    samples = sut.get("samples") or 0
    predict_rate = samples / sut["predict_s"] if sut.get("predict_s") else None
    total_s = (sut.get("stage_s") or 0) + (sut.get("predict_s") or 0) + (sut.get("complete_s") or 0)
    own_total = len(own_blocks) / sum(1 / r for r in own_blocks) if own_blocks and all(own_blocks) else None
    entry: dict[str, Any] = {
        "own_samples_per_s": own_offline, "loadgen_samples_per_s": offline.get("qps"),
        "ratio": _ratio(offline.get("qps"), own_offline),
        "predict_samples_per_s": predict_rate, "predict_ratio": _ratio(predict_rate, own_offline),
        "own_total_samples_per_s": own_total, "predict_ratio_total": _ratio(predict_rate, own_total),
        "staging_share": (sut.get("stage_s") or 0) / total_s if total_s else None,
        "bookkeeping_share": (sut.get("complete_s") or 0) / total_s if total_s else None,
        "loadgen_path_samples_per_s": (empty or {}).get("qps")}
    if samples and offline.get("qps"):
        per = {"predict": sut.get("predict_s", 0) / samples * 1e6, "staging": sut.get("stage_s", 0) / samples * 1e6,
               "loadgen_path": 1e6 / entry["loadgen_path_samples_per_s"] if entry["loadgen_path_samples_per_s"]
               else None, "measured": 1e6 / offline["qps"]}
        parts = [v for k, v in per.items() if k != "measured" and v is not None]
        per["unaccounted"] = per["measured"] - sum(parts) if per["loadgen_path"] is not None else None
        entry["us_per_sample"] = per
    judged = entry["predict_ratio_total"] or entry["predict_ratio"]
    entry["agree"] = judged is not None and abs(judged - 1) <= TOLERANCE
    return entry


def single_stream_entry(single: dict[str, Any], own_latency: dict[str, Any],
                        empty: Optional[dict[str, Any]]) -> dict[str, Any]:
    """SingleStream: the SUT's predict p50 against dlbench's own p50; LoadGen's path beside it."""
    lg_latency = single.get("latency_ms") or {}
    predict = (single.get("sut_s") or {}).get("single_predict_ms") or {}
    entry: dict[str, Any] = {}
    for p in ("p50", "p90"):
        mine, theirs = own_latency.get(p), lg_latency.get(p)
        entry[f"own_{p}_ms"], entry[f"loadgen_{p}_ms"] = mine, theirs
        entry[f"ratio_{p}"] = _ratio(theirs, mine)
    mine, framework = own_latency["p50"], predict.get("p50")
    entry["predict_p50_ms"] = framework
    entry["predict_ratio_p50"] = _ratio(framework, mine)
    entry["path_ms"] = lg_latency["p50"] - framework if framework and lg_latency.get("p50") else None
    entry["loadgen_path_p50_ms"] = ((empty or {}).get("latency_ms") or {}).get("p50")
    entry["agree"] = framework is not None and (abs(framework / mine - 1) <= TOLERANCE
                                                or abs(framework - mine) <= LATENCY_SLACK_MS)
    return entry


def _offline_words(entry: dict[str, Any]) -> str:
    per = entry.get("us_per_sample") or {}
    path = (f"; LoadGen's own path {_rate(entry['loadgen_path_samples_per_s'])} samples/s with an empty predict"
            if entry.get("loadgen_path_samples_per_s") else "")
    accounted = (f"; per sample {per['measured']:.3g} µs = predict {per['predict']:.3g} + staging "
                 f"{per['staging']:.3g} + LoadGen {per['loadgen_path']:.3g} + other {per['unaccounted']:.2g}"
                 if per.get("unaccounted") is not None else "")
    return (f"Offline {_x(entry['ratio'])} of dlbench's own ({_x(entry['predict_ratio'])} counting "
            f"predict alone, {_x(entry['predict_ratio_total'])} against the own blocks' total rate; "
            f"staging {_pct(entry['staging_share'])}, LoadGen bookkeeping "
            f"{_pct(entry['bookkeeping_share'])} of the run{path}{accounted})")


def _single_words(entry: dict[str, Any]) -> str:
    empty = (f", {_us(entry['loadgen_path_p50_ms'])} with an empty predict"
             if entry.get("loadgen_path_p50_ms") is not None else "")
    return (f"SingleStream p50 {_x(entry['ratio_p50'])} of dlbench's own "
            f"({_x(entry['predict_ratio_p50'])} counting predict alone; LoadGen's issue-to-completion "
            f"path {_us(entry['path_ms'])} a query{empty})")


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def _x(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _us(value: Optional[float]) -> str:
    return "—" if value is None else f"{1000 * value:.0f} µs"


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _rate(value: float) -> str:
    return f"{value:,.0f}"
