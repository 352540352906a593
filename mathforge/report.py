"""Evaluation reports: report.md and a self-contained report.html (plots embedded as base64 PNG data URIs).

Reads the `metrics.json` and `manifest.json` that `mathforge.evaluate` writes in each run folder and
lays several runs side by side: accuracy by benchmark with 95% error bars, maj@k and pass@k against
k, accuracy by difficulty level and by subject. Every report carries what methods.md §g.7 asks for:
the mathforge version, the grader profile and version, engine and library versions, decoding
settings and seeds, prompt style and shots, and the data file hashes. Runs graded under different
grading profiles or grader versions are not comparable: the report then opens with a warning.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

VERSION_KEYS = ("mathforge", "torch", "transformers", "sympy", "math-verify", "antlr4-python3-runtime")


@dataclass
class Run:
    label: str
    path: Path
    metrics: dict
    manifest: dict


def load_run(path: str | Path) -> Run:
    """One run folder; a clear error when it is not a finished `mathforge eval` folder."""
    path = Path(path)
    files = {}
    for name in ("metrics.json", "manifest.json"):
        f = path / name
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing; is {path} a finished `mathforge eval` run folder?")
        try:
            files[name] = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{f}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
    if "benchmarks" not in files["metrics.json"]:
        raise ValueError(f"{path / 'metrics.json'}: no 'benchmarks' field")
    return Run(path.resolve().name, path, in_percent(files["metrics.json"]), files["manifest.json"])


def in_percent(metrics: dict) -> dict:
    """The report's view of metrics.json: metrics.json holds fractions (`"unit": "fraction"`, as grade
    and training do), the report shows percentages. Files written before the unit was recorded
    hold percentages under older key names and are read as they are."""
    if metrics.get("unit") != "fraction":
        return {**metrics, "benchmarks": {b: {**m, "ci95_wilson": m.get("accuracy_ci_wilson", m.get("accuracy_ci")),
                                              "n_problems": m.get("num_problems"), "n_samples": m.get("num_samples")}
                                          for b, m in metrics["benchmarks"].items()}}
    pct = lambda x: None if x is None else 100.0 * x  # noqa: E731
    out = {**metrics, "average_accuracy": pct(metrics.get("average_accuracy")), "benchmarks": {}}
    for b, m in metrics["benchmarks"].items():
        out["benchmarks"][b] = {
            **m, "accuracy": pct(m["accuracy"]), "ci95_wilson": [pct(x) for x in m["ci95_wilson"]],
            "sample_accuracy": pct(m.get("sample_accuracy")),
            "maj_at_k": {k: pct(v) for k, v in m["maj_at_k"].items()},
            "pass_at_k": {k: pct(v) for k, v in m["pass_at_k"].items()},
            **{key: {g: {**v, "accuracy": pct(v["accuracy"])} for g, v in m.get(key, {}).items()}
               for key in ("by_level", "by_type")}}
    return out


def _labels(runs: list[Run]) -> None:
    """Runs with the same folder name get their parent folder's name as a prefix, so labels are unique."""
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.label] = seen.get(r.label, 0) + 1
    for r in runs:
        if seen[r.label] > 1:
            r.label = f"{r.path.resolve().parent.name}/{r.label}"


# ------------------------------------------------------------------ plots


def _plt():
    """pyplot on the file-only Agg backend: reports are written on servers without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fig_to_png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _bench_names(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for r in runs:
        names += [b for b in r.metrics["benchmarks"] if b not in names]
    return names


def plot_accuracy(runs: list[Run]) -> bytes:
    """Grouped bars: accuracy per benchmark, one bar per run, 95% CI as error bars."""
    import numpy as np

    plt = _plt()

    names = _bench_names(runs)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(names) * max(1, len(runs)) ** 0.5 + 2), 4))
    width = 0.8 / len(runs)
    x = np.arange(len(names))
    for i, r in enumerate(runs):
        acc, err = [], [[], []]
        for b in names:
            m = r.metrics["benchmarks"].get(b)
            a = m["accuracy"] if m else float("nan")
            lo, hi = m["ci95_wilson"] if m else (a, a)
            acc.append(a)
            err[0].append(max(0.0, a - lo))
            err[1].append(max(0.0, hi - a))
        bars = ax.bar(x + (i - (len(runs) - 1) / 2) * width, acc, width, yerr=err, capsize=4, label=r.label)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_ylim(0, 105)
    ax.set_title("Accuracy by benchmark (first sample)")
    ax.legend(fontsize=8, loc="upper right")
    return _fig_to_png(fig)


def plot_vs_k(runs: list[Run]) -> bytes:
    """maj@k (dashed) and pass@k (solid) against k, one panel per benchmark, one colour per run."""
    plt = _plt()
    names = _bench_names(runs)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, b in zip(axes[0], names, strict=True):
        for i, r in enumerate(runs):
            m = r.metrics["benchmarks"].get(b)
            if not m:
                continue
            colour = f"C{i}"
            for key, ls, mark, what in (("pass_at_k", "-", "o", "pass"), ("maj_at_k", "--", "s", "maj")):
                ks = sorted(int(k) for k in m[key])
                ax.plot(ks, [m[key][str(k)] for k in ks], ls, marker=mark, color=colour, label=f"{r.label} {what}@k")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (samples)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(b)
        ax.legend(fontsize=7)
    fig.suptitle("maj@k and pass@k against k")
    return _fig_to_png(fig)


def plot_breakdown(runs: list[Run], key: str, title: str) -> bytes | None:
    """Grouped bars of accuracy by `key` (`by_level`, `by_type`) for every benchmark that has it."""
    import numpy as np

    plt = _plt()

    panels = [b for b in _bench_names(runs) if any(r.metrics["benchmarks"].get(b, {}).get(key) for r in runs)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.4 * len(panels)), squeeze=False)
    for ax, b in zip(axes[:, 0], panels, strict=True):
        groups = sorted({g for r in runs for g in r.metrics["benchmarks"].get(b, {}).get(key, {})}, key=_natural)
        x = np.arange(len(groups))
        width = 0.8 / len(runs)
        for i, r in enumerate(runs):
            table = r.metrics["benchmarks"].get(b, {}).get(key, {})
            vals = [table.get(g, {}).get("accuracy", float("nan")) for g in groups]
            bars = ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=r.label)
            ax.bar_label(bars, fmt="%.0f", padding=2, fontsize=7)
        ax.set_xticks(x, [str(g) for g in groups], rotation=20 if key == "by_type" else 0, fontsize=8)
        ax.set_xlabel("level" if key == "by_level" else "subject")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(f"{b}: {title}")
        ax.legend(fontsize=7)
    return _fig_to_png(fig)


def _natural(s: str):
    return (0, int(s), "") if str(s).isdigit() else (1, 0, str(s))


# ------------------------------------------------------------------ tables


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def grading_of(run: Run) -> tuple[str, str]:
    """(profile, grader version) the run's verdicts were graded under."""
    g = run.metrics.get("grading", {})
    return (str(g.get("profile", run.manifest.get("profile"))),
            str(g.get("grader_version", run.manifest.get("grader_version"))))


def warnings(runs: list[Run]) -> list[str]:
    """Lines that must be read before comparing the runs: mixed grading profiles or grader versions."""
    out = []
    for what, i in (("grading profiles", 0), ("grader versions", 1)):
        seen = {r.label: grading_of(r)[i] for r in runs}
        if len(set(seen.values())) > 1:
            which = ", ".join(f"{label}: {v}" for label, v in seen.items())
            out.append(f"Warning: these runs were graded under different {what} ({which}); "
                       "their accuracies are not comparable.")
    return out


def _verdict(m: dict, key: str) -> str:
    return _fmt(m.get("verdicts", {}).get(key))


def tables(runs: list[Run]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table of the report."""
    out = []
    hdr = ["benchmark", "run", "problems", "samples", "accuracy", "95% CI (Wilson)", "wrong", "timeout", "maj@k",
           "pass@k", "extract fail %", "exec err", "exec timeout", "grade timeout (all samples)", "tok/s"]
    rows = []
    for b in _bench_names(runs):
        for r in runs:
            m = r.metrics["benchmarks"].get(b)
            if not m:
                continue
            k = str(max(int(x) for x in m["pass_at_k"]))
            f = m["flags"]
            rows.append([b, r.label, _fmt(m["n_problems"]), _fmt(m["n_samples"]), _fmt(m["accuracy"]),
                         "[{:.1f}, {:.1f}]".format(*m["ci95_wilson"]), _verdict(m, "wrong"), _verdict(m, "timeout"),
                         f"@{k}: {m['maj_at_k'][k]:.1f}",
                         f"@{k}: {m['pass_at_k'][k]:.1f}", f"{100 * f['extraction_failed']['rate']:.1f}",
                         _fmt(f["exec_error"]["count"]), _fmt(f["exec_timeout"]["count"]),
                         _fmt(f["grade_timeout"]["count"]), f"{m['tokens_per_second']:.1f}"])
    out.append(("Results", hdr, rows))
    lrows = [[b, r.label, key[3:], str(g), _fmt(v["n"]), _fmt(v["accuracy"])]
             for b in _bench_names(runs) for key in ("by_level", "by_type") for r in runs
             for g, v in r.metrics["benchmarks"].get(b, {}).get(key, {}).items()]
    if lrows:
        out.append(("Breakdown (first sample)", ["benchmark", "run", "by", "group", "problems", "accuracy"], lrows))
    settings = ["run", "model", "style", "shots", "n", "temperature", "top_p", "max_new_tokens", "seed", "profile",
                "grader", "engine"]
    srows = []
    for r in runs:
        c, man = r.manifest.get("config", {}), r.manifest
        srows.append([r.label, str(c.get("model")), str(c.get("style")), _fmt(c.get("shots")), _fmt(c.get("n")),
                      _fmt(c.get("temperature")), _fmt(c.get("top_p")), _fmt(c.get("max_new_tokens")),
                      _fmt(c.get("seed")), *grading_of(r),
                      str(man.get("engine"))])
    out.append(("Settings", settings, srows))
    vrows = [[r.label] + [str(r.manifest.get("versions", {}).get(k)) for k in VERSION_KEYS] for r in runs]
    out.append(("Versions", ["run", *VERSION_KEYS], vrows))
    drows = [[r.label, b, d.get("file", "-"), str(d.get("sha256", "-"))[:16], _fmt(d.get("problems"))]
             for r in runs for b, d in r.manifest.get("data", {}).items()]
    out.append(("Data files (sha256, first 16 hex digits)", ["run", "benchmark", "file", "sha256", "problems"], drows))
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = ("body{font-family:system-ui,sans-serif;margin:24px;max-width:1150px;color:#222}"
       "table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}"
       "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;white-space:nowrap}th{background:#f0f0f0}"
       "img{max-width:100%;border:1px solid #ddd;margin:6px 0 18px}h1{font-size:24px}h2{font-size:18px}"
       ".warn{background:#fff3cd;border:1px solid #e0a800;padding:8px 12px;font-weight:bold}")


def write_report(run_dirs: list[str | Path], *, out_dir: str | Path | None = None,
                 title: str = "mathforge evaluation report") -> list[Path]:
    """Write report.md, report.html and the PNG plots; returns their paths. Of several folders (a
    glob such as `runs/eval/*`), those that hold no finished run (no metrics.json: a run still going,
    interrupted or failed) are left out, and the report says which; one such folder alone is an error."""
    if not run_dirs:
        raise ValueError("write_report: give at least one run folder")
    finished = [p for p in run_dirs if len(run_dirs) == 1 or (Path(p) / "metrics.json").is_file()]
    if not finished:
        raise FileNotFoundError(f"none of the {len(run_dirs)} folders holds a finished `mathforge eval` run "
                                "(metrics.json)")
    skipped = [str(p) for p in run_dirs if p not in finished]
    runs = [load_run(p) for p in finished]
    _labels(runs)
    out = Path(out_dir) if out_dir else Path(finished[0])
    out.mkdir(parents=True, exist_ok=True)
    plots = [("Accuracy by benchmark", "accuracy.png", plot_accuracy(runs)),
             ("maj@k and pass@k", "accuracy_vs_k.png", plot_vs_k(runs)),
             ("Accuracy by difficulty level", "accuracy_by_level.png",
              plot_breakdown(runs, "by_level", "accuracy by level")),
             ("Accuracy by subject", "accuracy_by_type.png", plot_breakdown(runs, "by_type", "accuracy by type"))]
    plots = [(t, f, png) for t, f, png in plots if png is not None]
    written = []
    for _, fname, png in plots:
        (out / fname).write_bytes(png)
        written.append(out / fname)
    tabs = tables(runs)
    avg = ", ".join(f"{r.label}: {r.metrics.get('average_accuracy', float('nan')):.1f}" for r in runs)
    intro = (f"Runs: {', '.join(r.label for r in runs)}. Accuracy uses the first sample of each problem; the "
             f"dataset average is unweighted ({avg}). 'wrong' and 'grade timeout' count first samples: a "
             "comparison the grader ran out of time on is not a wrong answer, and it is not counted correct. "
             "Grader profile and versions are listed below: never compare numbers across profiles "
             "(methods.md §g.9).")
    warn = warnings(runs) + ([f"Left out, no finished run (no metrics.json): {', '.join(skipped)}"] if skipped else [])
    md = [f"# {title}", "", *[f"> **{w}**\n" for w in warn], intro, ""]
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
            *[f"<p class='warn'>{html.escape(w)}</p>" for w in warn], f"<p>{html.escape(intro)}</p>"]
    for t, header, rows in tabs[:1]:
        md += [f"## {t}", "", _md_table(header, rows), ""]
        page.append(f"<h2>{html.escape(t)}</h2>{_html_table(header, rows)}")
    for t, fname, png in plots:
        md += [f"## {t}", "", f"![{t}]({fname})", ""]
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        page.append(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='{uri}'>")
    for t, header, rows in tabs[1:]:
        md += [f"## {t}", "", _md_table(header, rows), ""]
        page.append(f"<h2>{html.escape(t)}</h2>{_html_table(header, rows)}")
    page.append("</body></html>")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    (out / "report.html").write_text("".join(page), encoding="utf-8")
    return [out / "report.md", out / "report.html", *written]
