"""Shipped benchmarks: `load_benchmark(name, split)` -> `list[Problem]` (docs/methods/evaluation.md §g.6, docs/data.md).

Every benchmark bundled under `data/` is one registry entry: a file per split and an adapter
(`mathforge.data.adapters`) that builds the question text and the gold answer the way the
math-evaluation-harness lineage does. The data root is the repository's `data/` folder, or the
folder named by the environment variable `MATHFORGE_DATA`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mathforge.data import adapters as ad
from mathforge.data.records import Problem

YES_NO_SUFFIXES = {"true": " (True or False)", "false": " (True or False)",
                   "yes": " (Yes or No)", "no": " (Yes or No)"}


@dataclass(frozen=True)
class Benchmark:
    """A shipped benchmark: split -> file under the data root, and its record adapter."""

    name: str
    files: dict[str, str]
    adapter: Callable[..., Problem]
    kind: str = "jsonl"  # "jsonl" (one JSON object a line) or "lines" (`q||cot #### a` text)
    count: dict[str, int] | None = None  # records per split, as docs/data.md states them
    gold_field: str | None = None  # the raw gold field, kept as meta["gold_raw"] (§g.1)


def _jsonl(path: str, count: int, adapter: Callable[..., Problem], gold: str | None = "answer") -> Benchmark:
    return Benchmark(path.split("/")[0], {"test": f"benchmarks/{path}"}, adapter, count={"test": count},
                     gold_field=gold)


def _registry() -> dict[str, Benchmark]:
    mawps_meta = ("type", "idx")
    entries = [
        Benchmark("gsm8k", {"test": "benchmarks/gsm8k/test.jsonl", "train": "benchmarks/gsm8k/train.jsonl"},
                  ad.gsm8k, count={"test": 1319, "train": 7473}, gold_field=None),
        _jsonl("math/test.jsonl", 5000, ad.math_full, None),
        _jsonl("math500/test.jsonl", 500, ad.math500),
        _jsonl("minerva_math/test.jsonl", 272, ad.minerva_math, None),
        _jsonl("svamp/test.jsonl", 1000, ad.svamp, "Answer"),
        _jsonl("asdiv/test.jsonl", 2215, ad.asdiv),
        _jsonl("mawps/test.jsonl", 2065, ad.numeric_target("input", "target", mawps_meta), "target"),
        _jsonl("gsm_hard/test.jsonl", 1319, ad.numeric_target("input", "target"), "target"),
        _jsonl("carp_en/test.jsonl", 976, ad.carp_en),
        _jsonl("aqua/test.jsonl", 254, ad.aqua, "correct"),
        _jsonl("sat_math/test.jsonl", 32, ad.sat_math, "Answer"),
        _jsonl("mmlu_stem/test.jsonl", 3018, ad.mmlu_stem),
        _jsonl("mathqa/test.jsonl", 1000, ad.mathqa, "correct"),
        _jsonl("aime24/test.jsonl", 30, ad.aime24),
        _jsonl("amc23/test.jsonl", 40, ad.numeric_target("problem", "answer", ("id", "url"))),
        _jsonl("college_math/test.jsonl", 2818, ad.college_math),
        _jsonl("gaokao2023en/test.jsonl", 385, ad.gaokao2023en),
        _jsonl("olympiadbench/test.jsonl", 675, ad.olympiadbench, "final_answer"),
    ]
    for sub, n in (("addsub", 395), ("multiarith", 600), ("singleeq", 508), ("singleop", 562)):
        entries.append(Benchmark(f"mawps/{sub}", {"test": f"benchmarks/mawps/{sub}.jsonl"},
                                 ad.numeric_target("input", "target"), count={"test": n},
                                 gold_field="target"))
    for d in (4, 5, 7, 9):
        entries.append(Benchmark(f"multiplication-{d}x{d}",
                                 {s: f"multiplication/{d}x{d}/{s}.txt" for s in ("test", "valid")},
                                 ad.icot_line, kind="lines", count={"test": 1000, "valid": 1000}))
    entries.append(Benchmark("gsm8k-icot", {"test": "gsm8k_icot/test.txt", "valid": "gsm8k_icot/valid.txt",
                                            "train": "gsm8k_icot/train_no_aug.txt"},
                             ad.icot_line, kind="lines", count={"test": 1319, "valid": 500, "train": 6973}))
    return {b.name: b for b in entries}


BENCHMARKS: dict[str, Benchmark] = _registry()


def data_root() -> Path:
    """The `data/` folder: `$MATHFORGE_DATA` if set, else the one beside the package."""
    env = os.environ.get("MATHFORGE_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
    if not root.is_dir():
        where = "MATHFORGE_DATA" if env else "the repository"
        raise FileNotFoundError(f"data folder {root} (from {where}) does not exist; set MATHFORGE_DATA")
    return root


def list_benchmarks() -> list[str]:
    """Names accepted by `load_benchmark`, sorted."""
    return sorted(BENCHMARKS)


def benchmark_splits(name: str) -> list[str]:
    return list(_get(name).files)


def benchmark_file(name: str, split: str = "test") -> Path:
    """The shipped file behind (name, split), for hashing into reports."""
    bench = _get(name)
    if split not in bench.files:
        raise ValueError(f"benchmark {name!r} has no split {split!r}; splits: {', '.join(bench.files)}")
    return data_root() / bench.files[split]


def _get(name: str) -> Benchmark:
    key = name.strip().lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}")
    return BENCHMARKS[key]


def _records(path: Path, kind: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed record) for each non-empty line; a bad line names file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if kind == "lines":
                yield lineno, line.rstrip("\n")
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from exc
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec


def load_benchmark(name: str, split: str = "test", *, limit: int | None = None, **options: Any) -> list[Problem]:
    """Load a shipped benchmark as `Problem`s, in file order (`Problem.id` = 0-based record index).

    `options` are dataset-specific switches of §g.6, e.g. `asdiv_unit_rule="harness"` or
    `aqua_newline=True`; one the dataset does not take is an error, not silently ignored.
    """
    check_limit(limit)
    bench = _get(name)
    path = benchmark_file(bench.name, split)
    adapter = _bind_options(bench, options)
    problems: list[Problem] = []
    for lineno, rec in _records(path, bench.kind):
        if limit is not None and len(problems) >= limit:
            break
        try:
            problem = adapter(rec, len(problems))
        except ad.RecordError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from exc
        problem.dataset = bench.name
        problem.meta.setdefault("gold_raw", _gold_raw(bench, rec, problem))
        if bench.kind == "jsonl":
            _append_yes_no(problem)
        problems.append(problem)
    return problems


def check_limit(limit: int | None) -> None:
    """`limit` is None (everything) or a positive int: 0 or -5 would silently load nothing."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def _bind_options(bench: Benchmark, options: dict[str, Any]) -> Callable[..., Problem]:
    if not options:
        return bench.adapter
    accepted = set(inspect.signature(bench.adapter).parameters) - {"rec", "idx", "line"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) or "none"
        raise ValueError(f"benchmark {bench.name!r} takes no option {', '.join(unknown)} (options: {takes})")
    return partial(bench.adapter, **options)


def _gold_raw(bench: Benchmark, rec: Any, problem: Problem) -> str:
    """The gold as the file stores it, before the dataset rule (the per-sample record's `gold_raw`)."""
    if bench.gold_field and isinstance(rec, dict) and bench.gold_field in rec:
        value = rec[bench.gold_field]
        return str(value[0] if isinstance(value, list) and len(value) == 1 else value)
    return problem.answer


def _append_yes_no(problem: Problem) -> None:
    """The harness appends ` (Yes or No)` / ` (True or False)` when the gold is of that kind ([orig])."""
    suffix = YES_NO_SUFFIXES.get(problem.answer.strip().lower())
    if suffix and suffix.strip() not in problem.question:
        problem.question = problem.question.rstrip() + suffix
