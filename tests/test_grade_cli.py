"""`mathforge grade`: shapes, parallel == serial, resume after SIGKILL, clear errors on bad input."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
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
    proc = subprocess.Popen(grade_cmd(str(f), "--gold-field", "gold", "--out", str(out), "--chunk-size", "1"),
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path, deadline = out / "verdicts.jsonl", time.time() + 60
    while time.time() < deadline and not (path.exists() and path.stat().st_size > 20_000):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = path.read_bytes().count(b"\n")
    assert 0 < written < 4 * n, "the run must be killed mid-way for this test to mean anything"
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
    with pytest.raises(ValueError, match=r"o.jsonl:1: field 'id': '99999' is not a problem of gsm8k"):
        grade_outputs(GradeConfig(f, tmp_path / "h", benchmark="gsm8k", progress=False))


def test_out_dir_of_another_run_is_refused_unless_restarted(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", [{**r, "alt": "0"} for r in toy_rows(3)])
    out = tmp_path / "g"
    grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    with pytest.raises(ValueError, match="another run.*gold_field"):
        grade_outputs(GradeConfig(f, out, gold_field="alt", progress=False))
    s = grade_outputs(GradeConfig(f, out, gold_field="alt", restart=True, progress=False))
    assert s["run"]["graded_now"] == 3 and len(verdicts(out)) == 12
    with pytest.raises(ValueError, match="exactly one of"):
        GradeConfig(f, out)


def test_partial_last_line_is_cut_and_its_problem_regraded(tmp_path):
    f = write_jsonl(tmp_path / "o.jsonl", toy_rows(6))
    out = tmp_path / "g"
    full = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    path = out / "verdicts.jsonl"
    path.write_bytes(path.read_bytes()[:-25])  # as if killed in the middle of the last write
    again = grade_outputs(GradeConfig(f, out, gold_field="gold", progress=False))
    assert again["run"]["graded_now"] == 1 and stable(again) == stable(full)
    assert path.read_bytes().endswith(b"\n") and len(verdicts(out)) == 24
