"""User problem files: field mappings, gold rules, and errors that name file, line and field."""

from __future__ import annotations

import json

import pytest

from mathforge.data import load_file
from mathforge.data.files import _MISSING, get_path, load_hf


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_dotted_paths_rules_and_meta(tmp_path):
    f = write_jsonl(tmp_path / "mine.jsonl", [
        {"uid": "a1", "q": {"text": "1+1?"}, "sol": "It is 2.\n#### 2", "lvl": 1},
        {"uid": "a2", "q": {"text": "Big?"}, "sol": "#### 1,234", "lvl": 2},
    ])
    probs = load_file(f, question="q.text", answer="sol", id="uid", solution="sol", answer_rule="gsm8k",
                      meta=["lvl"], grading={"skip_unit": True})
    assert [(p.id, p.question, p.answer) for p in probs] == [("a1", "1+1?", "2"), ("a2", "Big?", "1234")]
    assert probs[0].meta == {"lvl": 1, "gold_raw": "It is 2.\n#### 2"} and probs[1].grading == {"skip_unit": True}
    assert probs[0].dataset == "mine" and probs[0].solution.startswith("It is 2")


def test_json_list_numbers_boxes_choices_and_limit(tmp_path):
    rows = [
        {"problem": "x?", "answer": 145.0, "sol": "so $\\boxed{\\frac{1}{2}}$", "opts": ["1", "2"], "gold": 1},
        {"problem": "y?", "answer": 11.5, "sol": "\\boxed{3}", "opts": ["1", "2"], "gold": "(A)"},
    ]
    f = tmp_path / "set.json"
    f.write_text(json.dumps(rows, indent=2))
    nums = load_file(f, question="problem")
    assert [p.answer for p in nums] == ["145", "11.5"] and [p.id for p in nums] == ["0", "1"]
    assert load_file(f, question="problem", answer="sol", answer_rule="boxed")[0].answer == "\\frac{1}{2}"
    mc = load_file(f, question="problem", answer="gold", answer_rule="choice", choices="opts", extract_style="choice")
    assert [p.answer for p in mc] == ["B", "A"] and mc[0].choices == ["1", "2"]
    assert len(load_file(f, question="problem", limit=1)) == 1
    assert load_file(f, question="problem", answer="answer", answer_rule=lambda v: f"<{v}>")[0].answer == "<145.0>"


def test_get_path_through_lists():
    rec = {"a": {"b": [{"c": 5}]}}
    assert get_path(rec, "a.b.0.c") == 5
    assert get_path(rec, "a.b.-1.c") == 5
    # Absent paths give a sentinel, so a present `null` (None) stays distinguishable.
    assert get_path(rec, "a.b.3.c") is _MISSING and get_path(rec, "a.x") is _MISSING
    assert get_path({"a": None}, "a") is None


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "a", "answer": "1"}\n\n{"question": "b", "answer": 2\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: malformed JSON line"):
        load_file(f)


def test_missing_field_names_file_line_and_field(tmp_path):
    f = write_jsonl(tmp_path / "m.jsonl", [{"question": "a", "answer": "1"}, {"question": "b", "meta": {}}])
    with pytest.raises(ValueError, match=r"m.jsonl:2: missing field 'answer'"):
        load_file(f)
    with pytest.raises(ValueError, match=r"m.jsonl:1: missing field 'meta.gold'"):
        load_file(f, answer="meta.gold")


def test_json_list_errors_point_at_the_record_line(tmp_path):
    f = tmp_path / "l.json"
    f.write_text('[\n  {"question": "a", "answer": "1"},\n  {"question": "b"}\n]\n')
    with pytest.raises(ValueError, match=r"l.json:3: missing field 'answer'"):
        load_file(f)
    f.write_text('[\n  {"question": "a", "answer": "1"},\n  {"question": "b",, }\n]\n')
    with pytest.raises(ValueError, match=r"l.json:3: malformed JSON"):
        load_file(f)
    f.write_text('{"question": "a"}')
    with pytest.raises(ValueError, match=r"l.json:1: expected a JSON list"):
        load_file(f)


def test_bad_gold_values_and_duplicate_ids(tmp_path):
    f = write_jsonl(tmp_path / "g.jsonl", [{"question": "a", "answer": "no marker", "k": 1},
                                            {"question": "b", "answer": "#### 3", "k": 1}])
    with pytest.raises(ValueError, match=r"g.jsonl:1: field 'answer': no '####'"):
        load_file(f, answer_rule="gsm8k")
    with pytest.raises(ValueError, match=r"g.jsonl:2: field 'k': id '1' repeats"):
        load_file(f, id="k")
    with pytest.raises(ValueError, match="unknown answer_rule"):
        load_file(f, answer_rule="magic")
    with pytest.raises(FileNotFoundError):
        load_file(tmp_path / "absent.jsonl")
    write_jsonl(f, [{"question": "a", "answer": "  "}])
    with pytest.raises(ValueError, match=r"g.jsonl:1: field 'answer': empty gold"):
        load_file(f)


def test_load_hf_local_json_file(tmp_path):
    pytest.importorskip("datasets")
    f = write_jsonl(tmp_path / "hf.jsonl", [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(5)])
    probs = load_hf(f, "train", {"answer_rule": "gsm8k"})
    assert [p.answer for p in probs] == ["0", "1", "2", "3", "4"] and probs[0].dataset == "hf"
    write_jsonl(f, [{"question": "a", "answer": "1"}, {"question": "b", "other": "2"}])
    with pytest.raises(ValueError, match=r"hf.jsonl\[train\] row 1: missing field 'answer'"):
        load_hf(f, "train")
