"""Training data for the loop: examples from a synthetic task or a file, rendered and checked.

Everything that can be wrong with the data is found here, before a model is built: a missing or
empty file, a record without a question or response (named by file and line), a held-out set
that overlaps training, an example longer than the context (an error, or cut or left out by `data.overlong`, and
counted). Training files are JSONL with
`question`/`prompt`/`instruction`/`query` and `response`/`output`/`target`/`solution` (the
one-element-list shape `{"source": [q], "target": [r]}` of the MFT release is accepted, docs/methods/README.md
§a.5), optional `answer`, `weight`, `difficulty` (or `difficulty_level` / `err_rate`) and
`source`; or `.txt` lines `question||cot #### answer` (docs/data.md §3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
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
    # examples longer than data.seq_len: {"train"|"held_out": {"truncated": n, "dropped": n}}
    overlong: dict[str, dict[str, int]] = field(default_factory=dict)


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
        from mathforge.data.files import iter_jsonl

        out = []
        # Lines end at "\n" only: str.splitlines() would also cut at U+2028 inside a JSON string
        # (GSM8K train has some), which json.dumps(ensure_ascii=False) writes unescaped.
        for lineno, rec in iter_jsonl(path):
            where = f"{path}:{lineno}"
            ex = _jsonl_example(rec, where, template, keys)
            ex.meta["id"] = where
            out.append(ex)
    if not out:
        raise ValueError(f"data file {path}: empty dataset (no records)")
    return out


def task_examples(task: str, n: int, seed: int, args: dict[str, Any]) -> list[Example]:
    """`n` examples from the synthetic generator registered as `task` in `mathforge.data.tasks`."""
    from mathforge.data.tasks import generate_task

    try:
        return generate_task(task, n, seed=seed, args=args)
    except ValueError as exc:
        raise ValueError(f"data.task / data.task_args: {exc}") from None


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
    n_before = len(train)
    train = [ex for ex in train if ex.prompt not in seen]
    if not train:
        where = dc.train_file or f"task {dc.task!r}"
        why = (f": all {n_before} training prompts are also held-out prompts (held-out prompts are removed from "
               "training; is data.eval_file the training file?)" if n_before else "")
        raise ValueError(f"{where}: empty training set after holding out {len(held)} examples{why}")
    return train, held


def _render_checked(examples: list[Example], tokenizer: Any, seq_len: int, where: str,
                    overlong: str = "error") -> tuple[list[Example], list[Any], dict[str, int]]:
    """Render every example; one longer than `seq_len` is an error naming it (`overlong="error"`),
    cut on the right (`"truncate"`; an example whose prompt alone fills the window keeps no
    trained token and is dropped instead) or left out (`"drop"`). Returns the kept examples, their
    renderings (aligned) and the counts {"truncated": .., "dropped": ..}."""
    from mathforge.data.render import render

    kept, out, cache = [], [], {}  # upsampling repeats the same Example object: render it once
    counts = {"truncated": 0, "dropped": 0}
    for i, ex in enumerate(examples):
        if id(ex) not in cache:
            try:
                cache[id(ex)] = (render(ex, tokenizer, max_len=seq_len, index=i), False)
            except ValueError as exc:
                if overlong == "error":
                    origin = ex.meta.get("id", f"{where} #{i}")
                    raise ValueError(f"{origin}: {exc} (raise data.seq_len, shorten the example, or set "
                                     "data.overlong to 'truncate' or 'drop')") from None
                cut = render(ex, tokenizer, max_len=seq_len, overlong="truncate", index=i)
                cache[id(ex)] = (cut if overlong == "truncate" and cut.prompt_len < len(cut) else None, True)
        rendered, was_cut = cache[id(ex)]
        if rendered is None:
            counts["dropped"] += 1
            continue
        counts["truncated"] += was_cut
        kept.append(ex)
        out.append(rendered)
    return kept, out, counts


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
    overlong, seq_len = cfg.data.overlong, cfg.data.seq_len
    train, rendered, n_train = _render_checked(train, tokenizer, seq_len, where, overlong)
    held, held_rendered, n_held = _render_checked(held, tokenizer, seq_len, cfg.data.eval_file or where + " (held out)",
                                                  overlong)
    if not rendered:
        raise ValueError(f"{where}: every training example is longer than data.seq_len={seq_len} "
                         f"(data.overlong={overlong!r} dropped all {n_train['dropped']})")
    overlong_counts = {"train": n_train, "held_out": n_held}
    return TrainData(tokenizer, train, rendered, held, held_rendered, overlong_counts)
