"""Training tasks that produce `list[Example]`, and the implicit-CoT line format they share.

The `{input}||{cot} #### {answer}` line format and its parsing rules are those of the
implicit-chain-of-thought projects (Deng et al. 2023, 2024; docs/methods/icot.md §f.2). An Example made from
a line has `prompt = input + "||"` and `response = target` (the `cot #### answer` half, verbatim;
`#### answer` when the CoT is dropped), so `prompt + response` reproduces the shipped line exactly and
the model sees an explicit end-of-question marker. `Example.answer` is the exact-match gold of
§f.2: `"####"` plus the text after the first `####`, stripped, commas removed.

Registry: `TASKS` maps a short name (used by recipes and `mathforge render --task`) to the
generator function, imported lazily. Each task module also has `generate(n, *, seed, **args)`,
the uniform entry point of the training loop (`mathforge.train.dataset.task_examples`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from mathforge.data.records import Example

SEP = "||"
ANSWER_MARK = "####"

TASKS: dict[str, str] = {
    "multiplication": "multiplication:multiplication",
    "mult": "multiplication:multiplication",
    "arithmetic": "arithmetic:arithmetic",
    "arith": "arithmetic:arithmetic",
    "arith_steps": "arith_steps:arith_steps",
    "gsm8k_steps": "gsm8k_steps:gsm8k_step_examples",
    "gsm8k": "gsm8k:gsm8k_train",
    "gsm8k_icot": "gsm8k:gsm8k_icot",
}


def get_task(name: str) -> Callable[..., list[Example]]:
    """The generator registered under `name` (ValueError listing the known names otherwise)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module, func = TASKS[name].split(":")
    return getattr(importlib.import_module(f"mathforge.data.tasks.{module}"), func)


def generate_task(name: str, n: int, *, seed: int, args: dict | None = None) -> list[Example]:
    """`n` examples of the task registered as `name`, through its module's uniform
    `generate(n, *, seed, **args)` (the training loop's and `mathforge eval`'s one entry point)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module = importlib.import_module(f"mathforge.data.tasks.{TASKS[name].split(':')[0]}")
    try:
        return list(module.generate(n, seed=seed, **(args or {})))
    except TypeError as exc:
        raise ValueError(f"task arguments for {name!r}: {exc}") from None


def icot_answer(target: str) -> str:
    """§f.2 `extract_answer`: `"####" + text after the first ####`, stripped, commas deleted
    (the project's one extractor, style `icot`)."""
    from mathforge.grading import extract_answer

    return extract_answer(target, style="icot") or ""


def icot_cot(target: str) -> str:
    """§f.2 `extract_cot`: the text before `####`, stripped (may be empty)."""
    return target.split(ANSWER_MARK, 1)[0].strip()


def icot_example(source: str, target: str, *, cot: bool = True, meta: dict | None = None) -> Example:
    """An Example from the two halves of a `||` line; `cot=False` keeps only `#### answer`
    (the `nocot` layout of §f.4, for implicit-CoT students and no-CoT baselines)."""
    answer = icot_answer(target)
    response = target
    if not cot and ANSWER_MARK in target:
        response = ANSWER_MARK + target.split(ANSWER_MARK, 1)[1]
    return Example(prompt=source + SEP, response=response, answer=answer, meta=dict(meta or {}))


def load_icot_file(path: str | Path, *, cot: bool = True, limit: int | None = None,
                   dataset: str | None = None) -> list[Example]:
    """Examples from a `||` line file (data/multiplication/*, data/gsm8k_icot/*, GSM8K-Aug).

    Lines that do not split into exactly two parts are an error naming file and line (the
    original silently dropped them; a malformed file should not shrink a training set unseen).
    Blank lines are skipped. `meta` holds `id` (`<file stem>-<line no>`), `line` and `dataset`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = dataset or f"{path.parent.name}/{path.stem}"
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(SEP)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected one '{SEP}' separating input and target, "
                                 f"found {len(parts) - 1}")
            meta = {"id": f"{path.stem}-{lineno}", "line": lineno, "dataset": name}
            out.append(icot_example(parts[0], parts[1], cot=cot, meta=meta))
            if limit is not None and len(out) >= limit:
                break
    return out


def to_line(example: Example) -> str:
    """The `||` line of an Example made by this package (inverse of `icot_example`)."""
    if not example.prompt.endswith(SEP):
        raise ValueError(f"example {example.meta.get('id', '')!s} has no '{SEP}' at the end of its prompt")
    return example.prompt + example.response
