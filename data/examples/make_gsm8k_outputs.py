"""Build `gsm8k_outputs.jsonl`: CONSTRUCTED example outputs for `mathforge grade` (not model outputs).

For the first 50 GSM8K test problems, four responses each are written from the reference
solution with a seeded generator, in the forms models commonly produce:

- `correct`:   the reference reasoning, then "The answer is X." (sometimes "$1,234" or "X dollars");
- `boxed`:     the reference reasoning, then "Therefore, the final answer is $\\boxed{X}$.";
- `slip`:      the same reasoning with an arithmetic slip in the final result (wrong answer);
- `truncated`: the reasoning cut off mid-way, as when the token budget runs out (no final answer).

`kinds` records which form each response is. Run from the repository root:
`python data/examples/make_gsm8k_outputs.py` (deterministic: the output is byte-identical).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from mathforge.data import load_benchmark

N_PROBLEMS, N_RESPONSES, SEED = 50, 4, 0
OUT = Path(__file__).with_name("gsm8k_outputs.jsonl")


def reasoning(solution: str) -> str:
    """The reference solution without calculator annotations and without the `#### x` line."""
    body = solution.rsplit("####", 1)[0]
    body = re.sub(r"<<[^>]*>>", "", body)
    return " ".join(line.strip() for line in body.splitlines() if line.strip())


def write_answer(gold: str, rng: random.Random) -> str:
    value = int(gold)
    form = rng.random()
    if form < 0.15 and abs(value) >= 1000:
        return f"${value:,}"
    if form < 0.3:
        return f"{value} dollars" if rng.random() < 0.5 else f"{value}.00"
    return str(value)


def response(kind: str, text: str, gold: str, rng: random.Random) -> str:
    if kind == "correct":
        return f"{text}\nThe answer is {write_answer(gold, rng)}."
    if kind == "boxed":
        return f"{text}\nTherefore, the final answer is $\\boxed{{{gold}}}$."
    if kind == "slip":
        wrong = int(gold) + rng.choice([-10, -2, -1, 1, 2, 5, 10])
        return f"{text}\nThe answer is {wrong}."
    words = text.split()
    return " ".join(words[: max(3, len(words) // 2)])


def main() -> None:
    rng = random.Random(SEED)
    lines = []
    for prob in load_benchmark("gsm8k", "test", limit=N_PROBLEMS):
        text = reasoning(prob.solution)
        kinds = rng.choices(["correct", "boxed", "slip", "truncated"], weights=[4, 2, 3, 1], k=N_RESPONSES)
        responses = [response(k, text, prob.answer, rng) for k in kinds]
        lines.append(json.dumps({"id": prob.id, "question": prob.question, "responses": responses,
                                 "kinds": kinds}, ensure_ascii=False))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
