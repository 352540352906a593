"""S8 decontamination (docs/methods/synthesis.md §d.10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mathforge.synth.decontam import DecontamConfig, Reference, decontaminate
from mathforge.synth.io import load_records

ROOT = Path(__file__).resolve().parents[1]
LONG_Q = ("A farmer plants seven rows of corn with twelve plants in each row and then adds three more rows "
          "of beans with nine plants each. How many plants are there?")
REFS = [Reference("bench_a", "test", "0", LONG_Q, "Seven rows of twelve make eighty four plants in all, "
                  "and three rows of nine make twenty seven plants, so the total is 111."),
        Reference("bench_b", "test", "5", "What is 2+3?"),
        Reference("multiplication-4x4", "test", "1", "1 2 3 4 * 5 6 7 8")]


def test_rules_and_attribution():
    recs = [{"problem": LONG_Q.upper().replace("?", " ?!")},                                    # exact
            {"problem": "Consider this: " + LONG_Q.replace("How many plants are there?", "Count them.")},  # 13-gram
            {"problem": "what is 2 + 3"},                                                        # short, exact
            {"problem": "What is 2+4?"},                                                         # short, differs
            {"problem": "Write down 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15."},                      # digits only
            {"problem": "An unrelated question about triangles and their angles in a plane."},
            {"problem": "New problem.", "solution": "So the total is 111. Seven rows of twelve make eighty "
                                                    "four plants in all, and three rows"}]
    cfg = DecontamConfig(solution_field="")
    clean, flagged, report = decontaminate(recs, cfg, REFS)
    assert [r["contamination"][0]["rule"] for r in flagged] == ["exact", "13-gram", "exact"]
    assert flagged[0]["contamination"] == [{"benchmark": "bench_a", "split": "test", "id": "0", "rule": "exact"}]
    assert len(clean) == 4 and report["per_benchmark"] == {"bench_a/test": 2, "bench_b/test": 1}
    # the solution field is checked too when asked, and matches the reference's gold solution
    _, flagged, _ = decontaminate(recs[-1:], DecontamConfig(solution_field="solution"), REFS)
    assert flagged[0]["contamination"][0]["rule"] == "13-gram"
    with pytest.raises(ValueError, match="record #0: field 'question'"):
        decontaminate(recs, DecontamConfig(field="question"), REFS)


def test_n_option_and_near_rule():
    edited = LONG_Q.replace("seven", "eight").replace("adds", "puts").replace("beans", "peas")  # gaps of 11 words
    strict = decontaminate([{"problem": edited}], DecontamConfig(n=13, near=False), REFS)[1]
    loose = decontaminate([{"problem": edited}], DecontamConfig(n=10, near=False), REFS)[1]
    assert not strict and loose[0]["contamination"][0]["rule"] == "10-gram"
    near_copy = LONG_Q.replace("there?", "there in all?")
    hit = decontaminate([{"problem": near_copy}], DecontamConfig(n=40), REFS)[1]
    assert hit[0]["contamination"][0]["rule"] == "near"


def test_every_math500_problem_is_found_in_the_math_test_set(tmp_path):
    """The CLI on a file that is not the pipeline's: MATH-500 against MATH (known overlap, §d.10)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "dc"
    proc = subprocess.run([sys.executable, "-m", "mathforge", "synth", "decontaminate",
                           str(ROOT / "data/benchmarks/math500/test.jsonl"), "--field", "problem", "--out", str(out),
                           "--benchmarks", "math"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["flagged"] == 500 and report["clean"] == 0 and report["per_benchmark"] == {"math/test": 500}
    flagged = load_records(out / "flagged.jsonl")
    assert all(any(h["benchmark"] == "math" for h in r["contamination"]) for r in flagged)
    assert (out / "manifest.json").exists() and "math/test | 500" in (out / "report.md").read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x"}\n{"text": "y"}\n')
    proc = subprocess.run([sys.executable, "-m", "mathforge", "synth", "decontaminate", str(bad), "--field",
                           "problem", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "bad.jsonl:2: field 'problem' missing" in proc.stderr


def test_planted_questions_are_found_with_recall_and_precision_of_the_acceptance():
    """Acceptance of issue 11 on a small seeded planted corpus (bench/decontam.py runs it at scale):
    recall >= 0.99 verbatim and >= 0.9 lightly edited, precision >= 0.99, a hit counting only when
    it names the planted question's own benchmark and id; negatives are GSM8K *train* questions."""
    import random

    from bench.decontam import light_edit
    from mathforge.data import load_benchmark
    from mathforge.synth.decontam import shipped_references

    rng = random.Random(0)
    refs = shipped_references(["gsm8k", "svamp", "math500", "aime24"])
    picks = rng.sample(refs, 150)
    negatives = [{"problem": p.question, "src": None} for p in rng.sample(load_benchmark("gsm8k", "train"), 300)]
    verbatim = [{"problem": r.question, "src": (r.benchmark, r.id), "kind": "verbatim"} for r in picks]
    edited = [{"problem": light_edit(r.question, rng), "src": (r.benchmark, r.id), "kind": "edited"} for r in picks]
    _, flagged, _ = decontaminate(negatives + verbatim + edited, DecontamConfig(), refs)

    def own(rec) -> bool:
        return any((m["benchmark"], m["id"]) == rec["src"] for m in rec["contamination"])

    found = [r for r in flagged if r["src"] is not None and own(r)]
    recall = {kind: sum(r.get("kind") == kind for r in found) / len(picks) for kind in ("verbatim", "edited")}
    assert recall["verbatim"] >= 0.99 and recall["edited"] >= 0.9, recall
    assert len(found) / len(flagged) >= 0.99, [r["problem"] for r in flagged if r not in found]
