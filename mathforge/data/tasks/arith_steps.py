"""Step-formatted multi-step arithmetic: the CPU-scale generator task for TSMC experiments [library].

Expressions of `n_ops` operations (default 3-5) over operands of `digits` digits (default 2), solved
one operation per step in the `# Question / # Solution / steps / # Answer` layout of docs/methods/tsmc.md §e.3
(`mathforge.data.steps`), following the order of `arithmetic.solve_steps` (`*` first, then left to
right):

    # Question\\n\\nCompute: 52 + 17 * 3 - 45\\n\\n# Solution\\n\\n17 * 3 = 51\\n\\n52 + 51 = 103\\n\\n
    103 - 45 = 58\\n\\n# Answer\\n\\n58

Why this task: every step is checkable, errors early in a solution doom it (so a value function over
prefixes has signal), and a `nano` model trained for a few minutes on 2 CPU cores, sampled at
temperature 0.8, gets a middling share right (the experiment recipe states the measured accuracy),
so search has room to help. Multiplication is limited to a 1-digit factor (`mul_digits`) so the
difficulty sits in carrying through several steps rather than in long multiplication.
"""

from __future__ import annotations

import random

from mathforge.data.records import Example
from mathforge.data.steps import step_example
from mathforge.data.tasks.arithmetic import _pick, solve_steps


def arith_steps(n: int = 1000, seed: int = 0, *, n_ops: int | tuple[int, int] = (3, 5),
                digits: int | tuple[int, int] = 2, operators: str = "+-*", mul_digits: int = 1) -> list[Example]:
    if n < 0:
        raise ValueError(f"arith_steps: n must be >= 0, got {n}")
    if not operators or any(op not in "+-*" for op in operators):
        raise ValueError(f"arith_steps: operators must be a non-empty subset of '+-*', got {operators!r}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = _pick(rng, n_ops, "n_ops")
        d = _pick(rng, digits, "digits")
        ops = [rng.choice(operators) for _ in range(k)]
        operands = [rng.randint(10 ** (d - 1), 10**d - 1) for _ in range(k + 1)]
        for j, op in enumerate(ops):  # keep every product small: its right factor has mul_digits digits
            if op == "*":
                operands[j + 1] = rng.randint(2, 10**mul_digits - 1)
        expr = " ".join(str(v) + (f" {op}" if op else "") for v, op in zip(operands, [*ops, ""], strict=True))
        steps, value = solve_steps(operands, ops)
        out.append(step_example(f"Compute: {expr}", steps, str(value),
                                meta={"id": f"arith_steps-s{seed}-{i}", "n_ops": k, "digits": d}))
    return out


def generate(n: int, *, seed: int = 0, **kwargs) -> list[Example]:
    """Uniform task entry point (`mathforge.data.tasks`)."""
    return arith_steps(n, seed, **kwargs)
