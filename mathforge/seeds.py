"""Seed-averaged comparisons: one recipe trained under several seeds, optionally against a variant
(another objective, mask ratio, ...) trained with the same seeds, so the two arms share initial
weights and data order seed by seed and differ only in what is compared (a paired design).

For each arm: the final in-loop evaluation of every seed (accuracy with its Wilson interval over
problems), then the mean and sample standard deviation over seeds. For the comparison: the per-seed
differences (variant − base), their mean with a Student-t 95% interval over seeds, how many seeds the
variant won, and an exact two-sided sign-flip (paired permutation) p-value, which assumes nothing
about the distribution of the differences. Every run is an ordinary training run folder under
`OUT/<arm>/seed-<s>`, so re-running the command resumes or skips finished runs.

Several variants (`arms`, e.g. SDAT's upsampling and weighting against plain SFT) are each compared
with the base arm the same way. Where the held-out examples carry a difficulty (a level, e.g. from
`mathforge difficulty` run on the held-out file, for reporting only), the final evaluation's
per-problem records are broken down by it: accuracy per level per arm (mean over seeds, with the
seeds' range) and each arm's paired difference from the base per level, in the summary and as
`OUT/accuracy_by_level.png` (the evaluation report's plot). A synthetic task's held-out examples
carry the task's own difficulty knob (arithmetic: operations x digits), which is broken down the same way.

Writes `OUT/seeds.json` (the configuration, every run's result, the summary) and `OUT/seeds.md`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from statistics import mean, stdev
from typing import Any

# Two-sided 95% quantiles of Student's t (t_{0.975, df}), df = 1..30.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t975(df: int) -> float:
    """t_{0.975, df}: the table up to 30 degrees of freedom, then the normal quantile plus its first
    Cornish-Fisher correction (within 0.002 of the exact value from df 31 on)."""
    if df < 1:
        raise ValueError(f"t975: degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df)


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max over seeds."""
    if not values:
        raise ValueError("summarize: no values")
    return {"n_seeds": len(values), "mean": mean(values), "std": stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "values": list(values)}


def paired(base: list[float], variant: list[float]) -> dict[str, Any]:
    """Paired comparison of two arms measured on the same seeds (`variant[i]` vs `base[i]`)."""
    if len(base) != len(variant) or not base:
        raise ValueError(f"paired: need the same non-zero number of seeds in both arms ({len(base)} vs {len(variant)})")
    d = [v - b for b, v in zip(base, variant, strict=True)]
    n = len(d)
    out: dict[str, Any] = {"n_seeds": n, "differences": d, "mean_diff": mean(d),
                           "variant_wins": sum(x > 0 for x in d), "ties": sum(x == 0 for x in d)}
    if n > 1:
        half = t975(n - 1) * stdev(d) / math.sqrt(n)
        out.update(std_diff=stdev(d), ci95_t=[mean(d) - half, mean(d) + half])
    else:
        out.update(std_diff=None, ci95_t=None)
    # exact sign-flip test: under H0 each difference is as likely to have either sign
    observed = abs(sum(d))
    flips = list(itertools.product((1, -1), repeat=n)) if n <= 16 else None
    if flips is not None:
        extreme = sum(abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-12 for signs in flips)
        out["sign_flip_p"] = extreme / len(flips)
    else:
        out["sign_flip_p"] = None
    return out


def by_level(samples_path: Path) -> dict[str, dict[str, Any]]:
    """Accuracy per difficulty level of a run's final held-out records (`eval_samples.jsonl`); empty
    when the held-out examples carry no difficulty. Levels are keyed as text ("1", "2", ...)."""
    from mathforge.grading.metrics import breakdown
    from mathforge.train.logging import read_metrics

    table = breakdown(read_metrics(samples_path), "difficulty")
    return {(str(int(d)) if float(d).is_integer() else str(d)): row for d, row in table.items() if d is not None}


def _level_summary(levels: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per level over seeds: problems per seed, mean accuracy, min and max."""
    keys = sorted({k for per_seed in levels.values() for k in per_seed}, key=lambda k: (len(k), k))
    out = {}
    for k in keys:
        accs = [per_seed[k]["accuracy"] for per_seed in levels.values() if k in per_seed]
        ns = sorted({per_seed[k]["n"] for per_seed in levels.values() if k in per_seed})
        out[k] = {"n": ns[0] if len(ns) == 1 else ns, "mean": mean(accs), "min": min(accs), "max": max(accs),
                  "values": accs}
    return out


_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def run_seeds(recipe: str | Path, seeds: list[int], out: str | Path, *, overrides: dict[str, Any] | None = None,
              compare: dict[str, Any] | None = None, arms: dict[str, dict[str, Any]] | None = None,
              base_name: str = "base", metric: str = "accuracy", jobs: int = 1) -> dict[str, Any]:
    """Train `recipe` once per seed (arm `base_name`) and, with `compare`, once more per seed with those
    overrides (arm `variant`), and once per seed for each named arm of `arms` (its overrides on top of
    `overrides`); every other arm is compared with the base. Returns and writes the summary. `jobs` > 1
    trains that many runs at once, one single-threaded process each."""
    from mathforge.train.config import load_recipe
    from mathforge.train.loop import train

    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must list distinct seeds, got {seeds}")
    named = dict(arms or {})
    if compare:
        if "variant" in named:
            raise ValueError("--compare makes the arm 'variant'; name the other arms differently")
        named = {"variant": compare, **named}
    for name in (base_name, *named):
        if not _ARM_NAME.match(name):
            raise ValueError(f"arm name {name!r}: letters, digits, '_', '-' and '.' only (it names a folder)")
    if base_name in named:
        raise ValueError(f"arm name {base_name!r} is the base arm's; name the other arms differently")
    out = Path(out)
    arms = {base_name: dict(overrides or {}), **{name: {**dict(overrides or {}), **table} for name, table in named.items()}}
    # validate every configuration before training anything
    configs = {(arm, s): load_recipe(recipe, {**table, "seed": s, "out_dir": str(out / arm / f"seed-{s}")},
                                     override_label="--set/--compare")
               for arm, table in arms.items() for s in seeds}
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        for cfg in configs.values():
            cfg.threads, cfg.progress = 1, False
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in [pool.submit(train, cfg) for cfg in configs.values()]:
                future.result()
    else:
        for cfg in configs.values():
            train(cfg)
    return summarize_runs(recipe, seeds, out, {arm: {s: Path(configs[arm, s].out_dir) for s in seeds} for arm in arms},
                          overrides=arms[base_name], compare=compare or {}, arm_overrides=named, metric=metric)


def summarize_runs(recipe: str | Path, seeds: list[int], out: Path, run_dirs: dict[str, dict[int, Path]], *,
                   overrides: dict[str, Any], compare: dict[str, Any], arm_overrides: dict[str, dict[str, Any]],
                   metric: str = "accuracy") -> dict[str, Any]:
    """The summary of finished runs `run_dirs[arm][seed]` (the first arm is the base): per-run final
    evaluation, mean and spread per arm, paired comparisons with the base, accuracy by level."""
    from mathforge.train.logging import final_eval

    arms = list(run_dirs)
    base = arms[0]
    runs = {arm: {s: final_eval(run_dirs[arm][s] / "metrics.jsonl") for s in seeds} for arm in arms}
    result: dict[str, Any] = {
        "recipe": str(recipe), "seeds": list(seeds), "overrides": overrides, "compare": compare,
        "arm_overrides": arm_overrides, "base_arm": base, "metric": metric,
        "runs": {arm: {str(s): r for s, r in by.items()} for arm, by in runs.items()},
        "arms": {arm: summarize([runs[arm][s][metric] for s in seeds]) for arm in arms}}
    result["comparisons"] = {arm: paired([runs[base][s][metric] for s in seeds], [runs[arm][s][metric] for s in seeds])
                             for arm in arms[1:]}
    if len(arms) == 2:
        result["paired"] = result["comparisons"][arms[1]]
    levels = {arm: {s: by_level(run_dirs[arm][s] / "eval_samples.jsonl") for s in seeds
                    if (run_dirs[arm][s] / "eval_samples.jsonl").is_file()} for arm in arms}
    out.mkdir(parents=True, exist_ok=True)
    if all(len(levels[arm]) == len(seeds) and all(levels[arm].values()) for arm in arms):
        result["by_level"] = {arm: _level_summary(levels[arm]) for arm in arms}
        # per level, each arm against the base seed by seed (a level's problems are the same in every run)
        result["by_level_paired"] = {arm: {k: paired(result["by_level"][base][k]["values"], v["values"])
                                           for k, v in result["by_level"][arm].items() if k in result["by_level"][base]}
                                     for arm in arms[1:]}
        from mathforge.report_plots import fig_to_png, plot_level_arms

        (out / "accuracy_by_level.png").write_bytes(fig_to_png(plot_level_arms(result["by_level"])))
    (out / "seeds.json").write_text(json.dumps(result, indent=1))
    (out / "seeds.md").write_text(report(result))
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def report(result: dict[str, Any]) -> str:
    seeds = result["seeds"]
    lines = [f"# {result['recipe']} over seeds {', '.join(map(str, seeds))}", ""]
    base, others = result["base_arm"], result["arm_overrides"]
    if others:
        for arm, table in others.items():
            lines.append(f"- {arm} = {base} with " + ", ".join(f"`{k}={v}`" for k, v in table.items()))
        lines += ["", "Every arm uses the same seeds (initial weights and data order) and the same number of "
                  "optimizer steps unless an override changes it.", ""]
    lines += ["| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
              "|---|" + "---|" * len(seeds) + "---|---|"]
    for arm, summ in result["arms"].items():
        cells = []
        for s in seeds:
            r = result["runs"][arm][str(s)]
            lo, hi = r["ci95_wilson"]
            cells.append(f"{_pct(r['accuracy'])} [{_pct(lo)}, {_pct(hi)}]")
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {_pct(summ['mean'])} | {_pct(summ['std'])} |")
    lines += ["", "Accuracy % of each seed's final in-loop evaluation, 95% Wilson interval over its problems; "
              "mean and sample standard deviation over seeds."]
    for arm, p in result["comparisons"].items():
        ci = "n/a" if p["ci95_t"] is None else f"[{_pct(p['ci95_t'][0])}, {_pct(p['ci95_t'][1])}]"
        lines += ["", f"**Paired ({arm} − {base}):** mean {_pct(p['mean_diff'])} points, 95% t-interval over seeds {ci}; "
                  f"{arm} better on {p['variant_wins']} of {p['n_seeds']} seeds; exact sign-flip p = "
                  f"{'n/a' if p['sign_flip_p'] is None else round(p['sign_flip_p'], 4)}."]
    if result.get("by_level"):
        lines += ["", "## Accuracy by difficulty level", "",
                  "Accuracy % per level of the held-out problems: mean over seeds (min–max over seeds); n = problems "
                  "at that level. ![accuracy by level](accuracy_by_level.png)", ""]
        arms = list(result["by_level"])
        diffs = result.get("by_level_paired", {})
        keys = list(result["by_level"][arms[0]])
        lines += ["| level | n | " + " | ".join(arms) + "".join(f" | {a} − {base}" for a in diffs) + " |",
                  "|---|---|" + "---|" * (len(arms) + len(diffs))]
        for k in keys:
            cells = []
            for arm in arms:
                v = result["by_level"][arm].get(k)
                cells.append("n/a" if v is None else f"{_pct(v['mean'])} ({_pct(v['min'])}–{_pct(v['max'])})")
            for arm in diffs:
                d = diffs[arm].get(k)
                ci = "" if d is None or d["ci95_t"] is None else f" [{_pct(d['ci95_t'][0])}, {_pct(d['ci95_t'][1])}]"
                cells.append("n/a" if d is None else f"{_pct(d['mean_diff'])}{ci}")
            lines.append(f"| {k} | {result['by_level'][arms[0]][k]['n']} | " + " | ".join(cells) + " |")
        if diffs:
            lines += ["", "The differences are paired by seed: mean over seeds, 95% t-interval over seeds."]
    return "\n".join(lines) + "\n"
