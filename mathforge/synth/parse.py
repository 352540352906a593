"""S5 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.7, [reconstructed]):
generations → `(problem, solution, answer, level, snippet id)` training records.

CoT: the problem is the text before the first solution marker (tried in order `[Solution]:`,
`[Solution]`, `## Solution`, `Solution:`; configurable), the solution the text after it, and a
leading `[Problem]:` / `[Problem]` is removed. Tool: the text between `[Problem Description]` and
`[/Problem Description]`, and between `[Solution]` and `[/Solution]`; a missing closing tag of the
*solution* is accepted at the end of the text, but a problem section that never closes is rejected.
Every rejected generation is kept with its reason, and the reasons are counted.

Emitted records carry the training format of the original, `input` = `## Question\\n{problem}\\n\\n
## Solution\\n` (tool: `## Code Solution`) and `output` = the solution, plus the fields later stages use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mathforge.grading import extract_answer

MARKERS = ("[Solution]:", "[Solution]", "## Solution", "Solution:")
PROBLEM_PREFIXES = ("[Problem]:", "[Problem]")
KEEP_FIELDS = ("id", "sample", "level", "source", "snippet_id", "variant", "finish_reason", "n_tokens")


@dataclass
class ParseConfig:
    markers: list[str] = field(default_factory=lambda: list(MARKERS))
    answer_style: str = "auto"

    def __post_init__(self) -> None:
        if not self.markers or not all(isinstance(m, str) and m for m in self.markers):
            raise ValueError("parse.markers must be a non-empty list of non-empty strings")


def split_cot(text: str, markers: list[str]) -> tuple[str, str] | str:
    """(problem, solution), or the rejection reason."""
    for marker in markers:
        i = text.find(marker)
        if i >= 0:
            problem, solution = text[:i].strip(), text[i + len(marker):].lstrip(":").strip()
            for prefix in PROBLEM_PREFIXES:
                if problem.startswith(prefix):
                    problem = problem[len(prefix):].strip()
                    break
            if not problem:
                return "empty_problem"
            return (problem, solution) if solution else "empty_solution"
    return "no_solution_marker"


def _section(text: str, open_tag: str, close_tag: str, *, need_close: bool) -> str | None:
    i = text.find(open_tag)
    if i < 0:
        return None
    start = i + len(open_tag)
    j = text.find(close_tag, start)
    if j < 0:
        return None if need_close else text[start:].strip()
    return text[start:j].strip()


def split_tool(text: str) -> tuple[str, str] | str:
    if "[Problem Description]" not in text:
        return "no_problem_section"
    problem = _section(text, "[Problem Description]", "[/Problem Description]", need_close=True)
    if problem is None:
        return "unclosed_problem_section"
    rest = text[text.find("[/Problem Description]"):]
    solution = _section(rest, "[Solution]", "[/Solution]", need_close=False)
    if solution is None:
        return "no_solution_section"
    if not problem:
        return "empty_problem"
    return (problem, solution) if solution else "empty_solution"


def parse_generation(gen: dict, cfg: ParseConfig) -> dict:
    """A training record, or `{..., "reason": why}` for a rejected generation."""
    text = gen.get("generated_text")
    base = {k: gen[k] for k in KEEP_FIELDS if k in gen}
    if not isinstance(text, str):
        return base | {"reason": "no_generated_text"}
    tool = gen.get("variant") == "tool"
    parts = split_tool(text) if tool else split_cot(text, cfg.markers)
    if isinstance(parts, str):
        return base | {"reason": parts, "generated_text": text}
    problem, solution = parts
    head = "## Code Solution" if tool else "## Solution"
    return base | {"input": f"## Question\n{problem}\n\n{head}\n", "output": solution, "problem": problem,
                   "solution": solution, "answer": extract_answer(solution, style=cfg.answer_style),
                   "generated_text": text}


def parse_generations(gens: list[dict], cfg: ParseConfig | None = None) -> tuple[list[dict], list[dict], dict]:
    """(records, rejected with `reason`, counts with one `rejected_<reason>` entry per reason)."""
    cfg = cfg or ParseConfig()
    kept, rejected = [], []
    reasons: Counter = Counter()
    for gen in gens:
        rec = parse_generation(gen, cfg)
        if "reason" in rec:
            reasons[rec["reason"]] += 1
            rejected.append(rec)
        else:
            kept.append(rec)
    counts = {"generations": len(gens), "parsed": len(kept), "rejected": len(rejected)}
    counts |= {f"rejected_{r}": n for r, n in sorted(reasons.items())}
    return kept, rejected, counts
