"""Shipped benchmark adapters round-trip their files (counts and gold rules of docs/data.md, docs/methods/evaluation.md §g.6)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import pytest

from mathforge.data import list_benchmarks, load_benchmark
from mathforge.data.benchmarks import benchmark_file, benchmark_splits, data_root

# Records per (benchmark, split), copied from docs/data.md's overview table (not from the registry).
COUNTS = {
    ("gsm8k", "test"): 1319, ("gsm8k", "train"): 7473, ("math", "test"): 5000, ("math500", "test"): 500,
    ("minerva_math", "test"): 272, ("svamp", "test"): 1000, ("asdiv", "test"): 2215, ("mawps", "test"): 2065,
    ("mawps/addsub", "test"): 395, ("mawps/multiarith", "test"): 600, ("mawps/singleeq", "test"): 508,
    ("mawps/singleop", "test"): 562, ("gsm_hard", "test"): 1319, ("carp_en", "test"): 976, ("aqua", "test"): 254,
    ("sat_math", "test"): 32, ("mmlu_stem", "test"): 3018, ("mathqa", "test"): 1000, ("aime24", "test"): 30,
    ("amc23", "test"): 40, ("college_math", "test"): 2818, ("gaokao2023en", "test"): 385,
    ("olympiadbench", "test"): 675, ("gsm8k-icot", "test"): 1319, ("gsm8k-icot", "valid"): 500,
    ("gsm8k-icot", "train"): 6973,
    **{(f"multiplication-{d}x{d}", s): 1000 for d in (4, 5, 7, 9) for s in ("test", "valid")},
}
MC = {"aqua", "sat_math", "mmlu_stem", "mathqa"}


def test_registry_lists_every_shipped_benchmark_and_split():
    assert {(n, s) for n in list_benchmarks() for s in benchmark_splits(n)} == set(COUNTS)


@pytest.mark.parametrize("name,split", sorted(COUNTS))
def test_round_trip_counts_and_non_empty_golds(name, split):
    problems = load_benchmark(name, split)
    assert len(problems) == COUNTS[(name, split)]
    assert [p.id for p in problems] == [str(i) for i in range(len(problems))]
    for p in problems:
        assert p.answer.strip() and p.question.strip() and p.dataset == name, p.id
        if name in MC:
            assert p.extract_style == "choice" and re.fullmatch("[A-E]", p.answer)
            assert p.answer in "ABCDE"[: len(p.choices)]
        elif "icot" in name or "multiplication" in name:
            assert p.extract_style == "icot"


def test_math_gold_is_last_balanced_box_with_level_and_type():
    probs = load_benchmark("math")
    assert probs[0].answer == "2" and probs[0].meta == {"level": 3, "type": "Algebra", "gold_raw": "2"}
    assert probs[333].answer == "3"  # boxes -3 then the alternative 3: the last-box convention keeps 3
    assert Counter(p.meta["level"] for p in probs) == {1: 437, 2: 894, 3: 1131, 4: 1214, 5: 1324}
    assert Counter(p.meta["type"] for p in probs)["Counting & Probability"] == 474
    nested = [p for p in probs if "\\frac" in p.answer]
    assert nested and all(p.answer.count("{") == p.answer.count("}") for p in nested)


def test_math500_answer_equals_last_box_of_its_solution():
    from mathforge.grading import extract_answer

    probs = load_benchmark("math500")
    assert probs[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and probs[0].meta["level"] == 2
    assert Counter(p.meta["level"] for p in probs) == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}
    mismatches = [p.id for p in probs if extract_answer(p.solution, style="boxed").strip() != p.answer]
    assert mismatches == []


def test_gsm8k_gold_rule():
    test, train = load_benchmark("gsm8k"), load_benchmark("gsm8k", "train")
    for probs, commas, negative in ((test, 14, 2), (train, 79, 3)):
        assert all(re.fullmatch(r"-?\d+", p.answer) for p in probs)
        assert sum("," in p.meta["gold_raw"] for p in probs) == commas
        assert sum(p.answer.startswith("-") for p in probs) == negative
    assert test[0].answer == "18" and test[0].solution.endswith("#### 18")


def test_icot_and_multiplication_lines():
    icot, gsm = load_benchmark("gsm8k-icot"), load_benchmark("gsm8k")
    assert [p.question for p in icot] == [p.question for p in gsm]
    assert [p.answer for p in icot] == ["#### " + p.answer for p in gsm]  # the ICoT exact-string gold
    assert icot[0].solution == "<<16-3-4=9>> <<9*2=18>>"
    assert sum(p.solution == "" for p in icot) == 18
    for d in (4, 5, 7, 9):
        for p in load_benchmark(f"multiplication-{d}x{d}", "valid", limit=50):
            a, b = (int("".join(x.split())[::-1]) for x in p.question.split("*"))
            assert p.answer == "#### " + " ".join(str(a * b).zfill(2 * d)[::-1])


def test_word_problem_questions_and_numeric_golds():
    svamp = load_benchmark("svamp")
    assert svamp[0].question == ("There are 87 oranges and 290 bananas in Philip's collection. If the bananas are "
                                 "organized into 2 groups and oranges are organized into 93 groups. "
                                 "How big is each group of bananas?")
    assert svamp[0].answer == "145" and not any(p.answer.endswith(".0") for p in svamp)
    hard = load_benchmark("gsm_hard")
    assert hard[0].answer == "-9867630"
    assert sum("." in p.answer for p in hard) == 303 and not any("e" in p.answer for p in hard)
    assert load_benchmark("amc23")[0].answer == "27"
    assert load_benchmark("aime24")[7].answer == "025"
    mawps = load_benchmark("mawps")
    for sub in ("addsub", "multiarith", "singleeq", "singleop"):
        part = load_benchmark(f"mawps/{sub}")
        assert [p.answer for p in part] == [p.answer for p in mawps if p.meta["type"] == sub]


def test_asdiv_unit_rules():
    probs = load_benchmark("asdiv")
    assert probs[0].question == "Seven red apples and two green apples are in the basket. How many apples are in the basket?"
    golds = {p.meta["gold_raw"]: p.answer for p in probs}
    assert golds["9 (apples)"] == "9" and golds["-(1/3)"] == "-(1/3)" and golds["14  (seats)"] == "14"
    harness = {p.meta["gold_raw"]: p.answer for p in load_benchmark("asdiv", asdiv_unit_rule="harness")}
    assert harness["-(1/3)"] == "-" and harness["9 (apples)"] == "9"
    assert sum(p.question.endswith(" (Yes or No)") for p in probs) == 5
    with pytest.raises(ValueError, match="asdiv_unit_rule"):
        load_benchmark("asdiv", asdiv_unit_rule="nope", limit=1)
    with pytest.raises(ValueError, match="takes no option"):
        load_benchmark("svamp", asdiv_unit_rule="harness")


def test_multiple_choice_questions_and_gold_distributions():
    aqua = load_benchmark("aqua")
    assert aqua[1].question.endswith("? Answer Choices: (A) $61 (B) $65 (C) $67.40 (D) $70 (E) $78.20")
    assert "\nAnswer Choices: (A) $61" in load_benchmark("aqua", aqua_newline=True)[1].question
    sat, mmlu, mathqa = load_benchmark("sat_math"), load_benchmark("mmlu_stem"), load_benchmark("mathqa")
    assert sat[0].question.endswith("\nAnswer Choices: (A) $f(-6)=0$ (B) $f(6)=-6$ (C) $f(-6)=6$ (D) $f(0)=-6$")
    assert all(len(p.choices) == 4 for p in sat)
    assert sat[26].choices == ["1,190", "1,900", "2,900", "19,000"]  # the `A. x B. y` option form
    assert mathqa[0].question.endswith(":\nAnswer Choices: (A) 12 (B) 16 (C) 18 (D) 24 (E) 26")
    assert all(len(p.choices) == 5 for p in mathqa + aqua) and all(len(p.choices) == 4 for p in mmlu)
    dist = {name: Counter(p.answer for p in probs) for name, probs in
            (("aqua", aqua), ("sat", sat), ("mmlu", mmlu), ("mathqa", mathqa))}
    assert dist["aqua"] == {"A": 63, "B": 58, "D": 53, "C": 46, "E": 34}
    assert dist["sat"] == {"A": 11, "C": 8, "B": 7, "D": 6}
    assert dist["mmlu"] == {"D": 871, "C": 783, "B": 719, "A": 645}
    assert dist["mathqa"] == {"D": 231, "C": 219, "B": 213, "A": 178, "E": 159}


def test_grading_options_per_dataset():
    assert all(p.grading == {"skip_unit": True} for p in load_benchmark("minerva_math") + load_benchmark("carp_en"))
    carp = load_benchmark("carp_en")
    assert not any(re.search(r"\\(le|ge|ne)q(?![a-z])", p.answer) for p in carp)
    assert any("\\ge " in p.answer for p in carp)
    oly = load_benchmark("olympiadbench")
    assert sum(bool(p.grading.get("unordered")) for p in oly) == 94
    assert sum("unit" in p.grading for p in oly) == 8
    tol = [p for p in oly if "abs_tol" in p.grading]
    assert len(tol) == 1 and tol[0].answer == "4.2" and tol[0].grading["abs_tol"] == 0.1
    multi = {p.meta["gold_raw"]: p.answer for p in oly if p.grading.get("unordered")}
    assert multi["$69$,$84$"] == "69, 84" and multi["$(1,1), (3,2)$"] == "(1,1), (3,2)"
    gaokao = load_benchmark("gaokao2023en")
    several = [p for p in gaokao if p.grading.get("unordered")]
    assert sorted(p.meta["n_answers"] for p in several) == [2, 2, 2, 2, 4]
    assert {p.answer for p in several} >= {"48, 384", "0.05, 0.6", "I, II, III, IV"}
    by_raw = {p.meta["gold_raw"]: p for p in gaokao}
    assert not by_raw["$2,900$"].grading and by_raw["$\\{2,3,5\\}$"].answer == "$\\{2,3,5\\}$"
    repaired = [p for p in gaokao if "repaired" in p.meta]
    assert [(p.answer, p.question.endswith("saddle point.")) for p in repaired][0] == ("$\\frac{3}{10}$", True)
    assert len(repaired) == 2 and "Answer:" not in repaired[1].question


def test_limit_unknown_names_and_splits():
    assert len(load_benchmark("math", limit=7)) == 7
    with pytest.raises(ValueError, match="unknown benchmark 'nope'.*gsm8k"):
        load_benchmark("nope")
    with pytest.raises(ValueError, match="no split 'train'"):
        load_benchmark("math", "train")


def test_data_root_override_and_bad_record(tmp_path, monkeypatch):
    src = benchmark_file("svamp")
    dst = tmp_path / "benchmarks" / "svamp" / "test.jsonl"
    dst.parent.mkdir(parents=True)
    lines = src.read_text().splitlines()[:3]
    bad = json.loads(lines[1])
    del bad["Answer"]
    dst.write_text("\n".join([lines[0], json.dumps(bad), lines[2]]) + "\n")
    monkeypatch.setenv("MATHFORGE_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert len(load_benchmark("svamp", limit=1)) == 1
    with pytest.raises(ValueError, match=r"svamp/test.jsonl:2: missing field 'Answer'"):
        load_benchmark("svamp")
    dst.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"test.jsonl:2: malformed JSON"):
        load_benchmark("svamp")
    monkeypatch.setenv("MATHFORGE_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="MATHFORGE_DATA"):
        load_benchmark("svamp")
    shutil.rmtree(tmp_path / "benchmarks")


# Golds the project's extractor cannot read back from `\boxed{...}` (none at present; the escaped,
# unmatched brace of `\left\{ ... \right.` in college_math piecewise answers once was one).
KNOWN_UNEXTRACTABLE: set[tuple[str, str]] = set()


def written_answer(p) -> str:
    """The gold written back the way a model ends its response, in the dataset's extraction style."""
    if p.extract_style == "choice":
        return f"Comparing the options, the answer is ({p.answer})."
    if p.extract_style == "icot":
        return f"{p.solution} {p.answer}"
    inner = p.answer[1:-1] if p.answer.startswith("$") and p.answer.endswith("$") else p.answer
    return f"Putting it together, the final answer is $\\boxed{{{inner}}}$."


def test_every_gold_grades_correct_against_itself():
    """Round trip through the real grader: gold -> response text -> extract -> grade == correct.
    Catches golds the adapters mangle (units left in, multi-answer lists, icot markers)."""
    from mathforge.grading import extract_answer, grade

    failures = set()
    for name in list_benchmarks():
        for p in load_benchmark(name):
            pred = extract_answer(written_answer(p), style=p.extract_style)
            if not grade(pred=pred, gold=p.answer, **p.grading).correct:
                failures.add((name, p.id))
    assert failures <= KNOWN_UNEXTRACTABLE, sorted(failures - KNOWN_UNEXTRACTABLE)[:10]


def test_either_answer_golds_keep_one_alternative():
    """MATH solutions that box two alternatives ("Either point is an acceptable answer") keep one
    of them as the gold, not both as a list a single correct point would be graded against."""
    by_id = {p.id: p for p in load_benchmark("math")}
    assert by_id["2716"].answer == "(0,0)"
    assert by_id["414"].answer == "-2, 1"          # two boxes that are one answer stay joined


@pytest.mark.parametrize(("line", "error"), [
    ("1 2 * 3 4 #### 3 0 4", r"test.txt:2: line lacks the '\|\|' question/chain separator"),
    ("1 2 * 3 4||3 6 4 0 4", r"test.txt:2: line lacks the '#### answer' marker"),
    ("1 2 * 3 4||3 6 #### ", r"test.txt:2: empty answer after '####'"),
])
def test_icot_line_file_names_a_bad_line(tmp_path, monkeypatch, line, error):
    """An implicit-CoT benchmark line without `||`, without `####` or with nothing after it is an
    error naming file and line, before any generation."""
    folder = tmp_path / "multiplication" / "4x4"
    folder.mkdir(parents=True)
    (folder / "test.txt").write_text("1 2 * 3 4||3 6 #### 3 0 4\n" + line + "\n")
    monkeypatch.setenv("MATHFORGE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=error):
        load_benchmark("multiplication-4x4", "test")
    assert load_benchmark("multiplication-4x4", "test", limit=1)[0].answer == "#### 3 0 4"
