"""GSM8K (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems") as training Examples.

- `gsm8k_train`: the 7,473 training problems of `data/benchmarks/gsm8k/train.jsonl`. The response
  is the reference solution with its calculator annotations `<<expr=value>>` removed, ending in
  `#### N`; `Example.answer` is N (commas removed, docs/data.md §2). The prompt is a named prompt style
  of `mathforge.data.prompts` (default `alpaca`, the MFT/SDAT training prompt of docs/methods/mft.md §a.5,
  where training text = prompt + " " + response).
- `gsm8k_icot`: the implicit-CoT files of `data/gsm8k_icot/` (Deng et al. 2023/2024; docs/data.md §3.2)
  in the `question||cot #### answer` format, plus the equation-only training fallback of
  docs/methods/icot.md §f.2: the `train_no_aug` questions with their CoT rebuilt from `train.jsonl` as all
  `<<...>>` annotations joined by single spaces.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from mathforge.data.records import Example
from mathforge.data.tasks import SEP, icot_example, load_icot_file

_CALC = re.compile(r"<<[^>]*>>")
ICOT_SPLITS = {"train": "train_no_aug.txt", "valid": "valid.txt", "test": "test.txt"}


def _data_root() -> Path:
    from mathforge.data.benchmarks import data_root

    return data_root()


def strip_calculator(solution: str) -> str:
    """The solution with every `<<expr=value>>` annotation deleted (the text around is kept)."""
    return _CALC.sub("", solution)


def equations_cot(solution: str) -> str:
    """§f.2 equation-only CoT: all `<<...>>` annotations of the solution, in order, space-joined."""
    return " ".join(_CALC.findall(solution))


def natural_cot(solution: str) -> str:
    """§f.2 natural-language CoT: annotations removed, the lines before `####` joined by spaces."""
    body = strip_calculator(solution).split("####", 1)[0]
    return " ".join(line.strip() for line in body.splitlines() if line.strip())


def _gold(solution: str, where: str) -> str:
    from mathforge.data.adapters import RecordError, after_hashes

    try:
        return after_hashes(solution)
    except RecordError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_train_jsonl(path: str | Path | None = None) -> list[tuple[str, str, str]]:
    """`(id, question, solution)` rows of the GSM8K train file; errors name file and line."""
    path = Path(path) if path is not None else _data_root() / "benchmarks" / "gsm8k" / "train.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no GSM8K train file at {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("question"), str) \
                    or not isinstance(rec.get("answer"), str):
                raise ValueError(f"{path}:{lineno}: needs string fields 'question' and 'answer'")
            rows.append((f"gsm8k-train-{lineno}", rec["question"], rec["answer"]))
    return rows


def _prompt(question: str, style: str) -> str:
    from mathforge.data.prompts import get_style

    ps = get_style(style)
    if ps.needs_eos or ps.kind != "text":
        raise ValueError(f"gsm8k: prompt style {style!r} is not a plain-text CoT style; use e.g. alpaca or cot")
    return ps.wrap(question)


def gsm8k_train(path: str | Path | None = None, *, style: str = "alpaca", limit: int | None = None,
                exclude_icot_valid: bool = False) -> list[Example]:
    """GSM8K training problems as Examples (layout in the module docstring).

    `exclude_icot_valid` drops the 500 questions that `data/gsm8k_icot/valid.txt` holds out, so a
    model trained here can be validated on that file.
    """
    banned: set[str] = set()
    if exclude_icot_valid:
        banned = {ex.prompt[: -len(SEP)] for ex in gsm8k_icot("valid")}
    out = []
    for rid, question, solution in read_train_jsonl(path):
        if question in banned:
            continue
        prompt = _prompt(question, style)
        response = strip_calculator(solution)
        if not prompt[-1:].isspace():  # §a.5: training text = prompt + " " + response
            response = " " + response
        out.append(Example(prompt=prompt, response=response, answer=_gold(solution, rid),
                           meta={"id": rid, "dataset": "gsm8k"}))
        if limit is not None and len(out) >= limit:
            break
    return out


def gsm8k_icot(split: str = "train", *, cot: str = "file", limit: int | None = None) -> list[Example]:
    """The shipped `data/gsm8k_icot/<split>` lines as Examples (prompt `question||`).

    `cot`: `file` keeps the file's CoT (natural language for train, equations for valid/test);
    `none` keeps only `#### answer`; `equations` (train/valid, whose questions come from
    `train.jsonl`) rebuilds the equation-only CoT from the reference solutions: for train this is
    the §f.2 fallback for the unbundled GSM8K-Aug; for valid it reproduces the file.
    """
    if split not in ICOT_SPLITS:
        raise ValueError(f"gsm8k_icot: split must be one of {tuple(ICOT_SPLITS)}, got {split!r}")
    if cot not in ("file", "none", "equations"):
        raise ValueError(f"gsm8k_icot: cot must be 'file', 'none' or 'equations', got {cot!r}")
    path = _data_root() / "gsm8k_icot" / ICOT_SPLITS[split]
    examples = load_icot_file(path, cot=cot != "none", limit=limit, dataset=f"gsm8k_icot/{split}")
    if cot != "equations":
        return examples
    solutions = {q: s for _, q, s in read_train_jsonl()}
    out = []
    for ex in examples:
        question = ex.prompt[: -len(SEP)]
        if question not in solutions:
            raise ValueError(f"{path}:{ex.meta['line']}: question not found in the GSM8K train file")
        sol = solutions[question]
        target = f"{equations_cot(sol)} #### {sol.split('####', 1)[1].strip()}"
        out.append(icot_example(question, target, meta=ex.meta))
    return out


def generate(n: int, *, seed: int = 0, source: str = "train", **kwargs) -> list[Example]:
    """Uniform task entry point: `n` GSM8K training Examples in a seeded random order.

    `source="train"` reads `train.jsonl` (kwargs of `gsm8k_train`); `source="icot"` the
    `gsm8k_icot` train file (kwargs of `gsm8k_icot`). Asking for more than exist is an error.
    """
    if source == "train":
        pool = gsm8k_train(**kwargs)
    elif source == "icot":
        pool = gsm8k_icot("train", **kwargs)
    else:
        raise ValueError(f"gsm8k: source must be 'train' or 'icot', got {source!r}")
    if n > len(pool):
        raise ValueError(f"gsm8k: asked for {n} examples, the {source} set has {len(pool)}")
    random.Random(seed).shuffle(pool)
    return pool[:n]
