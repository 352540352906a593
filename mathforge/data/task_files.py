"""A synthetic task written out as fixed JSONL files: a training pool and a held-out set.

Methods that annotate a *fixed* training set before training (sample-difficulty-adaptive SFT, SDAT
project report 2024, docs/methods/sdat.md §b.2: every pool example gets its base-model pass rate)
need the task's problems as a file, not as a stream regenerated per run. `write_task_files` draws
`n_train + n_eval` examples of a task registered in `mathforge.data.tasks` with one seed, writes the
first `n_eval` as `heldout.jsonl` and the rest, less any whose prompt is also held out, as
`train.jsonl`. Each record holds `question` (the prompt without its final newline, so the loop's
default `data.prompt_template = "{question}\\n"` restores the prompt exactly), `response`, `answer`,
`source` (the task name) and the task's own knobs from `Example.meta` (for arithmetic: `n_ops`,
`digits`). The task's own `Example.difficulty` is *not* written: the loop would read it as the SDAT
difficulty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def task_records(task: str, n: int, seed: int, args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`n` examples of `task` as JSONL-ready records (layout in the module docstring)."""
    from mathforge.data.tasks import generate_task

    out = []
    for i, ex in enumerate(generate_task(task, n, seed=seed, args=args)):
        if not ex.prompt.endswith("\n"):
            raise ValueError(f"task {task!r}: example {i}'s prompt {ex.prompt!r} does not end with a newline; "
                             "it cannot be written as a question for the template '{question}\\n'")
        knobs = {k: v for k, v in (ex.meta or {}).items() if isinstance(v, int | float | str) and k != "line"}
        out.append({"question": ex.prompt[:-1], "response": ex.response, "answer": ex.answer, "source": task,
                    **knobs})
    return out


def write_task_files(out_dir: str | Path, task: str, *, n_train: int, n_eval: int, seed: int = 0,
                     args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `train.jsonl` and `heldout.jsonl` under `out_dir`; returns their paths and counts."""
    if n_train < 1 or n_eval < 0:
        raise ValueError(f"task files: n_train must be >= 1 and n_eval >= 0, got {n_train} and {n_eval}")
    records = task_records(task, n_train + n_eval, seed, args)
    held, pool = records[:n_eval], records[n_eval:]
    seen = {r["question"] for r in held}
    train = [r for r in pool if r["question"] not in seen]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", held)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info = {"task": task, "args": args or {}, "seed": seed, "train": str(out / "train.jsonl"), "n_train": len(train),
            "heldout": str(out / "heldout.jsonl"), "n_eval": len(held), "dropped_as_held_out": len(pool) - len(train)}
    (out / "task_files.json").write_text(json.dumps(info, indent=1))
    return info
