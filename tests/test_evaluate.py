"""The evaluation harness with a scripted engine: records (docs/methods/evaluation.md §g.1), metrics (§g.7), resume, code styles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from unittest.mock import ANY

import pytest

from mathforge.data import load_benchmark
from mathforge.data.benchmarks import benchmark_file
from mathforge.evaluate import EvalConfig, compute_metrics, evaluate, load_records
from mathforge.infer.tools import LIMIT_NOTE, extract_program
from mathforge.infer.types import Completion, cut_at_stop

GOLDS = [p.answer for p in load_benchmark("gsm8k", limit=8)]


class FakeEngine:
    """Scripted engine: `respond(prompt, sample_index)` gives the text; stop strings are honoured the
    way real engines do (cut at the first stop). Records every call."""

    def __init__(self, respond, fail_after: int | None = None):
        self.respond, self.fail_after, self.calls = respond, fail_after, []

    def generate(self, prompts, *, n=1, params=None, stop=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append(list(prompts))
        out = []
        for p in prompts:
            row = []
            for j in range(n):
                text, hit = cut_at_stop(self.respond(p, j), stop or [])
                row.append(Completion(text, n_tokens=len(text.split()) + 1, logprob=-1.0,
                                      finish_reason="stop" if hit else "length"))
            out.append(row)
        return out


def _gold_of(prompt: str) -> str:
    """The gold of the (last) GSM8K question in a prompt, found by question text."""
    for p in load_benchmark("gsm8k", limit=8):
        if p.question in prompt.split("Question:")[-1]:
            return p.answer
    raise AssertionError("unknown question")


def _idx(prompt: str) -> int:
    return GOLDS.index(_gold_of(prompt)) if GOLDS.count(_gold_of(prompt)) == 1 else 0


def cot_right_on_even(prompt, j):
    i = _idx(prompt)
    return f"Some reasoning. The answer is {_gold_of(prompt) if i % 2 == 0 else '-1'}.\n\nQuestion: junk"


def _cfg(tmp_path, **kw):
    base = dict(model="fake", benchmarks=["gsm8k"], out_dir=str(tmp_path / "run"), limit=8, batch_size=3,
                workers=1)
    return EvalConfig(**{**base, **kw})


def test_records_manifest_and_accuracy(tmp_path):
    cfg = _cfg(tmp_path)
    metrics = evaluate(cfg, FakeEngine(cot_right_on_even))
    recs = load_records(Path(cfg.out_dir) / "outputs.jsonl")
    assert len(recs) == 8
    for key in ("dataset", "idx", "question", "gold_raw", "gold", "prompt_style", "profile", "sample_id",
                "prompt", "generation", "finish_reason", "programs", "exec_reports", "extracted", "normalised",
                "correct", "flags", "grade_rule", "score", "timing", "tokens"):
        assert key in recs[0], key
    assert set(recs[0]["flags"]) >= {"empty", "exec_error", "exec_timeout", "grade_timeout", "extraction_failed"}
    assert "Question: junk" not in recs[0]["generation"]  # the cot stop string cut it
    assert [r["correct"] for r in recs] == [i % 2 == 0 for i in range(8)]
    assert recs[0]["gold_raw"].endswith("18") and recs[0]["gold"] == "18"
    m = metrics["benchmarks"]["gsm8k"]
    assert m["accuracy"] == 0.5 and m["n_problems"] == 8 and m["pass_at_k"] == {"1": 0.5}
    assert 0 < m["ci95_wilson"][0] < 0.5 < m["ci95_wilson"][1] < 1
    assert m["tokens_generated"] == sum(r["tokens"]["generated"] for r in recs)
    man = json.loads((Path(cfg.out_dir) / "manifest.json").read_text())
    import hashlib

    assert man["data"]["gsm8k"]["sha256"] == hashlib.sha256(benchmark_file("gsm8k").read_bytes()).hexdigest()
    assert man["versions"]["mathforge"] and "sympy" in man["versions"] and "math-verify" in man["versions"]
    assert man["config"]["style"] == "cot" and man["grader_version"]
    assert json.loads((Path(cfg.out_dir) / "metrics.json").read_text())["benchmarks"]["gsm8k"]["accuracy"] == 0.5


def test_sampling_metrics_maj_and_pass(tmp_path):
    # per problem 4 samples: wrong, gold, gold, other-wrong -> first sample wrong, maj@4 right, pass@4 right
    def respond(prompt, j):
        g = _gold_of(prompt)
        return f"The answer is {[str(int(g) + 1), g, g, str(int(g) + 2)][j]}."

    cfg = _cfg(tmp_path, n=4, temperature=0.8, limit=4)
    m = evaluate(cfg, FakeEngine(respond))["benchmarks"]["gsm8k"]
    assert m["accuracy"] == 0.0
    assert m["pass_at_k"]["1"] == 0.5 and m["pass_at_k"]["4"] == 1.0
    assert m["pass_at_k"]["2"] == pytest.approx(1 - 1 / 6)
    assert m["maj_at_k"]["4"] == 1.0 and m["sample_accuracy"] == 0.5
    assert m["n_samples"] == 16


def test_resume_after_crash_gives_same_metrics_and_skips_done(tmp_path):
    full = evaluate(_cfg(tmp_path, out_dir=str(tmp_path / "full")), FakeEngine(cot_right_on_even))
    cfg = _cfg(tmp_path, out_dir=str(tmp_path / "resumed"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(cfg, FakeEngine(cot_right_on_even, fail_after=2))
    out = Path(cfg.out_dir) / "outputs.jsonl"
    assert len(load_records(out)) == 6  # two batches of 3 were flushed before the crash
    with out.open("a") as f:
        f.write('{"dataset": "gsm8k", "idx": "torn')  # a kill in the middle of a write
    again = FakeEngine(cot_right_on_even)
    resumed = evaluate(cfg, again)
    assert sum(len(c) for c in again.calls) == 2  # only the two problems not yet done
    strip = lambda m: {k: v for k, v in m["benchmarks"]["gsm8k"].items() if "second" not in k}  # noqa: E731
    assert strip(resumed) == strip(full)
    assert len(load_records(out)) == 8 and out.read_text().endswith("}\n")


def test_resume_refuses_a_different_config(tmp_path):
    evaluate(_cfg(tmp_path, limit=2), FakeEngine(cot_right_on_even))
    with pytest.raises(ValueError, match="different settings.*style"):
        evaluate(_cfg(tmp_path, limit=2, style="direct"), FakeEngine(cot_right_on_even))
    evaluate(_cfg(tmp_path, limit=2, batch_size=1, workers=2), FakeEngine(cot_right_on_even))  # volatile keys ok


def test_config_validation():
    with pytest.raises(ValueError, match="unknown prompt style"):
        EvalConfig(model="m", benchmarks=["gsm8k"], out_dir="x", style="bogus")
    with pytest.raises(ValueError, match="identical samples"):
        EvalConfig(model="m", benchmarks=["gsm8k"], out_dir="x", n=4)
    with pytest.raises(ValueError, match="ks"):
        EvalConfig(model="m", benchmarks=["gsm8k"], out_dir="x", n=2, temperature=1.0, ks=[4])
    assert EvalConfig(model="m", benchmarks=["g"], out_dir="x", n=8, temperature=1.0).ks == [1, 2, 4, 8]


def test_prm800k_answer_marker(tmp_path):
    def respond(prompt, j):
        return f"Step one.\n\nStep two gives 3 and 4.\n\n# Answer\n\n{_gold_of(prompt.replace('# Question', 'Question:'))}"

    m = evaluate(_cfg(tmp_path, style="prm800k", limit=3), FakeEngine(respond))["benchmarks"]["gsm8k"]
    assert m["accuracy"] == 1.0


# ------------------------------------------------------------------ code styles (real sandbox)


def test_extract_program_rules():
    ctx = ("a\n```python\nimport math\nx = 1/0\nprint(x)\n```\n```output\nZeroDivisionError: division by zero\n```\n"
           "b\n```python\nfrom fractions import Fraction\ny = 2\nprint(y)\n```\n```output\n2\n```\n"
           "c\n```python\nprint(y + 1)\n```")
    prog = extract_program(ctx)
    # failed block keeps only its imports; earlier blocks lose print lines; the last block is whole
    assert prog == "import math\nfrom fractions import Fraction\ny = 2\nprint(y + 1)"
    assert extract_program("no code here") == ""


def pot_respond(prompt, j):
    i = _idx(prompt)
    if i == 1:
        return "```python\nprint(1/0)\n```"
    if i == 2:
        return "```python\nwhile True:\n    pass\n```"
    return f"```python\nx = {_gold_of(prompt)}\nprint(x)\n```\n```output\nhallucinated\n```"


def test_pot_runs_programs_and_flags_errors(tmp_path):
    cfg = _cfg(tmp_path, style="pot", limit=4, exec_timeout=1.0)
    evaluate(cfg, FakeEngine(pot_respond))
    recs = load_records(Path(cfg.out_dir) / "outputs.jsonl")
    assert [r["correct"] for r in recs] == [True, False, False, True]
    assert recs[0]["programs"] == ["x = 18\nprint(x)"] and recs[0]["extracted"] == "18"
    assert recs[1]["flags"]["exec_error"] and "ZeroDivisionError" in recs[1]["exec_reports"][0]["error"]
    assert recs[2]["flags"]["exec_timeout"] and not recs[2]["flags"]["exec_error"]


def test_pal_uses_the_return_value(tmp_path):
    def respond(prompt, j):
        return f"```python\ndef solution():\n    return {_gold_of(prompt)}\n```"

    m = evaluate(_cfg(tmp_path, style="pal", limit=2), FakeEngine(respond))["benchmarks"]["gsm8k"]
    assert m["accuracy"] == 1.0


def tora_respond(prompt, j):
    g = _gold_of(prompt)
    rounds = prompt.count("```output")
    if rounds == 0:
        return f"First compute half.\n```python\nhalf = {g} * 2\nprint(half)\n```\n```output\nfake"
    if rounds == 1:
        assert re.search(r"```output\n\d+\n```\n$", prompt)  # the real result was appended
        return "Now halve it back.\n```python\nprint(half // 2)\n```"
    return f"So the answer is $\\boxed{{{prompt.rsplit('```output', 1)[1].split()[0]}}}$.\n\n---\nQuestion: x"


def test_tora_loop_runs_code_in_rounds(tmp_path):
    cfg = _cfg(tmp_path, style="tora", limit=3)
    engine = FakeEngine(tora_respond)
    m = evaluate(cfg, engine)["benchmarks"]["gsm8k"]
    recs = load_records(Path(cfg.out_dir) / "outputs.jsonl")
    assert m["accuracy"] == 1.0
    assert len(engine.calls) == 3  # three batched rounds for all problems together
    r = recs[0]
    assert r["rounds"] == 3 and len(r["programs"]) == 2
    assert r["programs"][1] == "half = 18 * 2\nprint(half // 2)"  # earlier prints dropped, state kept
    assert "```output\n36\n```" in r["generation"] and "```output\n18\n```" in r["generation"]
    assert r["generation"].rstrip().endswith("$\\boxed{18}$.")


def test_tora_stops_at_the_call_limit(tmp_path):
    def always_code(prompt, j):
        return "```python\nprint(7)\n```"

    cfg = _cfg(tmp_path, style="tora", limit=1, max_rounds=2)
    engine = FakeEngine(always_code)
    evaluate(cfg, engine)
    r = load_records(Path(cfg.out_dir) / "outputs.jsonl")[0]
    assert len(r["programs"]) == 2 and len(engine.calls) == 2
    assert r["flags"]["call_limit"] and r["generation"].endswith(LIMIT_NOTE)


def test_compute_metrics_breakdown_by_level():
    recs = []
    for i, (level, ok) in enumerate([(1, True), (1, False), (2, True), (3, False)]):
        recs.append({"dataset": "math", "idx": str(i), "sample_id": 0, "extracted": "1", "correct": ok,
                     "flags": {}, "meta": {"level": level, "type": "Algebra"}, "tokens": {"generated": 10},
                     "timing": {"generate_s": 0.5}})
    m = compute_metrics(recs, ks=[1])["benchmarks"]["math"]
    assert m["by_level"] == {"1": {"n": 2, "correct": 1, "accuracy": 0.5},
                             "2": {"n": 1, "correct": 1, "accuracy": 1.0},
                             "3": {"n": 1, "correct": 0, "accuracy": 0.0}}
    assert m["by_type"]["Algebra"]["accuracy"] == 0.5 and m["tokens_per_second"] == 20.0


def test_multiple_choice_benchmark_uses_choice_extraction(tmp_path):
    from mathforge.data import load_benchmark as lb

    golds = {p.question: p.answer for p in lb("aqua", limit=4)}

    def respond(prompt, j):
        i, (q, gold) = next((i, qa) for i, qa in enumerate(golds.items()) if qa[0] in prompt)
        letter = gold if i < 2 else "E" if gold != "E" else "A"
        return f"Working it out, the answer is ({letter}). Answer: {letter}"

    cfg = _cfg(tmp_path, benchmarks=["aqua"], limit=4)
    evaluate(cfg, FakeEngine(respond))
    recs = load_records(Path(cfg.out_dir) / "outputs.jsonl")
    assert [r["extracted"] for r in recs[:2]] == [golds[recs[0]["question"]], golds[recs[1]["question"]]]
    assert [r["correct"] for r in recs][:2] == [True, True]
    assert not any(r["correct"] for r in recs[2:])


def test_grade_pool_processes_match_in_process():
    from mathforge.grading.jobs import GradePool, grade_sample

    items = [{"text": f"so the answer is $\\boxed{{{a}}}$", "extract_style": "auto", "marker": None,
              "gold": g, "opts": {}, "profile": "default", "question": None, "timeout": 3.0}
             for a, g in [("\\frac12", "0.5"), ("3", "4"), ("(1,2)", "(1, 2)"), ("x^2+2x+1", "(x+1)^2")]]
    with GradePool(2, min_parallel=1) as pool:
        parallel = pool.map(items * 3)
        warm = pool.map_fn(_sympy_worker_ready, [None] * 8)
    serial = [grade_sample(it) for it in items * 3]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "grade_s"} for r in rs]  # noqa: E731
    assert strip(parallel) == strip(serial)
    assert [r["verdict"] for r in serial[:4]] == ["correct", "wrong", "correct", "correct"]
    assert all(warm)  # each pool process started its SymPy worker in its initializer


def _sympy_worker_ready(_) -> bool:
    from mathforge.grading import worker

    pool = worker._POOL
    return pool is not None and any(w.ready.is_set() for w in pool.idle)


def _rewrite(path: Path, edit) -> None:
    recs = load_records(path)
    for i, r in enumerate(recs):
        edit(i, r)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_finalize_regrades_stale_records_and_recorded_timeouts(tmp_path):
    from mathforge.evaluate import finalize

    cfg = _cfg(tmp_path)
    first = evaluate(cfg, FakeEngine(cot_right_on_even))
    assert first["grading"] == {"profile": "default", "grader_version": first["grading"]["grader_version"],
                                "regraded_stale": 0, "timeouts_retried": 0}
    out = Path(cfg.out_dir) / "outputs.jsonl"

    def damage(i, r):
        if i == 0:  # as if graded by another grader: a stale key and a wrong verdict
            r.update(grade_key="0" * 16, correct=False, verdict="wrong")
        if i == 2:  # a recorded timeout
            r.update(correct=False, verdict="timeout", flags={**r["flags"], "grade_timeout": True})

    _rewrite(out, damage)
    m = finalize(Path(cfg.out_dir), cfg)
    assert m["grading"]["regraded_stale"] == 1 and m["grading"]["timeouts_retried"] == 1
    recs = load_records(out)
    assert [r["correct"] for r in recs] == [i % 2 == 0 for i in range(8)]
    assert not any(r["flags"]["grade_timeout"] for r in recs) and recs[2]["verdict"] == "correct"
    assert m["benchmarks"]["gsm8k"] == {**first["benchmarks"]["gsm8k"], "generate_seconds": ANY, "tokens_per_second": ANY}


def test_timeouts_are_counted_apart_from_wrong():
    recs = [{"dataset": "math", "idx": str(i), "sample_id": 0, "extracted": "1", "correct": ok, "verdict": v,
             "flags": {"grade_timeout": v == "timeout"}, "meta": {}, "tokens": {"generated": 1},
             "timing": {"generate_s": 0.1}} for i, (ok, v) in enumerate([(True, "correct"), (False, "wrong"),
                                                                         (False, "timeout"), (False, "timeout")])]
    m = compute_metrics(recs, ks=[1])["benchmarks"]["math"]
    assert m["verdicts"] == {"correct": 1, "wrong": 1, "timeout": 2} and m["accuracy"] == 0.25
    assert m["flags"]["grade_timeout"]["count"] == 2


def test_profile_is_recorded_and_a_new_profile_regrades_without_generating(tmp_path):
    cfg = _cfg(tmp_path, limit=4)
    evaluate(cfg, FakeEngine(cot_right_on_even))
    engine = FakeEngine(cot_right_on_even)
    m = evaluate(_cfg(tmp_path, limit=4, profile="harness"), engine)
    assert engine.calls == [] and m["grading"]["regraded_stale"] == 4
    assert m["run"]["profile"] == m["grading"]["profile"] == "harness"
    assert {r["profile"] for r in load_records(Path(cfg.out_dir) / "outputs.jsonl")} == {"harness"}
    assert json.loads((Path(cfg.out_dir) / "manifest.json").read_text())["profile"] == "harness"
    with pytest.raises(ValueError, match="unknown grading profile 'no-such-profile'"):
        _cfg(tmp_path, profile="no-such-profile")


def test_eval_cli_passes_the_profile_and_prints_wrong_and_timeouts_apart(tmp_path, capsys, monkeypatch):
    import argparse

    monkeypatch.setenv("COLUMNS", "200")  # one line per row, so the column names are whole words
    from mathforge.cli import eval as eval_cli

    parser = argparse.ArgumentParser()
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "--model", "m", "--benchmark", "gsm8k", "--profile", "harness"])
    assert args.profile == "harness"
    m = evaluate(_cfg(tmp_path, limit=4, profile="harness"), FakeEngine(cot_right_on_even))
    eval_cli._print_summary(m, "run")
    text = capsys.readouterr().out
    assert "timeout" in text and "wrong" in text and "profile harness" in text and "0 timeouts retried" in text
