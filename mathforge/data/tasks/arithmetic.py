"""Multi-step integer arithmetic with step-by-step solutions and a difficulty knob.

A synthetic reasoning task for tiny models (in the spirit of the arithmetic curricula used to
study length generalisation and chain of thought, e.g. Nye et al. 2021 "Show Your Work:
Scratchpads for Intermediate Computation"): an expression of `n_ops` binary operations over
operands of up to `digits` digits is solved one operation per line, in the order standard
precedence dictates (`*` before `+`/`-`, then left to right), ending with the gsm8k marker:

    prompt:   "Compute: 12 + 7 * 3 - 5\\n"
    response: "7 * 3 = 21\\n12 + 21 = 33\\n33 - 5 = 28\\n#### 28"
    answer:   "28"

`Example.difficulty` is `n_ops * digits` (more steps and longer numbers are both harder), and
`meta` keeps both knobs so difficulty-adaptive SFT (docs/methods/sdat.md §b) can weight or upsample by
either.
"""

from __future__ import annotations

import random

from mathforge.data.records import Example

OPERATORS = "+-*"
PROMPT = "Compute: {expr}\n"


def _pick(rng: random.Random, spec: int | tuple[int, int], name: str) -> int:
    lo, hi = (spec, spec) if isinstance(spec, int) else spec
    if lo < 1 or hi < lo:
        raise ValueError(f"arithmetic: {name} must be >= 1 or a range (lo, hi) with 1 <= lo <= hi, got {spec!r}")
    return rng.randint(lo, hi)


def solve_steps(operands: list[int], ops: list[str]) -> tuple[list[str], int]:
    """Evaluate `operands[0] ops[0] operands[1] ...` one operation per step.

    Multiplications are reduced first (leftmost first), then additions and subtractions left to
    right; each step is written `x op y = z` with the values as they stand at that step.
    """
    if len(operands) != len(ops) + 1:
        raise ValueError(f"need {len(ops) + 1} operands for {len(ops)} operators, got {len(operands)}")
    if any(op not in OPERATORS for op in ops):
        raise ValueError(f"operators must be among {OPERATORS!r}, got {ops}")
    vals, ops = list(operands), list(ops)
    steps: list[str] = []
    for level in ("*", "+-"):
        i = 0
        while i < len(ops):
            if ops[i] not in level:
                i += 1
                continue
            x, y, op = vals[i], vals[i + 1], ops[i]
            z = x * y if op == "*" else x + y if op == "+" else x - y
            steps.append(f"{x} {op} {y} = {z}")
            vals[i : i + 2] = [z]
            del ops[i]
    return steps, vals[0]


def make_example(operands: list[int], ops: list[str], *, meta: dict | None = None) -> Example:
    """The Example for one expression (layout in the module docstring)."""
    expr = " ".join(str(v) + (f" {op}" if op else "") for v, op in zip(operands, [*ops, ""], strict=True))
    steps, value = solve_steps(operands, ops)
    digits = max(len(str(v)) for v in operands)
    info = {"n_ops": len(ops), "digits": digits, **(meta or {})}
    response = "\n".join([*steps, f"#### {value}"])
    return Example(prompt=PROMPT.format(expr=expr), response=response, answer=str(value),
                   difficulty=float(len(ops) * digits), meta=info)


def arithmetic(n: int = 1000, seed: int = 0, *, n_ops: int | tuple[int, int] = (1, 4),
               digits: int | tuple[int, int] = (1, 2), operators: str = OPERATORS) -> list[Example]:
    """`n` expressions drawn with `seed`.

    `n_ops` and `digits` are each a fixed value or an inclusive range sampled per example; within
    an example every operand has up to the drawn number of digits and one operand has exactly that
    many, so the digit knob means what it says. Operands are non-negative; results may be negative.
    """
    if n < 0:
        raise ValueError(f"arithmetic: n must be >= 0, got {n}")
    if not operators or any(op not in OPERATORS for op in operators):
        raise ValueError(f"arithmetic: operators must be a non-empty subset of {OPERATORS!r}, got {operators!r}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = _pick(rng, n_ops, "n_ops")
        d = _pick(rng, digits, "digits")
        operands = [rng.randint(0, 10**d - 1) for _ in range(k + 1)]
        operands[rng.randrange(k + 1)] = rng.randint(10 ** (d - 1) if d > 1 else 0, 10**d - 1)
        ops = [rng.choice(operators) for _ in range(k)]
        out.append(make_example(operands, ops, meta={"id": f"arith-s{seed}-{i}"}))
    return out


def generate(n: int, *, seed: int = 0, **kwargs) -> list[Example]:
    """Uniform task entry point (`mathforge.data.tasks`): `arithmetic(n, seed, ...)`."""
    return arithmetic(n, seed, **kwargs)
