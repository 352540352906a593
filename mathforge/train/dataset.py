"""Training data for the loop: examples from a synthetic task or a file, rendered and checked.

Everything that can be wrong with the data is found here, before a model is built: a missing or
empty file, a record without a question or response (named by file and line), a held-out set
that overlaps training, an example longer than the context. Training files are JSONL with
`question`/`prompt`/`instruction`/`query` and `response`/`output`/`target`/`solution` (the
one-element-list shape `{"source": [q], "target": [r]}` of the MFT release is accepted, methods.md
§a.5), optional `answer`, `weight`, `difficulty` (or `difficulty_level` / `err_rate`) and
`source`; or `.txt` lines `question||cot #### answer` (data.md §3).
"""

from __future__ import annotations

import importlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathforge.data.records import Example

QUESTION_KEYS = ("question", "prompt", "instruction", "query", "source")
RESPONSE_KEYS = ("response", "output", "target", "solution")


@dataclass
class TrainData:
    tokenizer: Any
    train_examples: list[Example]
    train: list[Any]  # list[Rendered]
    eval_examples: list[Example]
    eval: list[Any]  # list[Rendered]


def _first(rec: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in rec and rec[key] is not None:
            value = rec[key]
            return value[0] if isinstance(value, list) and len(value) == 1 else value
    return None


def _answer_of(response: str) -> str:
    from mathforge.grading import extract_answer

    return extract_answer(response) or ""


def _jsonl_example(rec: Any, where: str, template: str, keys: tuple[str, str] = ("", "")) -> Example:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    qkeys = (keys[0],) if keys[0] else QUESTION_KEYS
    rkeys = (keys[1],) if keys[1] else RESPONSE_KEYS
    question, response = _first(rec, qkeys), _first(rec, rkeys)
    if not isinstance(question, str) or not isinstance(response, str):
        raise ValueError(f"{where}: needs string fields {'/'.join(qkeys)} (question) and "
                         f"{'/'.join(rkeys)} (response)")
    difficulty = next((rec[k] for k in ("difficulty", "difficulty_level", "err_rate") if rec.get(k) is not None), None)
    weight = rec.get("weight", 1.0)
    for name, value in (("weight", weight), ("difficulty", difficulty)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
    meta = {"source": rec["source"]} if isinstance(rec.get("source"), str) else {}
    has_answer = rec.get("answer") is not None and "answer" not in rkeys  # GSM8K's `answer` is the solution
    return Example(prompt=template.format(question=question), response=response,
                   answer=str(rec["answer"]) if has_answer else _answer_of(response), weight=float(weight),
                   difficulty=None if difficulty is None else float(difficulty), meta=meta)


def read_examples(path: str | Path, template: str = "{question}\n", keys: tuple[str, str] = ("", "")) -> list[Example]:
    """Training examples from a JSONL file (prompt = `template` filled with the question) or a
    `q||cot #### a` text file (the implicit-CoT layout of `mathforge.data.tasks`: prompt `q||`);
    errors name file and line."""
    from mathforge.data.tasks import load_icot_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path}: no such file")
    if path.suffix == ".txt":
        out = load_icot_file(path)
        for ex in out:  # errors about an example name its file and line, as for JSONL
            ex.meta["id"] = f"{path}:{ex.meta['line']}"
    else:
        out = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON: {exc.msg}") from None
            ex = _jsonl_example(rec, where, template, keys)
            ex.meta["id"] = where
            out.append(ex)
    if not out:
        raise ValueError(f"data file {path}: empty dataset (no records)")
    return out


def task_examples(task: str, n: int, seed: int, args: dict[str, Any]) -> list[Example]:
    """`n` examples from the synthetic generator registered as `task` in `mathforge.data.tasks`."""
    from mathforge.data.tasks import TASKS

    module = importlib.import_module(f"mathforge.data.tasks.{TASKS[task].split(':')[0]}")
    try:
        return list(module.generate(n, seed=seed, **args))
    except TypeError as exc:
        raise ValueError(f"data.task_args for task {task!r}: {exc}") from None


def load_examples(cfg: Any) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples; held-out prompts never appear in training."""
    dc = cfg.data
    if dc.task == "file":
        train = read_examples(dc.train_file, dc.prompt_template, (dc.question_key, dc.response_key))
        if dc.eval_file:
            held = read_examples(dc.eval_file, dc.prompt_template, (dc.question_key, dc.response_key))[: dc.n_eval]
        else:
            random.Random(cfg.seed).shuffle(train)
            held, train = train[: dc.n_eval], train[dc.n_eval :]
        train = train[: dc.n_train]
    else:
        pool = task_examples(dc.task, dc.n_train + dc.n_eval, cfg.seed, dc.task_args)
        held, train = pool[: dc.n_eval], pool[dc.n_eval :]
        if dc.eval_file:
            held = read_examples(dc.eval_file, dc.prompt_template, (dc.question_key, dc.response_key))[: dc.n_eval]
    seen = {ex.prompt for ex in held}
    train = [ex for ex in train if ex.prompt not in seen]
    if not train:
        where = dc.train_file or f"task {dc.task!r}"
        raise ValueError(f"{where}: empty training set after holding out {len(held)} examples")
    return train, held


def _render_checked(examples: list[Example], tokenizer: Any, seq_len: int, where: str) -> list[Any]:
    from mathforge.data.render import render

    out, cache = [], {}  # upsampling repeats the same Example object: render it once
    for i, ex in enumerate(examples):
        if id(ex) in cache:
            out.append(cache[id(ex)])
            continue
        try:
            out.append(cache.setdefault(id(ex), render(ex, tokenizer, max_len=seq_len, index=i)))
        except ValueError as exc:
            origin = ex.meta.get("id", f"{where} #{i}")
            raise ValueError(f"{origin}: {exc} (raise data.seq_len or shorten the example)") from None
    return out


def prepare_data(cfg: Any, tokenizer: Any = None) -> TrainData:
    """Load, expand (objective hook), tokenise and render; `tokenizer` None builds one from the data."""
    from mathforge.data.tokenizer import build_tokenizer
    from mathforge.train.objectives import get_objective

    train, held = load_examples(cfg)
    objective = get_objective(cfg.objective)
    if hasattr(objective, "expand"):
        train = objective.expand(train, cfg)
        if not train:
            raise ValueError(f"objective {cfg.objective!r} left an empty training set (all counts/weights 0)")
    if tokenizer is None:
        texts = [t for ex in train + held for t in (ex.prompt, ex.response)]
        tokenizer = build_tokenizer(texts, kind=cfg.data.tokenizer, vocab_size=cfg.data.vocab_size)
    where = cfg.data.train_file or f"task {cfg.data.task}"
    rendered = _render_checked(train, tokenizer, cfg.data.seq_len, where)
    held_rendered = _render_checked(held, tokenizer, cfg.data.seq_len, cfg.data.eval_file or where + " (held out)")
    return TrainData(tokenizer, train, rendered, held, held_rendered)
