"""Prompt styles (docs/methods/evaluation.md §g.2): templates, few-shot assembly, demo correctness, stop strings, CLI."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from fractions import Fraction

import pytest

from mathforge.data import prompts as P

PROGRAM_DEMOS = [(fam, d) for fam in ("gsm8k", "math") for d in P.DEMO_FAMILIES[fam]]


def test_zero_shot_templates_match_the_spec_table():
    q = "What is 2 + 3?"
    assert P.build_prompt(q, "cot") == "Question: What is 2 + 3?\nAnswer: "
    assert P.build_prompt(q, "direct") == "Question: What is 2 + 3?\nAnswer: "
    assert P.build_prompt(q, "jiuzhang") == "## Question\nWhat is 2 + 3?\n\n## Solution\n"
    assert P.build_prompt(q, "deepseek_math") == (
        "User: What is 2 + 3?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\n"
        "Assistant:")
    assert P.build_prompt(q, "chat-boxed") == P.build_prompt(q, "deepseek_math")
    assert P.build_prompt(q, "prm800k") == "# Question\n\nWhat is 2 + 3?\n\n# Solution\n\n"
    assert P.build_prompt(q, "jiuzhang_tora") == "## Question\nWhat is 2 + 3?\n\n## Code Solution\n"
    assert P.build_prompt(q, "pal") == "Question: What is 2 + 3?\n\n"
    assert P.build_prompt(q, "pot_alpaca").endswith(
        "### Instruction:\nWhat is 2 + 3? Let's write a program.\n\n### Response:")
    assert P.build_prompt(q, "alpaca_step").endswith("### Response: Let's think step by step.")
    assert P.build_prompt(q, "icot", eos="<eos>") == " What is 2 + 3? <eos> "


def test_few_shot_assembly_is_splitter_joined_and_stripped():
    q = "What is 2 + 3?"
    d0, d1 = P.GSM8K_DEMOS[:2]
    expected = (f"Question: {d0.question}\nAnswer: {d0.solution} The answer is {d0.answer}."
                f"\n\n\nQuestion: {d1.question}\nAnswer: {d1.solution} The answer is {d1.answer}."
                f"\n\n\nQuestion: {q}\nAnswer:")
    assert P.build_prompt(q, "cot", shots=2, benchmark="gsm8k") == expected
    pal = P.build_prompt(q, "pal", shots=1, benchmark="svamp")
    assert pal.split("\n---\n")[1] == "Question: What is 2 + 3?"
    assert "def solution():" in pal and "return left" in pal
    tora = P.build_prompt(q, "tora", shots=2, benchmark="math500")
    assert tora.count("```output\n") == 2 and tora.endswith("Solution:")
    assert "\\boxed{\\frac{13}{12}}" in tora


@pytest.mark.parametrize(("bench", "family"), [("gsm8k", "gsm8k"), ("svamp", "gsm8k"), ("asdiv", "gsm8k"),
                                                ("mawps/addsub", "gsm8k"), ("gsm_hard", "gsm8k"),
                                                ("math500", "math"), ("minerva_math", "math"),
                                                ("sat_math", "mmlu_stem"), ("aqua", "aqua"), ("mathqa", "aqua")])
def test_demo_families(bench, family):
    assert P.demo_family(bench) == family


def test_each_family_has_four_to_eight_demos_and_distinct_questions():
    for fam, demos in P.DEMO_FAMILIES.items():
        assert 4 <= len(demos) <= 8, fam
        assert len({d.question for d in demos}) == len(demos)


@pytest.mark.parametrize(("fam", "demo"), PROGRAM_DEMOS, ids=[d.question[:30] for _, d in PROGRAM_DEMOS])
def test_demo_program_prints_its_answer_and_pal_form_returns_it(fam, demo):
    out = subprocess.run([sys.executable, "-I", "-S", "-c", demo.program], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == demo.printed
    ns: dict = {}
    exec(P._pal_program(demo.program), ns)  # noqa: S102 - our own shipped demo code
    assert str(ns["solution"]()) == demo.printed
    # The printed value and the LaTeX answer are the same number.
    value = Fraction(demo.printed)
    m = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", demo.answer)
    assert value == (Fraction(int(m.group(1)), int(m.group(2))) if m else Fraction(demo.answer))


def test_gsm8k_demo_solutions_end_on_their_answer():
    for d in P.GSM8K_DEMOS:
        numbers = re.findall(r"\d+(?:\.\d+)?", d.solution)
        assert numbers[-1] == d.answer, d.question


def test_multiple_choice_demos_are_consistent():
    for fam, letters in (("mmlu_stem", "ABCD"), ("aqua", "ABCDE")):
        for d in P.DEMO_FAMILIES[fam]:
            assert d.answer in letters
            assert f"choice {d.answer}" in d.solution or f"answer is {d.answer}" in d.solution
            options = dict(re.findall(r"\(([A-E])\) ([^()]+?)(?= \([A-E]\)|$)", d.question))
            assert sorted(options) == list(letters), d.question
            # the chosen option's value appears in the worked solution
            assert options[d.answer].strip().lstrip("$") in d.solution, d.question


def test_stop_strings_per_style():
    assert P.stop_strings("cot", "<eos>") == ["\n\nQuestion:", "<eos>"]
    assert "```output" in P.stop_strings("tora") and "\n\n---" in P.stop_strings("tora")
    assert "```output" in P.stop_strings("pal")
    assert P.stop_strings("deepseek_math") == []
    assert "### Instruction" in P.stop_strings("alpaca")
    assert "### Instruction" not in P.stop_strings("alpaca_step")


def test_style_kinds_and_rounds():
    assert P.get_style("tora").kind == "tool" and P.get_style("tora").max_rounds == 4
    assert P.get_style("pal").exec_mode == "pal" and P.get_style("pot").exec_mode == "print"
    assert P.get_style("cot").kind == "text"


def test_bad_requests_give_clear_errors():
    with pytest.raises(ValueError, match="unknown prompt style 'nope'"):
        P.build_prompt("q", "nope")
    with pytest.raises(ValueError, match="has 6 demos; asked for shots=7"):
        P.build_prompt("q", "cot", shots=7, benchmark="math")
    with pytest.raises(ValueError, match="needs program demos"):
        P.build_prompt("q", "pot", shots=2, benchmark="aqua")
    with pytest.raises(ValueError, match="takes no few-shot demos"):
        P.build_prompt("q", "alpaca", shots=1)
    with pytest.raises(ValueError, match="EOS"):
        P.build_prompt("q", "icot")


def _cli(argv: list[str]) -> str:
    from mathforge.cli import show_prompt

    parser = argparse.ArgumentParser()
    show_prompt.add_parser(parser.add_subparsers(dest="command"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert show_prompt.run(parser.parse_args(argv)) == 0
    return buf.getvalue()


def test_show_prompt_prints_the_exact_prompt():
    from mathforge.data import load_benchmark

    q = load_benchmark("gsm8k", limit=1)[0].question
    out = _cli(["show-prompt", "--style", "cot", "--shots", "4", "--benchmark", "gsm8k", "--index", "0"])
    assert out == P.build_prompt(q, "cot", shots=4, benchmark="gsm8k") + "\n"
    assert out.count("Question:") == 5
    listed = _cli(["show-prompt", "--list"]).split()
    assert set(listed) == set(P.STYLES)


def test_line_style_prompts_like_mathforge_training_renders():
    """`line` must produce exactly the prompt our training renders for `q||cot #### a` data, so a
    model trained by `mathforge train` on multiplication is evaluated on the text it was trained on."""
    from mathforge.data import load_benchmark
    from mathforge.data.prompts import build_prompt
    from mathforge.data.tasks.multiplication import multiplication

    p = load_benchmark("multiplication-4x4", limit=1)[0]
    assert build_prompt(p.question, "line") == p.question + "||"
    ex = multiplication(4, 1, seed=0)[0]
    question = ex.prompt[: -len("||")]
    assert build_prompt(question, "line") == ex.prompt
