"""S2 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.4): snippets → prompts.

Eight levels (`grade` … `aime`) in the fixed Markdown layout of the original templates
(`## Instruction`, `## Math Content`, `## Guidelines` with `[Problem]:` / `[Solution]:`,
`## New Problem`), worded afresh for mathforge; the synthesis model continues after
`## New Problem`. The tool (code) variant asks for `[Problem Description] … [/Problem Description]`
and `[Solution] … [/Solution]` with Python code and a closing `\\boxed{}` summary, shown one
demonstration in the same layout. Two fixes relative to the original (§d.4): the box command is
`\\boxed{}` (the original wrote `/boxed`), and a demonstration's chat-role prefix and suffix are
removed as exact strings, never as a set of characters.

Two options for a synthesis model that has not been through S3 (off by default, so §d.4's prompt is
unchanged): `cot_demo` inserts one worked demonstration in the layout (`## Example` with
`[Problem]:` / `[Solution]:` and a `\\boxed{}` answer, as the tool variant always has) before
`## New Problem`, and `open_problem` ends the prompt with the opening `[Problem]:` tag, so the model
starts inside the problem section and a second `[Problem]` can serve as a stop string. Measured on
SmolLM2-135M-Instruct (docs/synth.md "Demonstration"), 160 prompts: without them 21 generations
parsed and 52 closed before the token cap; with them (and S4 stops at a new `## ` section or a second
`[Problem]`) 122 parsed and 150 closed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from mathforge.synth.snippets import LEVELS

# level -> (problem requirements, solution requirements); paraphrased from §d.4's table, our wording.
LEVEL_RULES: dict[str, tuple[str, str]] = {
    "grade": ("A grade-school word problem on basic arithmetic, number sense, simple shapes or first "
              "measurements, set in an everyday situation; text only, solvable without a picture.",
              "Work step by step in plain words a child can follow, saying why each step is taken."),
    "middle": ("A problem for grades 6 to 8 (ages 11 to 14) on arithmetic, pre-algebra, basic probability "
               "and statistics, or geometry; text only.",
               "250 to 350 words, with every formula written in LaTeX."),
    "high": ("A problem that joins at least two of Algebra I/II, Pre-Calculus, Calculus, Geometry, "
             "Trigonometry, Statistics and Probability, using only what is taught by the end of 11th grade.",
             "250 to 350 words, with the mathematics in LaTeX."),
    "college": ("A self-contained, demanding problem of about 100 to 150 words for readers who know calculus, "
                "linear algebra, abstract algebra and similar subjects.",
                "250 to 350 words; explain the reasoning and name the theorem or property used at each step."),
    "amc8": ("A problem in the style of AMC 8: arithmetic, algebra, counting, geometry, logic, number theory "
             "or probability; no calculus, no physics; text only.",
             "250 to 350 words that bring out the problem-solving ideas used."),
    "amc10": ("A problem in the style of AMC 10, hard but below the hardest items, in 50 to 100 words; it may "
              "call for a proof-like argument, a computation or an insight.",
              "250 to 350 words, with the mathematics in LaTeX."),
    "amc12": ("A problem in the style of AMC 12 on algebra, geometry, trigonometry, counting, probability or "
              "number theory.",
              "250 to 350 words, with the mathematics in LaTeX."),
    "aime": ("A problem in the style of AIME on algebra, geometry, combinatorics, number theory or probability "
             "that needs pre-calculus techniques only; no college topics, physics at most basic mechanics.",
             "250 to 350 words."),
}
LEVEL_NAMES = {"grade": "grade-school", "middle": "middle-school", "high": "high-school", "college": "college",
               "amc8": "AMC 8", "amc10": "AMC 10", "amc12": "AMC 12", "aime": "AIME"}

COT_TEMPLATE = """## Instruction
Write one new {level_name} math problem, and its solution, drawing on the content below.

## Math Content
{snippet}

## Guidelines
[Problem]: {problem_rule} Give it the needed data and a single final answer.
[Solution]: {solution_rule} End with the final answer in \\boxed{{}}.

{demo}## New Problem
{open_tag}"""

# The `cot_demo` demonstration (written for mathforge; not from any benchmark).
DEFAULT_COT_DEMO = {
    "question": "A baker makes 24 muffins in the morning and half as many in the afternoon. She sells 30 of "
                "them. How many muffins are left?",
    "solution": "In the afternoon she makes 24 / 2 = 12 muffins, so 24 + 12 = 36 in all. After selling 30, "
                "36 - 30 = 6 are left. The answer is \\boxed{6}.",
}

TOOL_TEMPLATE = """## Instruction
Taking ideas from the text below, write a completely self-contained math problem and a correct
solution that computes with Python code and ends with a short summary in words giving the final
answer in \\boxed{{}}.

## Math Content
{seed}

## Example
[Problem Description]
{demo_problem}
[/Problem Description]

[Solution]
{demo_solution}
[/Solution]

## New Problem
"""

# Used when no demonstration file is given; written for mathforge.
DEFAULT_TOOL_DEMOS = [{
    "question": "A rectangle has a perimeter of 54 cm and its length is twice its width. What is its area "
                "in square centimetres?",
    "solution": "Let the width be $w$; then the length is $2w$ and $2(w + 2w) = 54$.\n\n```python\n"
                "w = 54 / 6\nprint(w * 2 * w)\n```\n```output\n162.0\n```\nThe width is 9 cm and the length "
                "18 cm, so the area is \\boxed{162} square centimetres.",
}]


@dataclass
class PromptConfig:
    """`levels` restricts the levels used (each snippet keeps its drawn levels that are listed);
    `tool_seed_chars` is the cut of a tool-variant seed text (§d.4: 2,000)."""

    levels: list[str] = field(default_factory=lambda: list(LEVELS))
    tool_seed_chars: int = 2000
    demo_prefix: str = ""
    demo_suffix: str = ""
    seed: int = 42
    cot_demo: bool = False
    open_problem: bool = False

    def __post_init__(self) -> None:
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or not self.levels:
            raise ValueError(f"prompts.levels: unknown {bad}; choose from {list(LEVELS)}")
        if self.tool_seed_chars < 1:
            raise ValueError("prompts.tool_seed_chars must be >= 1")


def cot_prompt(snippet: str, level: str, *, demo: dict | None = None, open_problem: bool = False) -> str:
    """The §d.4 prompt; `demo` ({question, solution}) adds an `## Example` section, `open_problem`
    ends it with `[Problem]:` (module docstring)."""
    if level not in LEVEL_RULES:
        raise ValueError(f"unknown level {level!r}; choose from {list(LEVELS)}")
    problem_rule, solution_rule = LEVEL_RULES[level]
    example = (f"## Example\n[Problem]: {demo['question'].strip()}\n[Solution]: {demo['solution'].strip()}\n\n"
               if demo else "")
    return COT_TEMPLATE.format(level_name=LEVEL_NAMES[level], snippet=snippet, problem_rule=problem_rule,
                               solution_rule=solution_rule, demo=example,
                               open_tag="[Problem]:" if open_problem else "")


def build_prompts(snippets: list[dict], cfg: PromptConfig | None = None) -> list[dict]:
    """One CoT prompt per (snippet, level): `{id, snippet_id, level, source, variant, prompt}`."""
    cfg = cfg or PromptConfig()
    out = []
    for i, snip in enumerate(snippets):
        for name in ("id", "text"):
            if not isinstance(snip.get(name), str):
                raise ValueError(f"snippet #{i}: field {name!r} missing or not a string")
        for level in snip.get("levels") or []:
            if level in cfg.levels:
                out.append({"id": f"{snip['id']}:{level}", "snippet_id": snip["id"], "level": level,
                            "source": snip.get("source", ""), "variant": "cot",
                            "prompt": cot_prompt(snip["text"], level, demo=DEFAULT_COT_DEMO if cfg.cot_demo else None,
                                                 open_problem=cfg.open_problem)})
    return out


def cut_seed(text: str, n: int = 2000) -> str:
    """The first `n` characters; when the cut does not fall on whitespace, back up to just after the
    last `.`, newline or `}` (§d.4)."""
    if len(text) <= n or text[n].isspace() or text[n - 1].isspace():
        return text[:n]
    head = text[:n]
    last = max(head.rfind("."), head.rfind("\n"), head.rfind("}"))
    return head[: last + 1] if last >= 0 else head


def strip_affixes(text: str, prefix: str, suffix: str) -> str:
    """Remove an exact prefix and suffix (e.g. chat-role markers), never a set of characters."""
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    if suffix and text.endswith(suffix):
        text = text[: -len(suffix)]
    return text.strip()


def _clean_demo_code(solution: str) -> str:
    """Docstrings in triple quotes are removed from a demonstration's code (as the original did)."""
    return re.sub(r'[ \t]*("""|\'\'\')[\s\S]*?\1[ \t]*\n?', "", solution)


def build_tool_prompts(snippets: list[dict], demos: list[dict] | None = None,
                       cfg: PromptConfig | None = None) -> list[dict]:
    """One tool-variant prompt per snippet, each with one random demonstration (`question`,
    `solution`; only demonstrations whose solution holds a `\\boxed{}` are used)."""
    cfg = cfg or PromptConfig()
    pool = [d for d in (demos or DEFAULT_TOOL_DEMOS) if "\\boxed" in str(d.get("solution", ""))]
    if not pool:
        raise ValueError("tool demonstrations: none has a solution with \\boxed{}")
    rng = random.Random(cfg.seed)
    out = []
    for snip in snippets:
        demo = rng.choice(pool)
        prompt = TOOL_TEMPLATE.format(seed=cut_seed(snip["text"], cfg.tool_seed_chars),
                                      demo_problem=strip_affixes(str(demo["question"]), cfg.demo_prefix,
                                                                 cfg.demo_suffix),
                                      demo_solution=_clean_demo_code(str(demo["solution"])).strip())
        out.append({"id": f"{snip['id']}:tool", "snippet_id": snip["id"], "level": "tool",
                    "source": snip.get("source", ""), "variant": "tool", "prompt": prompt})
    return out
