"""Plain record types that flow through mathforge.

`Problem` is one benchmark item (question + normalised gold answer); `Example` is one training
example (prompt + response text, before tokenisation). Both are plain dataclasses so every
arrow in the pipeline is a function call on plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problem:
    """One evaluation item.

    `answer` is the gold answer after the dataset's own extraction rule (GSM8K `#### 18` -> `18`,
    MATH: last `\\boxed{}` of the solution, multiple choice: the letter). Grading normalises both
    sides itself, so `answer` keeps its LaTeX. `grading` holds keyword options for
    `mathforge.grading.is_equivalent` (e.g. `skip_unit`, `unordered`, `abs_tol`, `unit`) and
    `extract_style` the style for `mathforge.grading.extract_answer`.
    """

    id: str
    question: str
    answer: str
    solution: str | None = None
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    extract_style: str = "auto"
    grading: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example:
    """One training example before tokenisation.

    The model is trained on `response` given `prompt` (the prompt is masked out of the loss).
    `weight` scales this example's token losses; `difficulty` is an optional per-example score
    or level used by difficulty-adaptive SFT; `answer` is the final answer for exact-match eval.
    """

    prompt: str
    response: str
    answer: str = ""
    weight: float = 1.0
    difficulty: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
