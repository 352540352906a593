"""`mathforge eval`: run a model on benchmarks with a prompt style and write outputs, metrics, manifest.

A thin wrapper over `mathforge.evaluate.evaluate` (methods.md §g). Re-running the same command on the
same `--out` folder resumes a killed run.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model on math benchmarks (resumable)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a local HF folder, `openai:URL#model`, `vllm:PATH` ...")
    p.add_argument("--benchmark", required=True, action="append", dest="benchmarks",
                   help="benchmark name (repeat or comma-separate for several), e.g. gsm8k,math500")
    p.add_argument("--split", default="test")
    p.add_argument("--style", default="cot", help="prompt style (see `mathforge show-prompt --list`)")
    p.add_argument("--shots", type=int, default=0, help="few-shot demos before the question")
    p.add_argument("--n", type=int, default=1, help="samples per problem")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark")
    p.add_argument("--batch-size", type=int, default=16, help="problems per generate call and per flush")
    p.add_argument("--max-rounds", type=int, default=None, help="code executions per sample (tool styles)")
    p.add_argument("--exec-timeout", type=float, default=5.0)
    p.add_argument("--grade-timeout", type=float, default=3.0)
    p.add_argument("--profile", default="default",
                   help="grading profile: default (no false positives), harness (the inherited lenient "
                        "math-evaluation-harness rules), math-verify, ...; changing it on an existing --out "
                        "re-grades the stored outputs")
    p.add_argument("--workers", type=int, default=None, help="grading/sandbox processes (default: CPUs)")
    p.add_argument("--k", type=int, action="append", dest="ks", default=None, help="k for maj@k / pass@k")
    p.add_argument("--out", default=None, help="run folder (default runs/eval/<model>-<style>-<shots>shot)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")


def run(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from mathforge.evaluate import EvalConfig, evaluate

    names = [b.strip() for spec in args.benchmarks for b in spec.split(",") if b.strip()]
    model_name = re.sub(r"[^\w.-]+", "_", args.model.rstrip("/").rsplit("#", 1)[-1].rsplit("/", 1)[-1])
    out = args.out or str(Path("runs/eval") / f"{model_name}-{args.style}-{args.shots}shot")
    cfg = EvalConfig(model=args.model, benchmarks=names, out_dir=out, split=args.split, style=args.style,
                     shots=args.shots, n=args.n, temperature=args.temperature, top_p=args.top_p,
                     max_new_tokens=args.max_new_tokens, seed=args.seed, limit=args.limit,
                     batch_size=args.batch_size, max_rounds=args.max_rounds, exec_timeout=args.exec_timeout,
                     grade_timeout=args.grade_timeout, profile=args.profile, workers=args.workers,
                     ks=args.ks or [])
    metrics = evaluate(cfg, progress=not args.quiet)
    if not args.quiet:
        _print_summary(metrics, out)
    return 0


def _print_summary(metrics: dict, out: str) -> None:
    from rich.console import Console
    from rich.table import Table

    g = metrics.get("grading", {})
    table = Table(title=f"mathforge eval -> {out}",
                  caption=f"grader profile {g.get('profile')}, {g.get('grader_version')}; re-graded now: "
                          f"{g.get('regraded_stale', 0)} stale, {g.get('timeouts_retried', 0)} timeouts retried")
    for col in ("benchmark", "problems", "acc %", "95% CI", "wrong", "timeout", "maj@k", "pass@k", "no answer",
                "tok/s"):
        table.add_column(col, no_wrap=True)
    for name, m in metrics["benchmarks"].items():
        k = str(max(int(x) for x in m["pass_at_k"]))
        lo, hi = m["accuracy_ci"]
        table.add_row(name, str(m["num_problems"]), f"{m['accuracy']:.1f}", f"[{lo:.1f},{hi:.1f}]",
                      str(m["verdicts"]["wrong"]), str(m["verdicts"]["timeout"]),
                      f"@{k} {m['maj_at_k'][k]:.1f}", f"@{k} {m['pass_at_k'][k]:.1f}",
                      f"{100 * m['flags']['extraction_failed']['rate']:.1f}%", f"{m['tokens_per_second']:.1f}")
    Console().print(table)
