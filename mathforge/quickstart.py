"""Quickstart: the whole system on a toy task, on a CPU: SFT against Masked Thought fine-tuning
(Chen et al. 2024), then what sampling, a value model and TSMC (Feng et al. 2025) add on the same
held-out problems.

The README's main job. Generates step-by-step arithmetic (`arith_steps`: chains of 2-4 additions and
subtractions of 1-digit numbers, one operation per step, steps separated by blank lines; the layout
TSMC's step-wise search needs), trains the same tiny Llama twice from the same initial weights on the
same data order and step budget, once with plain SFT and once with MFT (docs/methods/mft.md §a:
response tokens of the input replaced by `<mask>` with the linear warm-up ratio schedule), and
greedy-decodes held-out problems graded by `mathforge.grading`. Then `mathforge.quickstart_search`
samples the SFT model N times per held-out problem, trains a value model on graded samples of other
problems, and compares majority vote, best-of-N, weighted vote and TSMC at equal N. Writes into the
out dir: `report.md`, `accuracy.png` (accuracy with 95% Wilson intervals), `loss_curves.png`,
`summary.json`, each training run's folder (`sft/`, `mft/`: metrics, TensorBoard, checkpoints, model)
and `search/` (value data, value model, every sample with its grade and value).
On 2+ cores the work runs in two single-threaded processes (about 4 minutes on 2 idle cores;
README: measured times); re-running resumes from what is already there.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

# The tuned default: what a ~1M-parameter model learns in the quickstart's budget on 2 idle cores.
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "threads": 0,
    "log_every": 10,
    "checkpoint_every": 200,
    "data": {"task": "arith_steps", "task_args": {"digits": 1, "operators": "+-", "n_ops": [2, 4]}, "n_train": 20_000,
             "n_eval": 300, "seq_len": 256},
    "model": {"preset": "nano"},
    "optim": {"lr": 3e-3, "micro_batch_size": 4, "grad_accum": 1, "max_steps": 1200, "warmup_ratio": 0.05,
              "schedule": "cosine", "min_lr_ratio": 0.05},
    "mft": {"p_max": 0.2, "noise": "mask"},
    "eval": {"n_problems": 300, "max_new_tokens": 80, "every": 600},
}


def run_configs(out_dir: Path, *, steps: int | None = None, seed: int = 0, resume: bool = True,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The two RunConfigs (sft, mft): identical except for the objective. `overrides` maps dotted
    keys (`"data.n_train"`) to values, applied to both."""
    import copy

    from mathforge.train.config import config_from_dict

    configs = {}
    for objective in ("sft", "mft"):
        table = copy.deepcopy(DEFAULTS)
        table.update(objective=objective, seed=seed, resume=resume, out_dir=str(Path(out_dir) / objective))
        if steps is not None:
            table["optim"]["max_steps"] = steps
            table["eval"]["every"] = max(0, steps // 3)
            table["checkpoint_every"] = max(1, steps // 6)
        for dotted, value in (overrides or {}).items():
            node = table
            *parents, last = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        configs[objective] = config_from_dict(table, source="quickstart")
    return configs


def quickstart(out_dir: str | Path = "runs/quickstart", *, steps: int | None = None, seed: int = 0,
               resume: bool = True, overrides: dict[str, Any] | None = None,
               search: dict[str, Any] | None = None) -> Path:
    """Train SFT and MFT, evaluate both, run the search half on the SFT model, write the report;
    returns the path of report.md. `search` replaces `quickstart_search.SEARCH_DEFAULTS`."""
    from mathforge.quickstart_report import plot_accuracy, write_report
    from mathforge.quickstart_search import run_search
    from mathforge.train.logging import final_eval, plot_loss_curves

    t_start, c_start = time.perf_counter(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = run_configs(out_dir, steps=steps, seed=seed, resume=resume, overrides=overrides)
    parallel = (os.cpu_count() or 1) >= 2 and not (overrides or {}).get("threads")
    if parallel:
        # One single-threaded process per model on 2+ cores: tiny matmuls gain little from intra-op
        # threads, and two processes keep both cores busy without thread-barrier stalls.
        for name, cfg in configs.items():
            cfg.threads, cfg.progress = 1, cfg.progress and name == "sft"
        with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_timed_train, cfg) for name, cfg in configs.items()}
            done = {name: f.result() for name, f in futures.items()}
    else:
        done = {name: _timed_train(cfg) for name, cfg in configs.items()}
    seconds = {name: secs for name, (_, secs, _) in done.items()}
    cpu = {name: c for name, (_, _, c) in done.items()}
    previous = out_dir / "summary.json"
    old = json.loads(previous.read_text()) if previous.is_file() else {}
    if old:  # a finished run was reused (no training): keep the time it took then
        seconds = {n: old.get("seconds", {}).get(n, s) if s < 5.0 else s for n, s in seconds.items()}
    results = {name: final_eval(Path(cfg.out_dir) / "metrics.jsonl") for name, cfg in configs.items()}
    n_params = _count_params(done["sft"][0])
    search_summary = run_search(configs["sft"], done["sft"][0], out_dir / "search", parallel=parallel,
                                opts=search)
    plot_accuracy(results, search_summary, out_dir / "accuracy.png")
    plot_loss_curves({n: Path(c.out_dir) / "metrics.jsonl" for n, c in configs.items()}, out_dir / "loss_curves.png",
                     title="SFT vs MFT: training (solid) and held-out (dashed) loss")
    from mathforge.train_report import write_train_report

    write_train_report([c.out_dir for c in configs.values()], out_dir=out_dir / "training",
                       title="mathforge quickstart: SFT and MFT training runs")
    main_cpu = time.process_time() - c_start  # all the work when it ran in this process only
    timing = {"wall_s": time.perf_counter() - t_start,
              "idle_estimate_s": idle_estimate(cpu, search_summary["seconds"], main_cpu) if parallel else main_cpu}
    if old and timing["wall_s"] < 30.0:  # everything was reused: keep the first run's times
        timing = old.get("timing", timing)
    (out_dir / "summary.json").write_text(json.dumps({"results": results, "seconds": seconds, "cpu_seconds": cpu,
                                                      "timing": timing, "search": search_summary}, indent=1))
    return write_report(out_dir, results, configs, seconds, n_params, search_summary, timing)


def idle_estimate(train_cpu: dict[str, float], search: dict[str, float], main_cpu: float) -> float:
    """Wall seconds the run would take on 2 idle cores, from the CPU seconds each process used: the
    two processes of a round run side by side, so each round costs its busier process's CPU time;
    plus this process's own work (reports, plots) and 5 s per round to start the workers."""
    rounds = [max(train_cpu.values()),
              max(search.get("cpu_value_data", 0.0) + search.get("cpu_value_train", 0.0), search.get("cpu_sample", 0.0)),
              max(search.get("cpu_tsmc", 0.0), search.get("cpu_value_scores", 0.0))]
    return sum(rounds) + main_cpu + 5.0 * len(rounds)


def _timed_train(cfg: Any) -> tuple[Path, float, float]:
    """(model folder, wall seconds, CPU seconds of this process)."""
    from mathforge.train.loop import train

    start, cpu = time.perf_counter(), time.process_time()
    folder = train(cfg)
    return folder, time.perf_counter() - start, time.process_time() - cpu


def _count_params(folder: Path) -> int:
    """Parameters stored in the saved model (tied embeddings stored once)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            n = 1
            for dim in f.get_slice(key).get_shape():
                n *= dim
            total += n
    return total
