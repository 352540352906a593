"""S5 parsing and S6 filters (docs/methods/synthesis.md §d.7, §d.8)."""

from __future__ import annotations

import pytest

from mathforge.infer.types import Completion
from mathforge.synth.filters import FilterConfig, apply_filters, repeated_ngram, tool_program
from mathforge.synth.parse import ParseConfig, parse_generations, split_cot, split_tool

LONG = " ".join(f"step {i} adds {i} to the total." for i in range(30))


def gen(text, variant="cot", finish="stop", i=0):
    return {"id": f"s{i}:grade", "sample": 0, "level": "grade", "source": "web", "snippet_id": f"s{i}",
            "variant": variant, "generated_text": text, "finish_reason": finish}


def test_cot_markers_in_order_and_problem_prefix():
    assert split_cot("[Problem]: What is 2+2?\n[Solution]: 4", list(ParseConfig().markers)) == ("What is 2+2?", "4")
    assert split_cot("Q here\n## Solution\nA here [Solution]: x", ["[Solution]", "## Solution"]) == \
        ("Q here\n## Solution\nA here", "x")
    assert split_cot("just text", ["[Solution]"]) == "no_solution_marker"
    assert split_cot("[Problem]\n[Solution]: 4", ["[Solution]:"]) == "empty_problem"
    assert split_cot("Q?\nSolution:   ", ["Solution:"]) == "empty_solution"


def test_tool_sections_and_unclosed():
    text = "[Problem Description]\nFind x.\n[/Problem Description]\n[Solution]\ncode\n[/Solution] junk"
    assert split_tool(text) == ("Find x.", "code")
    assert split_tool(text.replace("[/Solution] junk", "")) == ("Find x.", "code")  # closing tag optional
    assert split_tool("[Problem Description]\nFind x. [Solution] code") == "unclosed_problem_section"
    assert split_tool("no sections") == "no_problem_section"
    assert split_tool("[Problem Description]a[/Problem Description] nothing") == "no_solution_section"


def test_parse_counts_every_rejection_and_emits_training_records():
    gens = [gen("[Problem]: Tom has 3 apples.\n[Solution]: He has $3$. \\boxed{3}"),
            gen("a generation that never closes its sections [Problem Description] ...", "tool"),
            gen("no marker at all"), gen("no marker either"), {"id": "x", "variant": "cot"}]
    kept, rejected, counts = parse_generations(gens)
    assert counts == {"generations": 5, "parsed": 1, "rejected": 4, "rejected_no_generated_text": 1,
                      "rejected_no_solution_marker": 2, "rejected_unclosed_problem_section": 1}
    rec = kept[0]
    assert rec["input"] == "## Question\nTom has 3 apples.\n\n## Solution\n" and rec["output"] == rec["solution"]
    assert rec["answer"] == "3" and rec["snippet_id"] == "s0" and rec["level"] == "grade"
    assert {r["reason"] for r in rejected} >= {"unclosed_problem_section"}
    tool = parse_generations([gen("[Problem Description]\nP q r s t.\n[/Problem Description]\n[Solution]\nS", "tool")])[0]
    assert tool[0]["input"].endswith("## Code Solution\n")


def _rec(problem="Tom has three apples and buys five more today.", solution=None, **kw):
    solution = solution if solution is not None else LONG + " The answer is $8$."
    return {"id": "r", "problem": problem, "solution": solution, "variant": "cot", "finish_reason": "stop",
            "generated_text": f"{problem}\n[Solution]: {solution}", "input": f"## Question\n{problem}\n\n## Solution\n"} | kw


def test_each_filter_removes_with_its_reason_and_counts():
    recs = [_rec(), _rec(problem="Too short."), _rec(finish_reason="length"), _rec(solution="Short. \\boxed{1}"),
            _rec(solution=LONG + " so we stop at 8"), _rec(solution=("the same twenty words again " * 5 + "x ") * 4
                                                            + LONG + " \\boxed{2}"),
            _rec(solution=LONG + " ".join(f"число{i}" for i in range(150)) + " \\boxed{8}")]
    kept, removed, counts = apply_filters(recs)
    assert [r["answer"] for r in kept] == ["8"] and "answer" not in recs[0]  # input records untouched
    assert [r["filter"] for r in removed] == ["well_formed", "truncated", "length", "answer", "degeneration",
                                              "language"]
    assert counts["input"] == 7 and counts["kept"] == 1 and counts["removed_length"] == 1
    assert all(r["reason"] for r in removed)
    off = apply_filters(recs, FilterConfig(filters=["well_formed"]))
    assert off[2]["kept"] == 6
    with pytest.raises(ValueError, match="unknown"):
        FilterConfig(filters=["vibes"])


def test_repeated_ngram_matches_the_obvious_count():
    toks = list("abcabcabcabcx")
    for n in (1, 2, 3, 4):
        for k in (1, 2, 3, 4):
            grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
            assert repeated_ngram(toks, n, k) == any(grams.count(g) > k for g in grams)


def test_tool_filter_runs_code_in_the_sandbox():
    good = "```python\nx = 6 * 7\nprint(x)\n```\n```output\n42\n```\nSo it is \\boxed{42}."
    two = "```python\na = 5\nprint('setup')\n```\n```python\nprint(a * 2)\n```\nAnswer \\boxed{10}."
    wrong = "```python\nprint(41)\n```\nThus \\boxed{42}."
    crash = "```python\nprint(1/0)\n```\n\\boxed{1}"
    none = "No code here, \\boxed{3}."
    recs = [_rec(solution=s, variant="tool") for s in (good, two, wrong, crash, none)] + [_rec()]
    cfg = FilterConfig(filters=["tool"])
    kept, removed, counts = apply_filters(recs, cfg)
    assert [r["solution"] for r in kept] == [good, two, recs[-1]["solution"]]  # CoT records pass
    reasons = [r["reason"] for r in removed]
    assert "differs from boxed" in reasons[0] and "ZeroDivisionError" in reasons[1] and "no python" in reasons[2]
    assert counts["removed_tool"] == 3
    assert tool_program("text") is None


class VoteEngine:
    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, *, n=1, params=None, stop=None):
        self.calls = getattr(self, "calls", []) + [(params, stop)]
        return [[Completion(text=f"so the answer is \\boxed{{{a}}}") for a in self.answers[p][:n]] for p in prompts]


def test_self_consistency_groups_answers_with_the_grader():
    a, b = _rec(problem="Problem one has enough words here."), _rec(problem="Problem two has enough words here.")
    a["answer"], b["answer"] = "0.5", "3"
    engine = VoteEngine({a["input"]: ["1/2", "\\frac{1}{2}", "7", "0.50"], b["input"]: ["4", "4", "3", "5"]})
    kept, removed, counts = apply_filters([a, b], FilterConfig(filters=["self_consistency"]), engine)
    assert [r["problem"] for r in kept] == [a["problem"]]  # 1/2, \frac{1}{2} and 0.50 are one cluster
    assert removed[0]["reason"].startswith("1/4 re-solves agree") and counts["removed_self_consistency"] == 1
    with pytest.raises(ValueError, match="engine"):
        apply_filters([a], FilterConfig(filters=["self_consistency"]))
    # the re-solves' cap, temperature and stops reach the engine as configured
    cfg = FilterConfig(filters=["self_consistency"], consistency_max_new_tokens=64, consistency_temperature=0.5,
                       consistency_stop=["\n## "])
    apply_filters([a], cfg, engine)
    params, stop = engine.calls[-1]
    assert (params.max_new_tokens, params.temperature, stop) == (64, 0.5, ["\n## "])
    with pytest.raises(ValueError, match="consistency_temperature"):
        FilterConfig(consistency_temperature=0.0)
