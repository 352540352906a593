"""The TSMC experiment end to end (Feng et al. 2025; docs/methods/tsmc.md §e): generator SFT -> K graded samples
per training problem -> value model by CTL and by BCE -> every strategy at N in {4, 8, 16, 32} on
held-out problems -> report (accuracy with CIs against N and against generated tokens, the value
models' AUC, TSMC's particle genealogy of one problem).

Each stage is resumable and skipped when its output exists (recipes in `recipes/tsmc-*.toml`), so the
command can be re-run after a kill. Evaluation runs each strategy once at the largest N and reads the
smaller budgets off random subsets (§e.9; whole groups for TSMC): majority vote, best-of-N and
weighted vote come from one run that scored every sample with the value model (`wvote`), so all three
see the same samples; TSMC runs once per value model.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ExperimentConfig:
    out: str = "runs/tsmc"
    recipes: str = "recipes"
    value_problems: int = 1000
    k: int = 16
    eval_problems: int = 500
    n_max: int = 32
    budgets: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    m: int = 4
    stop_steps: int = 5
    max_new_tokens: int = 96
    trials: int = 50
    threads: int = 1
    beam_n: int = 0  # also run step-level beam search at this N (0: skip)

    def __post_init__(self) -> None:
        if self.n_max % self.m or any(n % self.m or n > self.n_max for n in self.budgets):
            raise ValueError(f"budgets {self.budgets} must be multiples of m={self.m} up to n_max={self.n_max}")


def run_experiment(cfg: ExperimentConfig, *, progress: bool = True) -> Path:
    import torch

    from mathforge.search_eval import SearchEvalConfig, evaluate_search, rescore
    from mathforge.train.config import load_recipe
    from mathforge.train.loop import train
    from mathforge.value_data import ValueDataConfig, make_value_data

    if cfg.threads:  # set here too: skipped (finished) training stages would not set it
        torch.set_num_threads(cfg.threads)
    out, times = Path(cfg.out), {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment_config.json").write_text(json.dumps(asdict(cfg), indent=1))

    def stage(name, fn):
        t0 = time.perf_counter()
        result = fn()
        times[name] = round(time.perf_counter() - t0, 1)
        (out / "stage_times.json").write_text(json.dumps(times, indent=1))
        return result

    rec = Path(cfg.recipes)
    gen_cfg = load_recipe(rec / "tsmc-generator.toml", {"out_dir": str(out / "generator"), "threads": cfg.threads})
    gen = stage("generator_sft", lambda: train(gen_cfg))
    gen_task = gen_cfg.data.task_args
    vdata = out / "value_data.jsonl"
    stage("value_data", lambda: make_value_data(ValueDataConfig(
        model=str(gen), out=str(vdata), task_args=gen_task, n_problems=cfg.value_problems, k=cfg.k,
        max_new_tokens=cfg.max_new_tokens), progress=progress))
    values = {}
    for obj in ("ctl", "bce"):
        vcfg = load_recipe(rec / f"tsmc-value-{obj}.toml", {"out_dir": str(out / f"value_{obj}"), "threads": cfg.threads,
                                                             "model.init": str(gen), "value.data_file": str(vdata)})
        values[obj] = stage(f"value_{obj}", lambda c=vcfg: train(c))
    common = dict(model=str(gen), task="arith_steps", task_args=gen_task, task_seed=2, limit=cfg.eval_problems,
                  m=cfg.m, stop_steps=cfg.stop_steps, max_new_tokens=cfg.max_new_tokens, threads=cfg.threads)
    runs = {}
    for obj, vpath in values.items():
        for strategy in ("wvote", "tsmc"):
            ecfg = SearchEvalConfig(out_dir=str(out / "eval" / f"{strategy}-{obj}"), strategy=strategy,
                                    value_model=str(vpath), n=cfg.n_max, **common)
            if strategy == "wvote" and obj != "ctl":  # the same samples, scored by this value model
                runs[f"{strategy}-{obj}"] = stage(f"rescore_{obj}", lambda v=vpath, o=obj: rescore(
                    out / "eval" / "wvote-ctl", out / "eval" / f"wvote-{o}", str(v)))
                continue
            runs[f"{strategy}-{obj}"] = stage(f"eval_{strategy}_{obj}", lambda c=ecfg: evaluate_search(c, progress=progress))
        if cfg.beam_n:
            ecfg = SearchEvalConfig(out_dir=str(out / "eval" / f"beam-{obj}"), strategy="beam", value_model=str(vpath),
                                    n=cfg.beam_n, **common)
            runs[f"beam-{obj}"] = stage(f"eval_beam_{obj}", lambda c=ecfg: evaluate_search(c, progress=progress))
    from mathforge.tsmc_report import write_report

    stage("report", lambda: write_report(out, cfg))
    return out / "report.md"


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
