"""Training reports: `mathforge report runs/<train-run>` for folders written by `mathforge train`.

From a training run's `config.json` (the resolved config), `metrics.jsonl` (train rows: loss, lr,
grad_norm, throughput; eval rows: eval_loss and held-out exact-match accuracy with its Wilson 95%
interval), `done.json`, `best.json` and `eval_samples.jsonl` (the final held-out generations), it
writes report.md, a self-contained report.html and `training_curves.png`: train and held-out loss,
held-out accuracy with its interval, learning rate and gradient norm against the optimizer step, the
last logged values, the config, and example generations right and wrong with the extracted answer.
Several training runs given together share the plots, one colour per run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mathforge.report_examples import examples_html, examples_md, pick_train_examples
from mathforge.report_plots import fig_to_png, plt


@dataclass
class TrainRun:
    label: str
    path: Path
    config: dict
    rows: list[dict]
    done: dict | None = None
    best: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def train_rows(self) -> list[dict]:
        return [r for r in self.rows if "loss" in r]

    @property
    def eval_rows(self) -> list[dict]:
        return [r for r in self.rows if any(k.startswith("eval_") for k in r)]


def load_train_run(path: str | Path) -> TrainRun:
    from mathforge.train.logging import read_metrics

    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file}: missing; is {path} a `mathforge train` run folder?")

    def read(f: Path) -> dict | None:
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{f}:{exc.lineno}: malformed JSON ({exc.msg})") from exc

    rows = read_metrics(path / "metrics.jsonl")
    return TrainRun(path.resolve().name, path, read(cfg_file) or {}, rows, read(path / "done.json"),
                    read(path / "best.json"))


def held_out_ci(row: dict) -> tuple[float, float] | None:
    """The Wilson 95% interval of a held-out row: `eval_ci95_wilson` [lo, hi] (older logs: `eval_ci_low`,
    `eval_ci_high`); None when the row has none."""
    ci = row.get("eval_ci95_wilson")
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return float(ci[0]), float(ci[1])
    if "eval_ci_low" in row and "eval_ci_high" in row:
        return float(row["eval_ci_low"]), float(row["eval_ci_high"])
    return None


def held_out_n(row: dict):
    return row.get("eval_n_problems", row.get("eval_n", "?"))


def accuracy_percent(rows: list[dict]) -> float:
    """Factor that turns the logged held-out accuracy into percent: the loop logs fractions (0..1); a
    log already in percent (any accuracy or bound above 1) is left as it is."""
    vals = [r["eval_accuracy"] for r in rows if isinstance(r.get("eval_accuracy"), int | float)]
    vals += [v for r in rows for v in (held_out_ci(r) or ())]
    return 1.0 if any(v > 1.0 for v in vals) else 100.0


def plot_curves(runs: list[TrainRun]):
    """2x2 panels against the optimizer step: loss (train solid, held-out dashed with markers, log
    scale), held-out accuracy with its 95% interval as a band, learning rate, gradient norm."""
    from matplotlib.ticker import FormatStrFormatter

    fig, axes = plt().subplots(2, 2, figsize=(11, 7), layout="constrained", sharex=True)
    (ax_loss, ax_acc), (ax_lr, ax_gn) = axes
    for i, r in enumerate(runs):
        c = f"C{i}"
        tr, ev = r.train_rows, [e for e in r.eval_rows if "eval_loss" in e]
        if tr:
            ax_loss.plot([x["step"] for x in tr], [x["loss"] for x in tr], color=c, label=f"{r.label} train")
        if ev:
            ax_loss.plot([x["step"] for x in ev], [x["eval_loss"] for x in ev], "--o", color=c, ms=4,
                         label=f"{r.label} held-out")
        acc = [e for e in r.eval_rows if "eval_accuracy" in e]
        if acc:
            f = accuracy_percent(acc)
            steps = [x["step"] for x in acc]
            ax_acc.plot(steps, [f * x["eval_accuracy"] for x in acc], "-o", color=c, ms=4, clip_on=False,
                        label=r.label)
            cis = [held_out_ci(x) for x in acc]
            if all(ci is not None for ci in cis):
                ax_acc.fill_between(steps, [f * ci[0] for ci in cis], [f * ci[1] for ci in cis],
                                    color=c, alpha=0.15, linewidth=0)
        for ax, key in ((ax_lr, "lr"), (ax_gn, "grad_norm")):
            pts = [(x["step"], x[key]) for x in tr if isinstance(x.get(key), int | float) and math.isfinite(x[key])]
            if pts:
                ax.plot(*zip(*pts, strict=True), color=c, label=r.label)
    if any(r.train_rows for r in runs):
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax_loss.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax_loss.set_title("loss (token mean)")
    ax_loss.legend(fontsize=7)
    ax_acc.set_title("held-out exact match (%), 95% interval")
    ax_acc.set_ylim(0, 105)
    if not any("eval_accuracy" in e for r in runs for e in r.eval_rows):
        ax_acc.text(0.5, 0.5, "no held-out exact match logged\n(other held-out metrics: see the tables)",
                    ha="center", va="center", transform=ax_acc.transAxes)
    elif len(runs) > 1:
        ax_acc.legend(fontsize=7)
    ax_lr.set_title("learning rate")
    ax_gn.set_title("gradient norm (before clipping)")
    for ax in axes.flat:
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    fig.suptitle("Training curves")
    return fig


def _flat(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", json.dumps(v) if not isinstance(v, str) else v))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def status(r: TrainRun) -> str:
    last = max((x["step"] for x in r.rows), default=0)
    max_steps = r.config.get("optim", {}).get("max_steps")
    if r.done is not None:
        return f"finished at step {r.done.get('step', last)}"
    return f"not finished: last logged step {last}" + (f" of {max_steps}" if max_steps else "")


def summary_rows(runs: list[TrainRun]) -> list[list[str]]:
    rows = []
    for r in runs:
        c = r.config
        model = c.get("model", {})
        data = c.get("data", {})
        tr = r.train_rows
        acc = [e for e in r.eval_rows if "eval_accuracy" in e]
        ev_loss = [e for e in r.eval_rows if "eval_loss" in e]
        last_acc = "-"
        if acc:
            e, f = acc[-1], accuracy_percent(acc)
            last_acc = f"{f * e['eval_accuracy']:.1f}"
            if (ci := held_out_ci(e)) is not None:
                last_acc += f" [{f * ci[0]:.1f}, {f * ci[1]:.1f}]"
            last_acc += f" (n={held_out_n(e)}, step {e['step']})"
        best = f"{accuracy_percent([{'eval_accuracy': r.best['accuracy']}]) * r.best['accuracy']:.1f} " \
               f"(step {r.best['step']})" if r.best else "-"
        rows.append([r.label, str(c.get("objective", "-")), model.get("init") or f"preset {model.get('preset', '-')}",
                     str(data.get("train_file") or data.get("task", "-")), status(r),
                     f"{tr[-1]['loss']:.4f}" if tr else "-", f"{ev_loss[-1]['eval_loss']:.4f}" if ev_loss else "-",
                     last_acc, best])
    return rows


def write_train_report(run_dirs: list[str | Path], *, out_dir: str | Path | None = None,
                       title: str = "mathforge training report", examples: int = 3) -> list[Path]:
    """Write report.md, report.html and training_curves.png for training runs; returns their paths."""
    from mathforge.report import Doc, unique_labels

    runs = [load_train_run(p) for p in run_dirs]
    unique_labels(runs)
    out = Path(out_dir) if out_dir else Path(run_dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    png = fig_to_png(plot_curves(runs))
    (out / "training_curves.png").write_bytes(png)
    doc = Doc(title)
    doc.para(f"Runs: {', '.join(f'{r.label} ({r.path})' for r in runs)}. Held-out accuracy is greedy exact "
             "match on the run's held-out problems (eval.n_problems of them), with a Wilson 95% interval; the "
             "held-out loss is the token-mean loss on the held-out split. Curves come from each run's "
             "metrics.jsonl.")
    for r in runs:
        if r.done is None:
            doc.warn(f"{r.label}: {status(r)}; the curves stop there.")
    doc.table("Summary", ["run", "objective", "model", "data", "status", "last train loss", "last held-out loss",
                          "held-out accuracy % [95% CI]", "best accuracy % (step)"], summary_rows(runs))
    doc.image("Training curves", "training_curves.png", png)
    for r in runs:
        last_train = r.train_rows[-1] if r.train_rows else {}
        last_eval = r.eval_rows[-1] if r.eval_rows else {}
        vals = [[k, _fmt(v), "train" if k in last_train else "held-out"]
                for k, v in {**last_train, **last_eval}.items() if k != "step"]
        if vals:
            doc.table(f"{r.label}: last logged values", ["key", "value", "row"], vals)
    if examples > 0:
        doc.heading("Example generations")
        for r in runs:
            samples = r.path / "eval_samples.jsonl"
            doc.heading(f"{r.label} ({samples})", level=3)
            picked = pick_train_examples(samples, per_kind=examples) if samples.is_file() else []
            if not picked:
                doc.para("No eval_samples.jsonl in this run folder (it is written by the final held-out "
                         "evaluation, when eval.n_problems > 0).")
                continue
            doc.raw(examples_md(picked), examples_html(picked).replace("<details ", "<details open "))
    for r in runs:
        doc.table(f"{r.label}: resolved config (config.json)", ["key", "value"], [list(kv) for kv in _flat(r.config)])
    return [*doc.write(out), out / "training_curves.png"]
