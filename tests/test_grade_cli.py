"""`mathforge grade`: shapes, parallel == serial, resume after SIGKILL, clear errors on bad input."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mathforge.grade_outputs import GradeConfig, grade_outputs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "gsm8k_outputs.jsonl"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


# The real entry point `mathforge.cli.main` (argument parsing, exit codes, error lines), with only
# `grade` registered so these tests do not depend on the other subcommands' modules.
DRIVER = ("import sys, mathforge.cli as c; c.COMMANDS = {'grade': 'grade'}; "
          "sys.exit(c.main(['grade', *sys.argv[1:]]))")


def grade_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER, *args, "--no-progress"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(grade_cmd(*args), capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=timeout)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def verdicts(out: Path) -> dict[tuple[str, int], dict]:
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    return {(r["id"], r["sample"]): r for r in rows}


def stable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "run"}


def toy_rows(n: int, k: int = 4) -> list[dict]:
    """Problem i has gold i; its samples are right, wrong, unanswered, or a fraction form."""
    rows = []
    for i in range(n):
        forms = [f"We get {i}. The answer is {i}.", f"The answer is {i + 1}.", "I am not sure.",
                 f"So the answer is $\\boxed{{\\frac{{{2 * i}}}{{2}}}}$."]
        rows.append({"id": f"p{i}", "gold": str(i), "level": i % 3, "responses": forms[:k]})
    return rows


def test_example_file_grades_as_constructed_and_is_reproducible(tmp_path):
    summary = grade_outputs(GradeConfig(EXAMPLE, tmp_path / "g", benchmark="gsm8k", progress=False))
    lines = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    got = verdicts(tmp_path / "g")
    assert len(lines) == 50 and summary["n_samples"] == 200
    for line in lines:
        for j, kind in enumerate(line["kinds"]):
            if kind in ("correct", "boxed", "slip"):
                assert got[(line["id"], j)]["correct"] == (kind != "slip"), (line["id"], j, kind)
    assert 0.4 < summary["accuracy"] < 0.9 and summary["pass_at_k"][4] >= summary["pass_at_k"][1]
    # The shipped file is exactly what its generator writes.
    gen = runpy.run_path(str(EXAMPLE.with_name("make_gsm8k_outputs.py")))
    gen["main"].__globals__["OUT"] = tmp_path / "regen.jsonl"
    gen["main"]()
    assert (tmp_path / "regen.jsonl").read_bytes() == EXAMPLE.read_bytes()


def test_shapes_agree_and_summary_metrics(tmp_path):
    rows = toy_rows(12)
    per_problem = write_jsonl(tmp_path / "a.jsonl", rows)
    per_sample = write_jsonl(tmp_path / "b.jsonl", [
        {"idx": r["id"], "sample": j, "response": t, "gold": r["gold"], "level": r["level"]}
        for r in reversed(rows) for j, t in reversed(list(enumerate(r["responses"])))])
    a = grade_outputs(GradeConfig(per_problem, tmp_path / "ga", gold_field="gold", progress=False))
    b = grade_outputs(GradeConfig(per_sample, tmp_path / "gb", gold_field="gold", progress=False))
    assert verdicts(tmp_path / "ga") == verdicts(tmp_path / "gb")
    assert a["accuracy"] == 1.0 and a["sample_accuracy"] == pytest.approx(0.5)
    assert a["pass_at_k"] == {1: 0.5, 2: pytest.approx(5 / 6), 4: 1.0}
    # \frac{2i}{2} clusters with i, so the vote among all four samples is always right.
    assert a["maj_at_k"][4] == 1.0
    assert a["extraction_failed"] == 12 and a["extraction_failure_rate"] == 0.25
    assert set(a["breakdown"]["level"]) == {"0", "1", "2"} and stable(a) == stable(b)


def test_cli_parallel_equals_serial_and_prints_table(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", toy_rows(40))
    serial = grade_outputs(GradeConfig(f, tmp_path / "s", gold_field="gold", progress=False))
    proc = cli(str(f), "--gold-field", "gold", "--out", str(tmp_path / "p"), "--workers", "2", "--chunk-size", "3")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "maj@4" in proc.stdout and "pass@2" in proc.stdout
    parallel = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert verdicts(tmp_path / "p") == verdicts(tmp_path / "s")
    assert stable(parallel) == json.loads(json.dumps(stable(serial)))


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    n = 800
    f = write_jsonl(tmp_path / "big.jsonl", toy_rows(n))
    full = grade_outputs(GradeConfig(f, tmp_path / "full", gold_field="gold", progress=False))
    out = tmp_path / "killed"
    # The run kills itself with SIGKILL right after 50 problems are on disk (fault injection), so the
    # interruption point is exact on any machine, fast or slow.
    proc = subprocess.run(grade_cmd(str(f), "--gold-field", "gold", "--out", str(out), "--chunk-size", "1"),
                          cwd=ROOT, env={**ENV, "MATHFORGE_TEST_KILL_AFTER": "50"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == -signal.SIGKILL
    path = out / "verdicts.jsonl"
    written = path.read_bytes().count(b"\n")
    assert written == 4 * 50, "exactly the 50 problems written before the kill are on disk"
    assert not (out / "summary.json").exists()
    proc = cli(str(f), "--gold-field", "gold", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["run"]["resumed"] >= written // 4 - 1 and resumed["run"]["graded_now"] < n
    assert stable(resumed) == json.loads(json.dumps(stable(full)))


def test_bad_input_names_file_line_field_and_keeps_verdicts(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", toy_rows(5))
    out = tmp_path / "g"
    assert cli(str(f), "--gold-field", "gold", "--out", str(out)).returncode == 0
    before = (out / "verdicts.jsonl").read_bytes()
    with f.open("a") as fh:
        fh.write('{"id": "p9", "gold": "9", "responses": ["x"]\n')  # unterminated object on line 6
    proc = cli(str(f), "--gold-field", "gold", "--out", str(out))
    assert proc.returncode == 2 and "o.jsonl:6: malformed JSON" in proc.stderr
    assert (out / "verdicts.jsonl").read_bytes() == before
    write_jsonl(f, [*toy_rows(2), {"id": "p7", "gold": "1"}])
    with pytest.raises(ValueError, match=r"o.jsonl:3: missing field 'response'"):
        grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    write_jsonl(f, [*toy_rows(1), {"id": "p8", "gold": "1", "responses": []}])
    with pytest.raises(ValueError, match=r"o.jsonl:2: field 'responses': empty list"):
        grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    write_jsonl(f, [{"id": "p7", "responses": ["1"]}])
    with pytest.raises(ValueError, match=r"o.jsonl:1: missing field 'answer'"):
        grade_outputs(GradeConfig(f, out, gold_field="answer", progress=False))
    assert (out / "verdicts.jsonl").read_bytes() == before
    write_jsonl(f, [{"id": 99999, "responses": ["1"]}])
    with pytest.raises(ValueError, match=r"o.jsonl:1: id '99999' is not a problem of gsm8k"):
        grade_outputs(GradeConfig(f, tmp_path / "h", benchmark="gsm8k", progress=False))


def test_out_dir_of_another_run_is_refused_unless_restarted(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", [{**r, "alt": "0"} for r in toy_rows(3)])
    out = tmp_path / "g"
    grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    with pytest.raises(ValueError, match="another run.*gold_field"):
        grade_outputs(GradeConfig(f, out, gold_field="alt", progress=False))
    s = grade_outputs(GradeConfig(f, out, gold_field="alt", restart=True, progress=False))
    assert s["run"]["graded_now"] == 3 and len(verdicts(out)) == 12
    with pytest.raises(ValueError, match="not both"):
        GradeConfig(f, out, benchmark="gsm8k", gold_field="gold")
    with pytest.raises(ValueError, match="o.jsonl:1: no gold: give --benchmark or --gold-field"):
        grade_outputs(GradeConfig(f, tmp_path / "g2", progress=False))  # no dataset field either


def test_partial_last_line_is_cut_and_its_problem_regraded(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", toy_rows(6))
    out = tmp_path / "g"
    full = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    path = out / "verdicts.jsonl"
    path.write_bytes(path.read_bytes()[:-25])  # as if killed in the middle of the last write
    again = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert again["run"]["graded_now"] == 1 and stable(again) == stable(full)
    assert path.read_bytes().endswith(b"\n") and len(verdicts(out)) == 24


def test_changed_file_or_grader_is_regraded_with_the_same_out(tmp_path, monkeypatch):
    rows = [{"id": "a", "gold": "6", "responses": ["The answer is 5."]},
            {"id": "b", "gold": "7", "responses": ["The answer is 7.", "The answer is 8."]}]
    f = write_jsonl(tmp_path / "o.jsonl", rows)
    out = tmp_path / "g"
    first = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert first["verdicts"] == {"correct": 1, "wrong": 1, "timeout": 0} and first["run"]["regraded_stale"] == 0
    same = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert same["run"]["graded_now"] == 0 and same["run"]["regraded_stale"] == 0
    # The model's answer to "a" changes in place: same path, same --out; its verdict must follow.
    rows[0]["responses"] = ["The answer is 6."]
    write_jsonl(f, rows)
    again = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert verdicts(out)[("a", 0)]["correct"] is True and verdicts(out)[("a", 0)]["extracted"] == "6"
    assert again["run"]["regraded_stale"] == 1 and again["run"]["graded_now"] == 1
    assert again["verdicts"] == {"correct": 2, "wrong": 0, "timeout": 0}
    assert (out / "verdicts.jsonl").read_text().count("\n") == 3  # one line per current sample
    # A new grader version (or another profile) makes every stored verdict stale.
    from mathforge.grading import equivalence

    monkeypatch.setattr(equivalence, "GRADER_VERSION", equivalence.GRADER_VERSION + "-next")
    newer = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert newer["run"]["regraded_stale"] == 3 and newer["run"]["graded_now"] == 2
    harness = grade_outputs(GradeConfig(f, out, gold_field="gold", profile="harness", progress=False))
    assert harness["run"]["regraded_stale"] == 3 and harness["profile"] == "harness"
    assert json.loads((out / "summary.json").read_text())["profile"] == "harness"


SLOW = "(10^{7})!"  # reaches SymPy, which computes 10^7! far longer than any timeout here


def test_timeout_is_its_own_verdict_retried_and_regraded(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", [{"id": "slow", "gold": "5", "responses": [f"$\\boxed{{{SLOW}}}$"]},
                                           {"id": "ok", "gold": "5", "responses": ["The answer is 5."]},
                                           {"id": "no", "gold": "5", "responses": ["The answer is 4."]}])
    out = tmp_path / "g"
    s = grade_outputs(GradeConfig(f, out, gold_field="gold", timeout=0.3, progress=False))
    row = verdicts(out)[("slow", 0)]
    assert row["verdict"] == "timeout" and row["correct"] is False and row["timed_out"] is True
    assert row["attempts"] == 2  # retried once on a warm worker before it was recorded
    assert s["verdicts"] == {"correct": 1, "wrong": 1, "timeout": 1} and s["grade_timeout"] == 1
    assert s["accuracy"] == pytest.approx(1 / 3)  # a timeout is not correct either
    again = grade_outputs(GradeConfig(f, out, gold_field="gold", timeout=0.3, progress=False))
    assert again["run"]["timeouts_retried"] == 1 and again["run"]["graded_now"] == 1
    assert again["run"]["regraded_stale"] == 0 and again["verdicts"]["timeout"] == 1


# Pairs the fast numeric layer leaves to the SymPy worker (checked below, so the load test means
# what it says): a cold worker's start-up used to be charged to exactly these comparisons.
SYMPY_PAIRS = [("\\sin 2x", "2\\sin x\\cos x"), ("\\cos 2x", "1-2\\sin^2 x"),
               ("(\\sin 2x, \\cos 2x)", "(2\\sin x\\cos x, 1-2\\sin^2 x)")]


def test_sympy_pairs_reach_the_worker(monkeypatch):
    from mathforge.grading import equivalence, grade, worker

    calls = []
    real = worker.symbolic_equal
    monkeypatch.setattr(worker, "symbolic_equal", lambda a, b, **kw: calls.append((a, b)) or real(a, b, **kw))
    equivalence.clear_caches()
    for pred, gold in SYMPY_PAIRS:
        n = len(calls)
        assert grade(pred=pred, gold=gold, timeout=60).correct
        assert len(calls) > n, f"{pred} vs {gold} no longer reaches SymPy: pick another pair"


def test_concurrent_cold_graders_on_a_loaded_machine_never_call_a_timeout_wrong(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", [{"id": str(i), "gold": g, "responses": [f"$\\boxed{{{p}}}$"]}
                                           for i, (p, g) in enumerate(SYMPY_PAIRS)])
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        procs = [subprocess.Popen(grade_cmd(str(f), "--gold-field", "gold", "--out", str(tmp_path / f"g{k}")),
                                  cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for k in range(6)]
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for b in burners:
            b.kill()
            b.wait()
    for k, (p, err) in enumerate(zip(procs, errors, strict=True)):
        assert p.returncode == 0, err
        rows = verdicts(tmp_path / f"g{k}").values()
        summary = json.loads((tmp_path / f"g{k}" / "summary.json").read_text())
        # Correct, or at worst an explicit timeout that no summary counts as wrong.
        assert all(r["verdict"] in ("correct", "timeout") for r in rows), rows
        assert all(r["correct"] == (r["verdict"] == "correct") for r in rows)
        assert summary["verdicts"]["wrong"] == 0 and summary["sample_verdicts"]["wrong"] == 0
        assert summary["verdicts"]["timeout"] == sum(r["verdict"] == "timeout" for r in rows)


def test_cli_profile_is_used_recorded_and_checked(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", toy_rows(2))
    proc = cli(str(f), "--gold-field", "gold", "--out", str(tmp_path / "h"), "--profile", "harness")
    assert proc.returncode == 0, proc.stderr
    assert "harness" in proc.stdout and "correct / wrong / timeout" in proc.stdout
    assert json.loads((tmp_path / "h" / "summary.json").read_text())["profile"] == "harness"
    assert json.loads((tmp_path / "h" / "run.json").read_text())["profile"] == "harness"
    proc = cli(str(f), "--gold-field", "gold", "--out", str(tmp_path / "x"), "--profile", "no-such-profile")
    assert proc.returncode == 2 and "unknown grading profile 'no-such-profile'" in proc.stderr
