"""The step-by-step solution layout of TSMC (Feng et al. 2025) and PRM800K (docs/methods/tsmc.md §e.3, §e.4):

    # Question\\n\\n{problem}\\n\\n# Solution\\n\\n{step 1}\\n\\n{step 2}\\n\\n...\\n\\n# Answer\\n\\n{answer}<EOS>

Prompt = everything up to and including `# Solution\\n\\n` (the `prm800k` prompt style); response =
the steps joined by the delimiter, then `# Answer\\n\\n{answer}` (EOS is added by rendering).
Converters split GSM8K solutions (one step per line, calculator annotations removed, `#### x`
becomes the answer step; §e.4 [reconstructed]) and MATH solutions (one step per paragraph, else per
sentence [library]; the answer is the last `\\boxed{}`).
"""

from __future__ import annotations

import re

from mathforge.data.records import Example

DELIMITER = "\n\n"
ANSWER_HEADER = "# Answer"
PROMPT = "# Question\n\n{question}\n\n# Solution\n\n"


def step_response(steps: list[str], answer: str, delimiter: str = DELIMITER) -> str:
    bad = [s for s in steps if delimiter in s or not s.strip()]
    if bad:
        raise ValueError(f"a step is empty or contains the step delimiter {delimiter!r}: {bad[0]!r}")
    return delimiter.join([*steps, f"{ANSWER_HEADER}{delimiter}{answer}"])


def step_example(question: str, steps: list[str], answer: str, *, meta: dict | None = None) -> Example:
    return Example(prompt=PROMPT.format(question=question), response=step_response(steps, answer), answer=answer,
                   meta=dict(meta or {}))


def gsm8k_steps(solution: str) -> tuple[list[str], str]:
    """(steps, answer) of a GSM8K reference solution."""
    from mathforge.data.tasks.gsm8k import strip_calculator

    if "####" not in solution:
        raise ValueError(f"GSM8K solution has no '####' answer line: {solution[:60]!r}")
    body, answer = strip_calculator(solution).split("####", 1)
    steps = [line.strip() for line in body.splitlines() if line.strip()]
    return steps, answer.strip().replace(",", "")


def math_steps(solution: str) -> tuple[list[str], str]:
    """(steps, answer) of a MATH solution: paragraphs, or sentences when it is one paragraph."""
    from mathforge.grading import extract_answer

    answer = extract_answer(solution, style="boxed")
    if answer is None:
        raise ValueError(f"MATH solution has no \\boxed{{}} answer: {solution[:60]!r}")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", solution) if p.strip()]
    if len(paragraphs) == 1:
        paragraphs = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z$\\])", paragraphs[0]) if s.strip()]
    return [" ".join(p.split("\n")) for p in paragraphs], answer


def check_step_format(examples: list[Example], delimiter: str = DELIMITER, *, where: str = "task") -> None:
    """Every solution must have at least one step boundary and the answer step, or step-wise search
    has nothing to work on: raise naming the first example that does not."""
    for i, ex in enumerate(examples):
        if delimiter not in ex.response or f"{ANSWER_HEADER}{delimiter}" not in ex.response:
            name = ex.meta.get("id", i)
            raise ValueError(f"{where}: solution of example {name} has no step delimiter {delimiter!r} followed by "
                             f"'{ANSWER_HEADER}{delimiter}' (use a step-formatted task, e.g. arith_steps): "
                             f"{ex.response[:60]!r}")


def gsm8k_step_examples(n: int | None = None, seed: int = 0, *, path: str | None = None) -> list[Example]:
    """The GSM8K training problems in the step layout (the §e.4 GSM8K generator data [reconstructed]);
    `n` caps the count (file order; `seed` is accepted for the uniform task interface)."""
    from mathforge.data.tasks.gsm8k import read_train_jsonl

    out = []
    for rid, question, solution in read_train_jsonl(path):
        steps, answer = gsm8k_steps(solution)
        out.append(step_example(question, steps, answer, meta={"id": rid, "dataset": "gsm8k"}))
        if n is not None and len(out) >= n:
            break
    return out


def generate(n: int, *, seed: int = 0, **kwargs) -> list[Example]:
    """Uniform task entry point for `gsm8k_steps`."""
    return gsm8k_step_examples(n, seed, **kwargs)
