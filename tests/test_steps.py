"""The step layout of docs/methods/tsmc.md §e.3: converters for GSM8K and MATH solutions, the synthetic task, checks."""

from __future__ import annotations

import pytest

from mathforge.data.records import Example
from mathforge.data.steps import PROMPT, check_step_format, gsm8k_steps, math_steps, step_example


def test_gsm8k_solution_to_steps():
    steps, answer = gsm8k_steps("Tom has 3 + 5 = <<3+5=8>>8 apples.\nHe eats 2, so 8 - 2 = <<8-2=6>>6.\n#### 1,006")
    assert steps == ["Tom has 3 + 5 = 8 apples.", "He eats 2, so 8 - 2 = 6."] and answer == "1006"
    ex = step_example("q?", steps, answer)
    assert ex.prompt == PROMPT.format(question="q?") == "# Question\n\nq?\n\n# Solution\n\n"
    assert ex.response == "Tom has 3 + 5 = 8 apples.\n\nHe eats 2, so 8 - 2 = 6.\n\n# Answer\n\n1006"
    with pytest.raises(ValueError, match="####"):
        gsm8k_steps("no answer line")


def test_math_solution_to_steps():
    steps, answer = math_steps("We have $x = 2$. Then $y = 3x = 6$. So the answer is $\\boxed{6}$.")
    assert steps == ["We have $x = 2$.", "Then $y = 3x = 6$.", "So the answer is $\\boxed{6}$."]
    assert answer == "6"
    steps, _ = math_steps("First part.\nStill first.\n\nSecond: $\\boxed{1}$")
    assert steps == ["First part. Still first.", "Second: $\\boxed{1}$"]


def test_tasks_are_step_formatted():
    from mathforge.data.tasks import get_task

    examples = get_task("arith_steps")(20, seed=3, digits=1, operators="+-")
    check_step_format(examples)
    assert all(e.response.endswith(f"# Answer\n\n{e.answer}") for e in examples)
    gsm = get_task("gsm8k_steps")(5)
    check_step_format(gsm)
    with pytest.raises(ValueError, match="example 1 has no step delimiter"):
        check_step_format([examples[0], Example(prompt="q", response="3 + 4 = 7 #### 7", answer="7")])
