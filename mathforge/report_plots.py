"""The plots of an evaluation report (matplotlib, Agg backend) and the layout check they must pass.

Every figure is drawn with matplotlib's constrained layout and its legend outside the axes, so titles,
axis labels, tick labels, legends and bar labels do not overlap; `text_overlaps` finds the pairs of
text boxes that do, and the tests run it on every figure. Bars of 0% get a thick line at the axis in
the run's colour and a "0" label, so a run that solved nothing is seen, not left out; a run that did
not evaluate a benchmark gets an "n/a" mark instead of a bar.
"""

from __future__ import annotations

import io
import math
from typing import Any

YMAX = 114  # room above 100% for bar labels, below the title


def plt():
    """pyplot on the file-only Agg backend: reports are written on servers without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def fig_to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt().close(fig)
    return buf.getvalue()


def text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts of `fig` whose drawn boxes intersect (titles, axis and tick
    labels, legends, bar labels), each named by its text. Empty when the layout is clean."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []

    def add(artist, name: str) -> None:
        if artist is None or not artist.get_visible():
            return
        if hasattr(artist, "get_text") and not artist.get_text().strip():
            return
        bb = artist.get_window_extent(renderer)
        if bb.width > 0 and bb.height > 0:
            boxes.append((name, bb))

    suptitle = getattr(fig, "_suptitle", None)  # matplotlib keeps it private; None when there is none
    add(suptitle, f"suptitle {suptitle.get_text() if suptitle else ''}")
    for legend in fig.legends:
        add(legend, "figure legend")
    for ax in fig.axes:
        add(ax.title, f"title {ax.title.get_text()!r}")
        add(ax.xaxis.label, f"xlabel {ax.xaxis.label.get_text()!r}")
        add(ax.yaxis.label, f"ylabel {ax.yaxis.label.get_text()!r}")
        for axis, which in ((ax.xaxis, "xtick"), (ax.yaxis, "ytick")):
            for tick in _drawn_ticks(axis):
                for t in (tick.label1, tick.label2):
                    add(t, f"{which} {t.get_text()!r} of {ax.get_title()!r}")
        for t in ax.texts:
            add(t, f"text {t.get_text()!r} in {ax.get_title()!r}")
        add(ax.get_legend(), f"legend of {ax.get_title()!r}")
    out = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            inter_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            inter_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if inter_w > 0.5 and inter_h > 0.5:  # more than touching (half a pixel)
                out.append((a, b))
    return out


def _drawn_ticks(axis) -> list:
    """The major and minor ticks matplotlib draws (inside the view limits), not every located tick."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    locs = list(axis.get_majorticklocs()) + list(axis.get_minorticklocs())
    eps = 1e-9 * max(1.0, abs(hi - lo))
    return [t for t, loc in zip(ticks, locs, strict=False) if lo - eps <= loc <= hi + eps]


def bench_names(runs: list) -> list[str]:
    names: list[str] = []
    for r in runs:
        names += [b for b in r.metrics["benchmarks"] if b not in names]
    return names


def grouped_bars(ax, groups: list[str], series: list[tuple[str, str, list[float], Any]], *, fmt: str) -> None:
    """Bars for each (label, colour, values, yerr) series side by side over `groups`. NaN means "this run
    has no such value" (an "n/a" mark); 0 gets a thick line at the axis so it cannot be mistaken for a gap."""
    import numpy as np

    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for i, (label, colour, vals, yerr) in enumerate(series):
        xs = x + (i - (len(series) - 1) / 2) * width
        shown = [0.0 if math.isnan(v) else v for v in vals]
        bars = ax.bar(xs, shown, width, yerr=yerr, capsize=3 if yerr is not None else 0, color=colour, label=label,
                      error_kw={"elinewidth": 1})
        labels = ["n/a" if math.isnan(v) else (fmt % v) for v in vals]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=7)
        for xi, v in zip(xs, vals, strict=True):
            if not math.isnan(v) and v == 0:
                ax.hlines(0, xi - width * 0.45, xi + width * 0.45, colors=colour, linewidth=4, clip_on=False, zorder=3)
    ax.set_xticks(x, groups)
    ax.set_ylim(0, YMAX)
    ax.set_yticks(range(0, 101, 20))


def _legend_outside(ax, n: int) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, ncols=1 if n <= 12 else 2)


def plot_accuracy(runs: list) -> Any:
    """Grouped bars: first-sample accuracy per benchmark, one bar per run, 95% CI as error bars."""
    import numpy as np

    names = bench_names(runs)
    fig, ax = plt().subplots(figsize=(max(5.5, 1.2 * len(names) * max(1, len(runs)) ** 0.5 + 3), 4.2),
                             layout="constrained")
    series = []
    for i, r in enumerate(runs):
        acc, err = [], [[], []]
        for b in names:
            m = r.metrics["benchmarks"].get(b)
            a = m["accuracy"] if m else float("nan")
            lo, hi = m["ci95_wilson"] if m else (a, a)
            acc.append(a)
            err[0].append(float("nan") if m is None else max(0.0, a - lo))
            err[1].append(float("nan") if m is None else max(0.0, hi - a))
        series.append((r.label, f"C{i}", acc, np.array(err)))
    grouped_bars(ax, names, series, fmt="%.1f")
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_title("Accuracy by benchmark (first sample)")
    _legend_outside(ax, len(runs))
    return fig


def plot_vs_k(runs: list) -> Any:
    """maj@k (dashed, squares) and pass@k (solid, circles) against k, one panel per benchmark, one colour
    per run; only the runs that evaluated a benchmark appear in its panel."""
    from matplotlib.lines import Line2D

    names = bench_names(runs)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt().subplots(rows, cols, figsize=(4.0 * cols + 2.2, 3.5 * rows), squeeze=False,
                               layout="constrained")
    for ax, b in zip(axes.flat, names, strict=False):
        ks_all: set[int] = set()
        for i, r in enumerate(runs):
            m = r.metrics["benchmarks"].get(b)
            if not m:
                continue
            for key, ls, mark in (("pass_at_k", "-", "o"), ("maj_at_k", "--", "s")):
                ks = sorted(int(k) for k in m[key])
                ks_all.update(ks)
                ax.plot(ks, [m[key][str(k)] for k in ks], ls, marker=mark, color=f"C{i}", clip_on=False)
        ks = sorted(ks_all)
        ax.set_xscale("log", base=2)
        lo, hi = (ks[0], ks[-1]) if ks else (1, 1)
        ax.set_xlim(lo / 1.4, hi * 1.4)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("k (samples per problem)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(b)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=f"C{i}", lw=3, label=r.label) for i, r in enumerate(runs)]
    handles += [Line2D([], [], color="grey", ls="-", marker="o", label="pass@k"),
                Line2D([], [], color="grey", ls="--", marker="s", label="maj@k")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    fig.suptitle("maj@k and pass@k against k")
    return fig


def plot_breakdown(runs: list, key: str, title: str) -> Any | None:
    """Grouped bars of first-sample accuracy by `key` (`by_level`, `by_type`), one panel per benchmark
    that has it, each with only the runs that evaluated that benchmark; a group entry with `lo` and `hi`
    (percent) gets them as an error bar."""
    panels = [b for b in bench_names(runs) if any(r.metrics["benchmarks"].get(b, {}).get(key) for r in runs)]
    if not panels:
        return None
    import textwrap

    most = max(len({g for r in runs for g in r.metrics["benchmarks"].get(b, {}).get(key, {})}) for b in panels)
    fig, axes = plt().subplots(len(panels), 1, figsize=(max(10.0, 1.3 * most + 3), 3.9 * len(panels)), squeeze=False,
                               layout="constrained")
    for ax, b in zip(axes[:, 0], panels, strict=True):
        present = [(i, r) for i, r in enumerate(runs) if b in r.metrics["benchmarks"]]
        groups = sorted({g for _, r in present for g in r.metrics["benchmarks"][b].get(key, {})}, key=_natural)
        series = []
        for i, r in present:
            cells = [r.metrics["benchmarks"][b].get(key, {}).get(g, {}) for g in groups]
            accs = [c.get("accuracy", float("nan")) for c in cells]
            # a range (e.g. min-max over seeds) where every group has one: drawn as error bars
            yerr = None
            if cells and all("lo" in c and "hi" in c for c in cells):
                import numpy as np

                yerr = np.array([[max(0.0, a - c["lo"]) for a, c in zip(accs, cells, strict=True)],
                                 [max(0.0, c["hi"] - a) for a, c in zip(accs, cells, strict=True)]])
            series.append((r.label, f"C{i}", accs, yerr))
        # long subject names wrap onto two lines instead of rotating into their neighbours
        grouped_bars(ax, [textwrap.fill(str(g), 14) for g in groups], series, fmt="%.0f")
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel("level" if key == "by_level" else "subject")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{b}: {title}")
        _legend_outside(ax, len(present))
    return fig


def _natural(s: str):
    return (0, int(s), "") if str(s).isdigit() else (1, 0, str(s))


def plot_level_arms(by_level: dict[str, dict[str, dict]], panel: str = "held-out") -> Any:
    """Accuracy by level per arm of a seeds comparison (`mathforge.seeds`: fractions, mean over seeds
    with min and max), drawn by `plot_breakdown` with the seeds' range as error bars."""
    from types import SimpleNamespace

    runs = [SimpleNamespace(label=arm, metrics={"benchmarks": {panel: {"by_level": {
        k: {"accuracy": 100 * v["mean"], "lo": 100 * v["min"], "hi": 100 * v["max"]} for k, v in levels.items()}}}})
        for arm, levels in by_level.items()]
    return plot_breakdown(runs, "by_level", "accuracy by level (mean over seeds, bars: min-max)")
