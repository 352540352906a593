"""`mathforge grade OUTPUTS.jsonl [--benchmark NAME | --gold-field FIELD]`: grade model outputs.

Thin wrapper over `mathforge.grade_outputs.grade_outputs`; the accepted file shapes are listed in
that module's docstring. Library code is imported inside `run()` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "grade", help="grade a JSONL file of model outputs (resumable, parallel)",
        description="Grade model outputs against a shipped benchmark, a gold field of each line, or (an "
                    "outputs.jsonl of `mathforge eval`, several benchmarks included) each line's dataset. "
                    "Accepted lines: {id|idx, responses: [...]} or {id|idx, response[, sample]} "
                    "(also generation(s)/completion(s)); other layouts: --response-field, --id-field. "
                    "Writes verdicts.jsonl, summary.json, run.json; re-running resumes.")
    p.add_argument("outputs", type=Path, help="JSONL of model outputs")
    gold = p.add_mutually_exclusive_group()
    gold.add_argument("--benchmark", help="shipped benchmark whose problem ids the outputs use (0-based index)")
    gold.add_argument("--gold-field", help="field (dotted path) of each line holding the gold answer")
    p.add_argument("--response-field", default=None,
                   help="field (dotted path) of the response text or list of texts (default: response(s), "
                        "generation(s) or completion(s))")
    p.add_argument("--id-field", default=None,
                   help="field (dotted path) naming the problem (default: id or idx, else the line number)")
    p.add_argument("--split", default="test", help="benchmark split (default: test)")
    p.add_argument("--answer-rule", default=None,
                   help="how to read --gold-field: raw (default), number, gsm8k (after ####), boxed, choice")
    p.add_argument("--style", default=None,
                   help="answer extraction style (default: the benchmark's, else auto)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: OUTPUTS stem + '.graded')")
    p.add_argument("--workers", type=int, default=1, help="grading processes (default 1: in this process)")
    p.add_argument("--chunk-size", type=int, default=16, help="problems per worker task")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per comparison (default 3)")
    p.add_argument("--profile", default="default",
                   help="grading profile: default (no false positives), harness (the inherited lenient "
                        "math-evaluation-harness rules), math-verify, ... (mathforge.grading.profiles)")
    p.add_argument("--restart", action="store_true", help="discard verdicts of an earlier run in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--seed", type=int, default=0, help="seed of the maj@k subsets")


def run(args: argparse.Namespace) -> int:
    from mathforge.grade_outputs import GradeConfig, grade_outputs

    out = args.out or args.outputs.with_name(args.outputs.stem + ".graded")
    cfg = GradeConfig(outputs=args.outputs, out_dir=out, benchmark=args.benchmark, split=args.split,
                      gold_field=args.gold_field, response_field=args.response_field, id_field=args.id_field,
                      answer_rule=args.answer_rule, style=args.style,
                      workers=args.workers, chunk_size=args.chunk_size, timeout=args.timeout,
                      profile=args.profile, restart=args.restart, progress=not args.no_progress, seed=args.seed)
    summary = grade_outputs(cfg)
    print_summary(summary, out)
    return 0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def print_summary(summary: dict, out: Path) -> None:
    """A readable table of the summary (rich)."""
    from rich.console import Console
    from rich.table import Table

    from mathforge.cli._tables import print_table

    console = Console()
    lo, hi = summary["ci95_wilson"]
    table = Table(title=f"mathforge grade — {summary['n_problems']} problems, {summary['n_samples']} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("accuracy (sample 0) %", f"{_pct(summary['accuracy'])}  [{_pct(lo)}, {_pct(hi)}] Wilson 95%")
    table.add_row("mean sample accuracy %", _pct(summary["sample_accuracy"]))
    for k, v in summary["pass_at_k"].items():
        table.add_row(f"pass@{k} %", _pct(v))
    for k, v in summary.get("maj_at_k", {}).items():
        table.add_row(f"maj@{k} %", _pct(v))
    table.add_row("extraction failures", f"{summary['extraction_failed']} ({_pct(summary['extraction_failure_rate'])}%)")
    v, sv = summary["verdicts"], summary["sample_verdicts"]
    table.add_row("correct / wrong / timeout (sample 0)", f"{v['correct']} / {v['wrong']} / {v['timeout']}")
    table.add_row("correct / wrong / timeout (all)", f"{sv['correct']} / {sv['wrong']} / {sv['timeout']}")
    run = summary.get("run", {})
    table.add_row("re-graded now: stale / timeouts retried",
                  f"{run.get('regraded_stale', 0)} / {run.get('timeouts_retried', 0)}")
    table.add_row("grader profile / version", f"{summary['profile']} / {summary['grader_version']}")
    print_table(table, console)
    for field, groups in summary.get("breakdown", {}).items():
        sub = Table(title=f"accuracy by {field} (sample 0)")
        for col in (field, "n", "accuracy %"):
            sub.add_column(col, justify="right" if col != field else "left")
        for key, g in groups.items():
            sub.add_row(key, str(g["n"]), _pct(g["accuracy"]))
        print_table(sub, console)
    console.print(f"verdicts and summary.json in {out}")
