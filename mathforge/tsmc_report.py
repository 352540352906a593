"""Report of the TSMC experiment (docs/methods/tsmc.md §e.9): accuracy against N and against generated tokens for
majority vote, best-of-N and weighted vote by the value model, and TSMC (with the CTL and with the BCE
value model), the value models' AUC, TSMC diagnostics, and one problem's particle genealogy.

Budget points are means over seeded random subsets of each problem's samples (whole groups for TSMC);
the 95% interval is the Wilson interval over problems at that mean accuracy (it reflects problem
sampling, the dominant uncertainty), and the 2.5-97.5% spread over subset trials is listed too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METHODS = [("maj", "wvote-ctl", "maj@n", 1), ("bon", "wvote-ctl", "best-of-n (CTL value)", 1),
           ("wvote", "wvote-ctl", "weighted vote (CTL value)", 1), ("bon", "wvote-bce", "best-of-n (BCE value)", 1),
           ("wvote", "wvote-bce", "weighted vote (BCE value)", 1), ("tsmc", "tsmc-ctl", "TSMC (CTL value)", 0),
           ("tsmc", "tsmc-bce", "TSMC (BCE value)", 0)]


def _records(path: Path) -> list[dict]:
    from mathforge.search_eval import read_outputs

    return read_outputs(path / "outputs.jsonl")


def curves(out: Path, cfg: Any) -> dict[str, list[dict]]:
    from mathforge.grading.metrics import wilson_interval
    from mathforge.search_eval import subset_accuracy

    result = {}
    for rule, run, label, group in METHODS:
        folder = out / "eval" / run
        if not (folder / "outputs.jsonl").exists():
            continue
        recs = _records(folder)
        g = group or cfg.m
        n_max = len(recs[0]["samples"])
        tokens_per_sample = (sum(r["cost"]["generated_tokens"] for r in recs) / len(recs)) / n_max
        points = []
        for n in cfg.budgets:
            pt = subset_accuracy(recs, rule, n, group=g, trials=cfg.trials if n < n_max else 1, seed=0)
            lo, hi = wilson_interval(round(pt["accuracy"] * len(recs)), len(recs))
            points.append({**pt, "ci95_wilson": [lo, hi], "tokens_per_problem": tokens_per_sample * n,
                           "n_problems": len(recs)})
        result[label] = points
    return result


def test_auc(out: Path, run: str) -> tuple[float, float] | None:
    """(pooled, within-problem) AUC of V_EOS against correctness on the held-out samples."""
    from mathforge.train.value_batches import auc, within_auc

    folder = out / "eval" / run
    if not (folder / "outputs.jsonl").exists():
        return None
    rows = [(s["value"], int(s["correct"]), r["problem_id"]) for r in _records(folder) for s in r["samples"]
            if s.get("value") is not None and s["finish"] == "stop"]
    if not rows:
        return None
    scores, labels, groups = zip(*rows, strict=True)
    return auc(list(scores), list(labels)), within_auc(list(scores), list(labels), list(groups))


def train_metrics(out: Path, obj: str) -> dict:
    path = out / f"value_{obj}" / "metrics.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    evals = [r for r in rows if "eval_value_auc" in r]
    return evals[-1] if evals else {}


def plot(result: dict[str, list[dict]], key: str, xlabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, pts in result.items():
        xs = [p[key] for p in pts]
        ys = [100 * p["accuracy"] for p in pts]
        lo = [100 * (p["accuracy"] - p["ci95_wilson"][0]) for p in pts]
        hi = [100 * (p["ci95_wilson"][1] - p["accuracy"]) for p in pts]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy % (95% CI over problems)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def genealogy(out: Path, path: Path) -> str | None:
    """Plot one TSMC group's ancestry (particles per round, lines to their ancestors)."""
    folder = out / "eval" / "tsmc-ctl"
    if not (folder / "outputs.jsonl").exists():
        return None
    recs = _records(folder)
    # the first problem whose group 0 really duplicated particles (the plot is about resampling)
    rec = next((r for r in recs if r["groups"] and any(len(set(a)) < len(a) for a in r["groups"][0]["ancestors"])),
               recs[0])
    group = rec["groups"][0]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for t, anc in enumerate(group["ancestors"]):
        for j, a in enumerate(anc):
            ax.plot([t, t + 1], [a, j], color="tab:blue", alpha=0.6)
    members = [s for s in rec["samples"] if s["group_id"] == 0]
    last = len(group["ancestors"])
    for j, s in enumerate(members):
        ax.scatter([last], [j], color="tab:green" if s["correct"] else "tab:red", zorder=3)
    ax.set_xlabel("resampling round")
    ax.set_ylabel("particle")
    ax.set_title(f"problem {rec['problem_id']}, group 0 (green: correct)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return rec["problem_id"]


def write_report(out: Path, cfg: Any) -> Path:
    out = Path(out)
    result = curves(out, cfg)
    (out / "curves.json").write_text(json.dumps(result, indent=1))
    plot(result, "n", "N (samples / particles per problem)", out / "accuracy_vs_n.png")
    plot(result, "tokens_per_problem", "generated tokens per problem", out / "accuracy_vs_tokens.png")
    problem = genealogy(out, out / "genealogy.png")
    times = json.loads((out / "stage_times.json").read_text()) if (out / "stage_times.json").exists() else {}
    lines = ["# TSMC experiment (docs/methods/tsmc.md §e)", "",
             f"Held-out problems: {next(iter(result.values()))[0]['n_problems'] if result else 0} (`arith_steps`, seed 2); "
             f"N up to {cfg.n_max}, TSMC groups of M={cfg.m}, stop_steps={cfg.stop_steps}, temperature 0.8, "
             f"top-k 200, {cfg.trials} subset trials per budget.", "",
             "| method | " + " | ".join(f"N={n}" for n in cfg.budgets) + " |",
             "|---|" + "---|" * len(cfg.budgets)]
    for label, pts in result.items():
        cells = [f"{100 * p['accuracy']:.1f} [{100 * p['ci95_wilson'][0]:.1f}, {100 * p['ci95_wilson'][1]:.1f}]" for p in pts]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for obj in ("ctl", "bce"):
        mpath = out / "eval" / f"beam-{obj}" / "metrics.json"
        if mpath.exists():
            m = json.loads(mpath.read_text())
            lo, hi = m["ci95_wilson"]
            cells = [f"{100 * m['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" if n == m["n"] else ""
                     for n in cfg.budgets]
            lines.append(f"| step-level beam ({obj.upper()} value), run at N={m['n']} only | " + " | ".join(cells) + " |")
    lines += ["", "Generated tokens per problem at each N:", "",
              "| method | " + " | ".join(f"N={n}" for n in cfg.budgets) + " |", "|---|" + "---|" * len(cfg.budgets)]
    for label, pts in result.items():
        lines.append(f"| {label} | " + " | ".join(f"{p['tokens_per_problem']:.0f}" for p in pts) + " |")
    lines += ["", "## Value models", "",
              "AUC of the final value V_EOS against correctness: pooled over problems, and within problems "
              "(mean over problems with both labels; SMC weights are normalised within a problem's group, and "
              "CTL learns values only up to a per-problem factor).", "",
              "| value model | held-out value data: AUC | ECE | test samples: AUC pooled | AUC within problems |",
              "|---|---|---|---|---|"]
    for obj in ("ctl", "bce"):
        m = train_metrics(out, obj)
        ta = test_auc(out, f"wvote-{obj}") or (float("nan"), float("nan"))
        lines.append(f"| {obj.upper()} | {m.get('eval_value_auc', float('nan')):.3f} | "
                     f"{m.get('eval_value_ece', float('nan')):.3f} | {ta[0]:.3f} | {ta[1]:.3f} |")
    diag = []
    for obj in ("ctl", "bce"):
        mpath = out / "eval" / f"tsmc-{obj}" / "metrics.json"
        if mpath.exists():
            m = json.loads(mpath.read_text())
            diag.append(f"| TSMC ({obj.upper()}) | {m['truncation_rate']:.3f} | {m['dead_groups']} | "
                        f"{m['mean_resamplings']:.2f} | {m['value_tokens_per_problem']:.0f} | {m['wall_s']:.0f} |")
    if diag:
        lines += ["", "| run | truncation rate | dead groups | resamplings per group | value tokens / problem | wall s |",
                  "|---|---|---|---|---|---|", *diag]
    lines += ["", "![accuracy against N](accuracy_vs_n.png)", "", "![accuracy against tokens](accuracy_vs_tokens.png)"]
    if problem is not None:
        lines += ["", f"Particle genealogy of problem {problem}, group 0:", "", "![genealogy](genealogy.png)"]
    if times:
        lines += ["", "Stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in times.items()),
                  f"(total {sum(times.values()) / 60:.1f} min)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"
