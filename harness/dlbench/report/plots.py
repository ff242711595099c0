"""The report's charts, rendered by matplotlib's SVG backend without pyplot (no global state, no display).

Each function takes summary rows (dicts from ``table.summarise``) and returns a complete SVG document.
Text is drawn as paths, so the charts look the same on every machine and need no fonts.
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Optional, Sequence

from dlbench.report import format as f

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5",
           "#9c6b4e", "#9498a0")
TASK_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
         "axes.edgecolor": "#888888", "axes.titleweight": "bold", "svg.hashsalt": "dlbench",
         "svg.fonttype": "none", "figure.dpi": 100, "legend.frameon": False}


def colors_for(labels: Iterable[str]) -> dict[str, str]:
    """A fixed colour per framework label, the same in every chart of a report."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def plain(text: Any) -> str:
    """A label matplotlib shows literally: no mathtext, and not hidden from legends by a leading '_'."""
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _value(row: dict[str, Any], key: str) -> Optional[float]:
    return f.number(row.get(key))


def _render(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "dlbench", "Format": None,
                                                     "Type": None})
    return buffer.getvalue()


def _figure(width: float, height: float):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def throughput_svg(rows: Sequence[dict[str, Any]], label_of: dict[tuple[str, str], str],
                   colors: dict[str, str]) -> str:
    """Training and Offline inference samples/s per model, one bar per framework, 95% CI whiskers.

    Noisy cases are hatched. A log axis is used when the bars span more than 30x.
    """
    import matplotlib

    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    series = list(dict.fromkeys(label_of[(str(r["framework"]), str(r["variant"]))] for r in rows))
    cell = {(str(r["model"]), label_of[(str(r["framework"]), str(r["variant"]))]): r for r in rows}
    width = min(13.0, max(5.5, 1.5 + 0.5 * len(models) * (len(series) + 1) * 2))
    with matplotlib.rc_context(STYLE):
        fig = _figure(width, 3.3)
        axes = fig.subplots(1, 2)
        for ax, metric, title in zip(axes, ("train_samples_per_s", "infer_samples_per_s"),
                                     ("training samples/s", "inference samples/s (Offline)")):
            bar_width = 0.8 / max(1, len(series))
            values: list[float] = []
            for j, label in enumerate(series):
                xs, heights, low, high, noisy = [], [], [], [], []
                for i, model in enumerate(models):
                    row = cell.get((model, label))
                    v = _value(row, metric) if row else None
                    if v is None:
                        continue
                    lo = _value(row, f"{metric}_ci_lo")
                    hi = _value(row, f"{metric}_ci_hi")
                    xs.append(i - 0.4 + bar_width * (j + 0.5))
                    heights.append(v)
                    low.append(max(0.0, v - lo) if lo is not None else 0.0)
                    high.append(max(0.0, hi - v) if hi is not None else 0.0)
                    noisy.append(bool(row.get("noisy")))
                    values.append(v)
                if not xs:
                    continue
                bars = ax.bar(xs, heights, bar_width * 0.92, yerr=[low, high], color=colors[label],
                              label=plain(label), capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
                for bar, is_noisy in zip(bars, noisy):
                    if is_noisy:
                        bar.set_hatch("////")
                        bar.set_edgecolor("white")
            ax.set_xticks(range(len(models)), [plain(m) for m in models],
                          rotation=30 if len(models) > 4 else 0, ha="right" if len(models) > 4 else "center")
            ax.set_title(title, loc="left")
            positive = [v for v in values if v > 0]
            if positive and max(positive) / min(positive) > 30:
                ax.set_yscale("log")
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            ax.set_xlim(-0.6, len(models) - 0.4)
        handles, names = axes[0].get_legend_handles_labels()
        if not handles:
            handles, names = axes[1].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="outside upper right", ncols=min(6, len(handles)))
    return _render(fig)


def latency_svg(rows: Sequence[dict[str, Any]], label_of: dict[tuple[str, str], str],
                colors: dict[str, str]) -> str:
    """SingleStream latency at batch 1: p50, p90 and p99 of every case on one line."""
    import matplotlib
    from matplotlib.lines import Line2D

    rows = [r for r in rows if _value(r, "latency_p50_ms") is not None]
    with matplotlib.rc_context(STYLE):
        fig = _figure(8.0, 1.2 + 0.26 * max(1, len(rows)))
        ax = fig.subplots()
        names = []
        for y, row in enumerate(reversed(rows)):
            label = label_of[(str(row["framework"]), str(row["variant"]))]
            color = colors[label]
            points = [(q, _value(row, f"latency_{q}_ms")) for q in ("p50", "p90", "p99")]
            xs = [v for _, v in points if v is not None]
            ax.plot([min(xs), max(xs)], [y, y], color=color, lw=2, alpha=0.45, solid_capstyle="round")
            for (q, v), marker in zip(points, ("o", "^", "s")):
                if v is not None:
                    ax.plot([v], [y], marker=marker, color=color, ms=5, ls="none")
            names.append(plain(f"{row['task']} · {row['model']} · {label}"))
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.7, max(0, len(names) - 1) + 0.7)
        xs = [v for r in rows for q in ("p50", "p99") if (v := _value(r, f"latency_{q}_ms")) is not None]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("latency at batch 1 (ms)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        handles = [Line2D([], [], marker=m, color="#555555", ls="none", label=q)
                   for m, q in zip(("o", "^", "s"), ("p50", "p90", "p99"))]
        handles += [Line2D([], [], color=c, lw=3, label=plain(lab)) for lab, c in colors.items()
                    if any(label_of[(str(r["framework"]), str(r["variant"]))] == lab for r in rows)]
        ax.legend(handles=handles, loc="best", fontsize=8)
    return _render(fig)


def accuracy_svg(rows: Sequence[dict[str, Any]], label_of: dict[tuple[str, str], str],
                 colors: dict[str, str]) -> str:
    """Test accuracy against time-to-accuracy: up and to the left is better."""
    import matplotlib
    from matplotlib.lines import Line2D

    rows = [r for r in rows if _value(r, "accuracy") is not None and _value(r, "time_to_accuracy_s") is not None]
    tasks = list(dict.fromkeys(str(r["task"]) for r in rows))
    marker_of = {task: TASK_MARKERS[i % len(TASK_MARKERS)] for i, task in enumerate(tasks)}
    with matplotlib.rc_context(STYLE):
        fig = _figure(8.0, 4.2)
        ax = fig.subplots()
        for row in rows:
            label = label_of[(str(row["framework"]), str(row["variant"]))]
            x, y = _value(row, "time_to_accuracy_s"), 100 * _value(row, "accuracy")
            ax.plot([x], [y], marker=marker_of[str(row["task"])], color=colors[label], ms=7, ls="none",
                    alpha=0.9, markeredgecolor="white" if not row.get("noisy") else "#222222")
            ax.annotate(plain(row["model"]), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7,
                        color="#444444")
        xs = [_value(r, "time_to_accuracy_s") for r in rows]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("time to target accuracy (s)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        handles = [Line2D([], [], color=c, marker="o", ls="none", label=plain(lab)) for lab, c in colors.items()
                   if any(label_of[(str(r["framework"]), str(r["variant"]))] == lab for r in rows)]
        handles += [Line2D([], [], color="#777777", marker=marker_of[t], ls="none", label=plain(t)) for t in tasks]
        if handles:
            ax.legend(handles=handles, loc="best", fontsize=8)
    return _render(fig)


def batch_curves(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[tuple[int, float]]]]:
    """(task, model) -> framework label -> [(batch, training samples/s)], from ``--batch-size auto`` sweeps
    (metrics.batch_sweep.curve) and from ok cases run at fixed batches; only series with two batches or more."""
    points: dict[tuple[str, str], dict[tuple[str, str, str], dict[int, list[float]]]] = {}
    for record in records:
        if record.get("status") != "ok":
            continue
        metrics = record.get("metrics") or {}
        series = points.setdefault((str(record["task"]), str(record["model"])), {}).setdefault(
            (str(record["framework"]), str(record["variant"]), str(record["device"])), {})
        sweep = metrics.get("batch_sweep") if isinstance(metrics.get("batch_sweep"), dict) else {}
        for point in sweep.get("curve") or []:
            series.setdefault(int(point["batch_size"]), []).append(float(point["train_samples_per_s"]))
        if not sweep and f.number(metrics.get("train_samples_per_s")) is not None:
            series.setdefault(int(record["batch_size"]), []).append(float(metrics["train_samples_per_s"]))
    curves: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    for key, by_series in points.items():
        for (framework, variant, device), by_batch in by_series.items():
            if len(by_batch) > 1:
                from statistics import median as _median

                label = f"{framework}/{variant}" + (f" ({device})" if device != "cpu" else "")
                curves.setdefault(key, {})[label] = sorted((b, _median(v)) for b, v in by_batch.items())
    return curves


def batch_curve_svg(curves: dict[tuple[str, str], dict[str, list[tuple[int, float]]]]) -> str:
    """Training samples/s against batch size, one panel per task x model, one line per framework/variant;
    log-log, so a line that flattens is a device at work and a line that keeps rising was waiting on overhead."""
    import matplotlib
    from matplotlib.ticker import FuncFormatter

    panels = list(curves)
    labels = sorted({label for series in curves.values() for label in series})
    colors = colors_for(labels)
    with matplotlib.rc_context(STYLE):
        fig = _figure(min(13.0, 3.6 * len(panels) + 1.0), 3.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (task, model) in zip(axes, panels):
            for label, line in sorted(curves[(task, model)].items()):
                ax.plot([b for b, _ in line], [r for _, r in line], marker="o", ms=4, color=colors[label],
                        label=plain(label))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            plain_numbers = FuncFormatter(lambda value, _: f"{value:,.0f}")
            ax.xaxis.set_major_formatter(plain_numbers)
            ax.yaxis.set_major_formatter(plain_numbers)
            ax.yaxis.set_minor_formatter(plain_numbers)
            ax.set_title(plain(f"{model} on {task}"), loc="left")
            ax.set_xlabel("training batch size")
            ax.grid(alpha=0.3)
            ax.set_axisbelow(True)
        axes[0].set_ylabel("training samples/s")
        handles, names = axes[0].get_legend_handles_labels()
        for ax in axes[1:]:
            more_handles, more_names = ax.get_legend_handles_labels()
            for handle, name in zip(more_handles, more_names):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
        if handles:
            fig.legend(handles, names, loc="outside upper right", ncols=min(4, len(handles)))
    return _render(fig)
