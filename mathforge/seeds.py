"""Seed-averaged comparisons: one recipe trained under several seeds, optionally against a variant
(another objective, mask ratio, ...) trained with the same seeds, so the two arms share initial
weights and data order seed by seed and differ only in what is compared (a paired design).

For each arm: the final in-loop evaluation of every seed (accuracy with its Wilson interval over
problems), then the mean and sample standard deviation over seeds. For the comparison: the per-seed
differences (variant − base), their mean with a Student-t 95% interval over seeds, how many seeds the
variant won, and an exact two-sided sign-flip (paired permutation) p-value, which assumes nothing
about the distribution of the differences. Every run is an ordinary training run folder under
`OUT/<arm>/seed-<s>`, so re-running the command resumes or skips finished runs.

Writes `OUT/seeds.json` (the configuration, every run's result, the summary) and `OUT/seeds.md`.
"""

from __future__ import annotations

import itertools
import json
import math
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


def run_seeds(recipe: str | Path, seeds: list[int], out: str | Path, *, overrides: dict[str, Any] | None = None,
              compare: dict[str, Any] | None = None, metric: str = "accuracy", jobs: int = 1) -> dict[str, Any]:
    """Train `recipe` once per seed (arm `base`) and, with `compare`, once more per seed with those
    overrides (arm `variant`); returns and writes the summary. `jobs` > 1 trains that many runs at
    once, one single-threaded process each."""
    from mathforge.train.config import load_recipe
    from mathforge.train.logging import final_eval
    from mathforge.train.loop import train

    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must list distinct seeds, got {seeds}")
    out = Path(out)
    arms = {"base": dict(overrides or {})}
    if compare:
        arms["variant"] = {**arms["base"], **compare}
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
    runs: dict[str, dict[int, Any]] = {arm: {} for arm in arms}
    for (arm, s), cfg in configs.items():
        runs[arm][s] = final_eval(Path(cfg.out_dir) / "metrics.jsonl")
    result: dict[str, Any] = {
        "recipe": str(recipe), "seeds": list(seeds), "overrides": arms["base"], "compare": compare or {},
        "metric": metric, "runs": {arm: {str(s): r for s, r in by.items()} for arm, by in runs.items()},
        "arms": {arm: summarize([runs[arm][s][metric] for s in seeds]) for arm in arms}}
    if compare:
        result["paired"] = paired([runs["base"][s][metric] for s in seeds], [runs["variant"][s][metric] for s in seeds])
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(result, indent=1))
    (out / "seeds.md").write_text(report(result))
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def report(result: dict[str, Any]) -> str:
    seeds = result["seeds"]
    lines = [f"# {result['recipe']} over seeds {', '.join(map(str, seeds))}", ""]
    if result["compare"]:
        lines.append("variant = base with " + ", ".join(f"`{k}={v}`" for k, v in result["compare"].items())
                     + "; both arms use the same seeds (initial weights and data order).")
        lines.append("")
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
    p = result.get("paired")
    if p:
        ci = "n/a" if p["ci95_t"] is None else f"[{_pct(p['ci95_t'][0])}, {_pct(p['ci95_t'][1])}]"
        lines += ["", f"**Paired (variant − base):** mean {_pct(p['mean_diff'])} points, 95% t-interval over seeds {ci}; "
                  f"variant better on {p['variant_wins']} of {p['n_seeds']} seeds; exact sign-flip p = "
                  f"{'n/a' if p['sign_flip_p'] is None else round(p['sign_flip_p'], 4)}."]
    return "\n".join(lines) + "\n"
