"""The grading bench's labelled corpora load, are well-formed and say where their labels come from."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import grading_corpora as corpora  # noqa: E402
from grading import score  # noqa: E402


def test_classes_corpus_is_broad_and_has_both_verdicts():
    cases = corpora.load_classes()
    assert len(cases) >= 200
    groups = Counter(c.group for c in cases)
    assert len(groups) >= 15 and min(groups.values()) >= 4
    assert 0.3 < sum(c.expected for c in cases) / len(cases) < 0.7
    both = [g for g in groups if {c.expected for c in cases if c.group == g} == {True, False}]
    assert len(both) >= 0.8 * len(groups)
    keys = [(c.gold, c.pred, c.question) for c in cases]
    assert len(keys) == len(set(keys)), [k for k, n in Counter(keys).items() if n > 1]
    assert all(c.note for c in cases)


def test_real_corpus_rows_carry_source_licence_and_hand_labels():
    rows = [json.loads(line) for line in corpora.REAL_FILE.read_text(encoding="utf-8").splitlines()]
    cases = corpora.load_real()
    assert len(cases) == len(rows) >= 600
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["licence"] for r in rows} == {"MIT", "Apache-2.0"}
    for bench in ("gsm8k", "math"):
        part = [c for c in cases if c.benchmark == bench]
        assert sum(c.expected for c in part) >= 50 and sum(not c.expected for c in part) >= 100
    assert {r["label_source"] for r in rows} == {"hand-labelled by mathforge dev, 2026-12"}
    # Where the dataset has its own (automatic) verdict, the hand label agrees with it.
    assert all(r["label"] == r["source_label"] for r in rows if r["source_label"] is not None)
    assert sum(c.expected for c in cases) > 100 and sum(not c.expected for c in cases) > 100
    assert all(c.pred is not None or not c.expected for c in cases)


def test_malformed_class_rows_name_file_line_and_field(tmp_path):
    bad = tmp_path / "classes.tsv"
    bad.write_text("# header\n1\t1\t1\tnum\tok\n2\t2\tyes\tnum\tbad verdict\n")
    with pytest.raises(ValueError, match=r"classes.tsv:3: field 'expected'"):
        corpora.load_classes(bad)
    bad.write_text("1\t1\t1\n")
    with pytest.raises(ValueError, match=r"classes.tsv:1: expected 5 or 6"):
        corpora.load_classes(bad)


def test_malformed_real_rows_name_file_line_and_field(tmp_path):
    bad = tmp_path / "real.jsonl"
    bad.write_text(json.dumps({"id": "x", "gold": "1", "response": "A: 1", "label": "yes"}) + "\n")
    with pytest.raises(ValueError, match=r"real.jsonl:1: field 'label' must be bool"):
        corpora.load_real(bad)


@pytest.mark.parametrize(("gold", "kind"), [
    ("18", "numeral"), ("-2.5", "numeral"), ("1,000", "numeral"),
    ("\\frac{1}{2}", "latex_number"), ("2\\sqrt{3}", "latex_number"), ("25\\%", "latex_number"),
    ("x^2+1", "symbolic"), ("(1,2)", "symbolic"), ("[0,1)", "symbolic"), ("x<1", "symbolic"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "symbolic"), ("\\text{Monday}", "latex_number"),
])
def test_gold_kind(gold, kind):
    assert corpora.gold_kind(gold) == kind


def test_mixed_corpus_follows_its_recipe():
    synthetic = [corpora.Case(g, g, True, corpora.gold_kind(g)) for g in ["1", "2", "\\frac12", "x", "(1,2)"] * 400]
    classes, real = corpora.load_classes(), corpora.load_real()
    cases, parts = corpora.mixed_cases(synthetic, classes, real)
    assert sum(n for _, n in parts) == len(cases)
    assert dict(parts)[corpora.MIX[0][0]] == 800 and dict(parts)[corpora.MIX[2][0]] == 700
    assert sum(corpora.gold_kind(c.gold) == "symbolic" for c in cases) >= 700


def test_score_counts_false_positives_and_negatives_like_a_loop():
    cases = [corpora.Case("1", "1", e) for e in (True, True, False, False, True)]
    verdicts = [True, False, True, False, True]
    s = score(cases, verdicts)
    fp = sum(1 for c, v in zip(cases, verdicts, strict=True) if v and not c.expected)
    fn = sum(1 for c, v in zip(cases, verdicts, strict=True) if c.expected and not v)
    assert (s["false_positives"], s["false_negatives"]) == (fp, fn) == (1, 1)
    assert s["agreement"] == 0.6 and s["positives"] == 3


def test_timed_rounds_gives_the_verdicts_of_a_plain_loop_in_order():
    from grading import math_verify_verdict, mathforge_verdict, timed_rounds

    cases = corpora.load_classes()[:9]
    verdicts, seconds = timed_rounds(cases, "default", rounds=4)
    assert verdicts["mathforge"] == verdicts["mathforge_no_memo"] == [mathforge_verdict(c, "default") for c in cases]
    assert verdicts["math_verify"] == [math_verify_verdict(c) for c in cases]
    assert set(seconds) == {"mathforge", "mathforge_no_memo", "math_verify"}
