"""What `mathforge eval` can evaluate on, and where its few-shot exemplars come from.

A source is one of
- a shipped benchmark name (`gsm8k`, `math500`, ...: `mathforge.data.benchmarks`);
- a user file, JSONL (one object a line) or JSON (one list), read with a field mapping
  (`FileFields`: question, answer, optional id and answer rule; `mathforge.data.files.load_file`);
- `task:NAME`, a synthetic task generator of `mathforge.data.tasks` (`task:arithmetic`), drawn with
  a seed and the task's arguments. A training run holds out the first `n_eval` problems its
  generator draws with the run's seed, so `--task-seed SEED --limit n_eval` with the run's task
  arguments evaluates exactly its held-out problems (500 are drawn when no limit is given). The
  question is the example's prompt as the model was trained on it (use `--style raw`).

Few-shot exemplars (`shots_from`): by default the prompt style's own demos (the docs/methods/evaluation.md §g.2 families);
`train` takes problems of the benchmark's train split (by index: `shot_ids`, default the first
`shots`), and a file path takes them from a file the user brings (fields `question`, `solution`,
`answer`), so a
published few-shot protocol can be reproduced exemplar for exemplar.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathforge.data.records import Problem

TASK_PREFIX = "task:"


@dataclass(frozen=True)
class FileFields:
    """Where a user file's problem fields are (dotted paths); `answer_rule` reads the gold
    (`raw`, `number`, `gsm8k`, `boxed`, `choice`)."""

    question: str = "question"
    answer: str = "answer"
    id: str | None = None
    answer_rule: str | None = None


def is_file_source(spec: str) -> bool:
    return Path(spec).suffix.lower() in (".jsonl", ".json") or Path(spec).is_file()


def source_label(spec: str) -> str:
    """The dataset name records and reports use: the benchmark, the file's stem, or the task."""
    if spec.startswith(TASK_PREFIX):
        return spec
    return Path(spec).stem if is_file_source(spec) else spec


def load_source(spec: str, split: str = "test", *, limit: int | None = None, fields: FileFields = FileFields(),
                task_seed: int = 0, task_args: dict[str, Any] | None = None) -> list[Problem]:
    """The problems of one source (see the module docstring); every Problem's `dataset` is its label."""
    label = source_label(spec)
    if spec.startswith(TASK_PREFIX):
        problems = task_problems(spec[len(TASK_PREFIX):], limit if limit is not None else 500, seed=task_seed,
                                 args=task_args or {})
    elif is_file_source(spec):
        from mathforge.data.files import load_file

        problems = load_file(spec, question=fields.question, answer=fields.answer, id=fields.id,
                             answer_rule=fields.answer_rule, dataset=label, limit=limit)
        if not problems:
            raise ValueError(f"{spec}: no problems in this file")
    else:
        from mathforge.data.benchmarks import load_benchmark

        problems = load_benchmark(spec, split, limit=limit)
    for p in problems:
        p.dataset = label
    return problems


def task_problems(name: str, n: int, *, seed: int, args: dict[str, Any]) -> list[Problem]:
    """`n` problems of a synthetic task: the generator's prompt as the question, its answer as the gold."""
    from mathforge.data.tasks import generate_task

    examples = generate_task(name, n, seed=seed, args=args)
    return [Problem(id=str(i), question=ex.prompt, answer=ex.answer, solution=ex.response,
                    meta={"gold_raw": ex.answer, **{k: v for k, v in ex.meta.items() if k in ("level", "type")}},
                    dataset=TASK_PREFIX + name)
            for i, ex in enumerate(examples)]


def source_hash(spec: str, split: str, problems: list[Problem], *, task_seed: int = 0,
                task_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a manifest records about a source's data: its file and sha256 (or the task's draw), and a
    hash of the loaded (id, question, gold) triples."""
    from mathforge.data.files import sha256_file

    content = hashlib.sha256(json.dumps([[p.id, p.question, p.answer] for p in problems]).encode()).hexdigest()
    out: dict[str, Any] = {"problems": len(problems), "problems_sha256": content}
    if spec.startswith(TASK_PREFIX):
        return {"task": spec[len(TASK_PREFIX):], "seed": task_seed, "args": task_args or {}, **out}
    if is_file_source(spec):
        return {"file": str(Path(spec).resolve()), "sha256": sha256_file(spec), **out}
    from mathforge.data.benchmarks import benchmark_file, data_root

    path = benchmark_file(spec, split)
    try:
        rel = str(path.relative_to(data_root()))
    except ValueError:
        rel = str(path)
    return {"file": rel, "sha256": sha256_file(path), **out}


def load_demos(shots_from: str, benchmark: str, shots: int, shot_ids: list[int] | None = None) -> list:
    """`shots` exemplars as prompt `Demo`s: from `benchmark`'s train split (`shots_from="train"`) or a
    file (question, solution, answer fields), picked by `shot_ids` (default: the first `shots`)."""
    from mathforge.data.prompts import Demo

    if shots_from == "train":
        if is_file_source(benchmark) or benchmark.startswith(TASK_PREFIX):
            raise ValueError(f"--shots-from train needs a shipped benchmark with a train split, not {benchmark!r}")
        from mathforge.data.benchmarks import benchmark_splits, load_benchmark

        if "train" not in benchmark_splits(benchmark):
            raise ValueError(f"benchmark {benchmark!r} has no train split (it has {benchmark_splits(benchmark)})")
        pool = load_benchmark(benchmark, "train")
        where = f"{benchmark}[train]"
    else:
        from mathforge.data.files import load_file

        pool = load_file(shots_from, question="question", answer="answer", solution="solution")
        where = shots_from
    ids = list(shot_ids) if shot_ids else list(range(shots))
    if len(ids) != shots:
        raise ValueError(f"--shot-ids names {len(ids)} exemplars but --shots is {shots}")
    bad = [i for i in ids if not 0 <= i < len(pool)]
    if bad:
        raise ValueError(f"{where}: exemplar indices {bad} out of range 0..{len(pool) - 1}")
    demos = []
    for i in ids:
        p = pool[i]
        solution = (p.solution or "").split("####")[0].strip()
        if not solution:
            raise ValueError(f"{where}: exemplar {i} has no solution text")
        demos.append(Demo(question=p.question, solution=solution, answer=p.answer))
    return demos

