"""Evaluation reports: report.md and a self-contained report.html (plots embedded as base64 PNG data URIs).

Reads the `metrics.json`, `manifest.json` and `outputs.jsonl` that `mathforge.evaluate` writes in each
run folder and lays several runs side by side: accuracy by benchmark with 95% error bars, maj@k and
pass@k against k, accuracy by difficulty level and by subject, and example generations of each run
(right and wrong, with the extracted answer and the verdict). Every report carries what a reader needs
to reproduce the numbers: the mathforge version, the grader profile and version, engine and library
versions, decoding settings and seeds, prompt style and shots, and the data file hashes. The report
opens with a warning when the runs are not comparable: graded under different grading profiles or
grader versions, or evaluated on different problems or benchmarks. A training run's folder gets the
training report of `mathforge.train_report` instead.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from mathforge.report_examples import EXAMPLES_CSS, examples_html, examples_md, pick_eval_examples
from mathforge.report_plots import bench_names, fig_to_png, plot_accuracy, plot_breakdown, plot_vs_k

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


def unique_labels(runs: list[Run]) -> None:
    """Runs with the same folder name get their parent folder's name as a prefix, so labels are unique."""
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.label] = seen.get(r.label, 0) + 1
    for r in runs:
        if seen[r.label] > 1:
            r.label = f"{r.path.resolve().parent.name}/{r.label}"


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
    """Lines that must be read before comparing the runs: mixed grading profiles or grader versions,
    a benchmark evaluated on different problems, runs that cover different benchmarks."""
    out = []
    for what, i in (("grading profiles", 0), ("grader versions", 1)):
        seen = {r.label: grading_of(r)[i] for r in runs}
        if len(set(seen.values())) > 1:
            which = ", ".join(f"{label}: {v}" for label, v in seen.items())
            out.append(f"Warning: these runs were graded under different {what} ({which}); "
                       "their accuracies are not comparable.")
    for b in bench_names(runs):
        having = [r for r in runs if b in r.metrics["benchmarks"]]
        if len({problem_set(r, b) for r in having}) > 1:
            which = ", ".join(f"{r.label}: {r.metrics['benchmarks'][b]['n_problems']} problems" for r in having)
            out.append(f"Warning: {b} was evaluated on different problems in these runs ({which}); "
                       f"their {b} accuracies are not comparable.")
    covered = {r.label: tuple(r.metrics["benchmarks"]) for r in runs}
    if len({frozenset(c) for c in covered.values()}) > 1:
        which = "; ".join(f"{label}: {', '.join(c)}" for label, c in covered.items())
        out.append(f"Warning: these runs cover different benchmarks ({which}); their dataset averages are "
                   "not comparable.")
    return out


def problem_set(run: Run, benchmark: str) -> str:
    """What identifies the problems a run evaluated on `benchmark`: the manifest's hash of the loaded
    (id, question, gold) triples, or (older manifests) the benchmark file's hash and the problem count."""
    d = run.manifest.get("data", {}).get(benchmark, {})
    if d.get("problems_sha256"):
        return str(d["problems_sha256"])
    return f"{d.get('sha256')}:{run.metrics['benchmarks'][benchmark].get('n_problems')}"


def _verdict(m: dict, key: str) -> str:
    return _fmt(m.get("verdicts", {}).get(key))


def tables(runs: list[Run]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table of the report."""
    out = []
    hdr = ["benchmark", "run", "problems", "samples", "accuracy", "95% CI (Wilson)", "wrong", "timeout", "maj@k",
           "pass@k", "extract fail %", "exec err", "exec timeout", "grade timeout (all samples)", "tok/s"]
    rows = []
    for b in bench_names(runs):
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
             for b in bench_names(runs) for key in ("by_level", "by_type") for r in runs
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
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


CSS = ("body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1150px;padding:0 16px;color:#222}"
       ".scroll{overflow-x:auto;max-width:100%}"
       "table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}"
       "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;white-space:nowrap}th{background:#f0f0f0}"
       "img{max-width:100%;border:1px solid #ddd;margin:6px 0 18px}h1{font-size:24px}h2{font-size:18px}"
       "h3{font-size:15px}.warn{background:#fff3cd;border:1px solid #e0a800;padding:8px 12px;font-weight:bold}"
       + EXAMPLES_CSS)


class Doc:
    """A report written twice in step: markdown (plots as files beside it) and self-contained HTML."""

    def __init__(self, title: str):
        self.title = title
        self.md = [f"# {title}", ""]
        self.page = [f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
                     f"content='width=device-width'><title>{html.escape(title)}</title><style>{CSS}</style>"
                     f"</head><body><h1>{html.escape(title)}</h1>"]

    def warn(self, text: str) -> None:
        self.md += [f"> **{text}**", ""]
        self.page.append(f"<p class='warn'>{html.escape(text)}</p>")

    def para(self, text: str) -> None:
        self.md += [text, ""]
        self.page.append(f"<p>{html.escape(text)}</p>")

    def heading(self, text: str, level: int = 2) -> None:
        self.md += [f"{'#' * level} {text}", ""]
        self.page.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        self.heading(title)
        self.md += [_md_table(header, rows), ""]
        self.page.append(_html_table(header, rows))

    def image(self, title: str, fname: str, png: bytes) -> None:
        self.heading(title)
        self.md += [f"![{title}]({fname})", ""]
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        self.page.append(f"<img alt='{html.escape(title)}' src='{uri}'>")

    def raw(self, md: str, page: str) -> None:
        self.md += [md, ""]
        self.page.append(page)

    def write(self, out: Path) -> list[Path]:
        (out / "report.md").write_text("\n".join(self.md), encoding="utf-8")
        (out / "report.html").write_text("".join(self.page) + "</body></html>", encoding="utf-8")
        return [out / "report.md", out / "report.html"]


def is_training_run(path: str | Path) -> bool:
    """A `mathforge train` output folder: its resolved config.json and metrics.jsonl, no eval metrics.json."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "metrics.jsonl").is_file() \
        and not (path / "metrics.json").is_file()


def write_report(run_dirs: list[str | Path], *, out_dir: str | Path | None = None,
                 title: str | None = None, examples: int = 2) -> list[Path]:
    """Write report.md, report.html and the PNG plots; returns their paths. Eval run folders are compared
    side by side; training run folders get the training report (`mathforge.train_report`). `examples`:
    example generations of each kind (correct, wrong, ...) per benchmark and run (0: none). Of several
    eval folders (a glob such as `runs/eval/*`), those that hold no finished run (no metrics.json: a run
    still going, interrupted or failed) are left out, and the report says which; one such folder alone
    is an error."""
    if not run_dirs:
        raise ValueError("write_report: give at least one run folder")
    training = [is_training_run(p) for p in run_dirs]
    if all(training):
        from mathforge.train_report import write_train_report

        return write_train_report(run_dirs, out_dir=out_dir, title=title or "mathforge training report",
                                  examples=examples)
    if any(training):
        which = ", ".join(str(p) for p, t in zip(run_dirs, training, strict=True) if t)
        raise ValueError(f"{which}: a training run folder; report training runs and eval runs separately "
                         "(`mathforge report RUN_DIR` for a training run, or evaluate its model/ first)")
    finished = [p for p in run_dirs if len(run_dirs) == 1 or (Path(p) / "metrics.json").is_file()]
    if not finished:
        raise FileNotFoundError(f"none of the {len(run_dirs)} folders holds a finished `mathforge eval` run "
                                "(metrics.json)")
    skipped = [str(p) for p in run_dirs if p not in finished]
    runs = [load_run(p) for p in finished]
    unique_labels(runs)
    out = Path(out_dir) if out_dir else Path(finished[0])
    out.mkdir(parents=True, exist_ok=True)
    figures = [("Accuracy by benchmark", "accuracy.png", plot_accuracy(runs)),
               ("maj@k and pass@k", "accuracy_vs_k.png", plot_vs_k(runs)),
               ("Accuracy by difficulty level", "accuracy_by_level.png",
                plot_breakdown(runs, "by_level", "accuracy by level")),
               ("Accuracy by subject", "accuracy_by_type.png", plot_breakdown(runs, "by_type", "accuracy by type"))]
    plots = [(t, f, fig_to_png(fig)) for t, f, fig in figures if fig is not None]
    written = []
    for _, fname, png in plots:
        (out / fname).write_bytes(png)
        written.append(out / fname)
    tabs = tables(runs)
    avg = ", ".join(f"{r.label}: {r.metrics.get('average_accuracy', float('nan')):.1f}" for r in runs)
    intro = (f"Runs: {', '.join(r.label for r in runs)}. Accuracy uses the first sample of each problem; the "
             f"dataset average is unweighted ({avg}). 'wrong' and 'grade timeout' count first samples: a "
             "comparison the grader ran out of time on is not a wrong answer, and it is not counted correct. "
             "Grader profile and versions are listed below: numbers graded under different profiles or "
             "grader versions are not comparable (docs/methods/evaluation.md §g.9).")
    doc = Doc(title or "mathforge evaluation report")
    for w in warnings(runs) + ([f"Left out, no finished run (no metrics.json): {', '.join(skipped)}"]
                               if skipped else []):
        doc.warn(w)
    doc.para(intro)
    for t, header, rows in tabs[:1]:
        doc.table(t, header, rows)
    for t, fname, png in plots:
        doc.image(t, fname, png)
    if examples > 0:
        _examples_section(doc, runs, examples, open_all=len(runs) == 1)
    for t, header, rows in tabs[1:]:
        doc.table(t, header, rows)
    return [*doc.write(out), *written]


def _examples_section(doc: Doc, runs: list[Run], per_kind: int, *, open_all: bool) -> None:
    doc.heading("Example generations")
    doc.para(f"Per run and benchmark, the first {per_kind} problems (in file order) whose first sample was "
             "graded correct, wrong, had no answer extracted, or timed out in the grader; every sample is in "
             "the run's outputs.jsonl.")
    for r in runs:
        doc.heading(f"{r.label} ({r.path / 'outputs.jsonl'})", level=3)
        outputs = r.path / "outputs.jsonl"
        picked = pick_eval_examples(outputs, per_kind=per_kind) if outputs.is_file() else []
        if not picked:
            doc.para("No outputs.jsonl records in this run folder.")
            continue
        page = examples_html(picked)
        doc.raw(examples_md(picked), page.replace("<details ", "<details open ") if open_all else page)
