"""Run logging: metrics JSONL (one object per line, the source of truth), TensorBoard scalars
(`torch.utils.tensorboard`) and a loss-curve PNG drawn with matplotlib at the end of a run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append metrics to `metrics.jsonl` and TensorBoard on the main process only.

    On resume from step `resume_step`, lines written after that step by the killed run are dropped
    so the file reads as if the run had never stopped.
    """

    def __init__(self, out_dir: Path, *, enabled: bool = True, resume_step: int = 0, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step] if resume_step else []
        with self.path.open("w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"), purge_step=resume_step or None)

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **values}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # a run killed mid-write leaves a torn last line: drop it
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line") from None
    return rows


def final_eval(metrics_path: Path) -> dict[str, Any]:
    """A run's last in-loop evaluation (accuracy, Wilson interval, problems, losses, speed, step)."""
    rows = read_metrics(metrics_path)
    evals = [r for r in rows if "eval_accuracy" in r]
    trains = [r for r in rows if "loss" in r]
    if not evals:
        raise ValueError(f"{metrics_path}: no final evaluation recorded")
    last = evals[-1]
    return {"accuracy": last["eval_accuracy"], "ci95_wilson": last["eval_ci95_wilson"],
            "n_problems": last["eval_n_problems"], "eval_loss": last["eval_loss"], "train_loss": trains[-1]["loss"] if trains else None,
            "tok_per_s": trains[-1].get("tok_per_s") if trains else None, "steps": last["step"]}


def plot_loss_curves(runs: dict[str, Path], png: Path, *, title: str = "training loss") -> Path:
    """Train (solid) and eval (dashed, markers) loss against step for one or more runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (label, path) in enumerate(runs.items()):
        rows = read_metrics(path)
        colour = f"C{i}"
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
        if train:
            ax.plot(*zip(*train, strict=True), color=colour, label=f"{label} train")
        if evals:
            ax.plot(*zip(*evals, strict=True), color=colour, linestyle="--", marker="o", label=f"{label} eval")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (token mean)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png
