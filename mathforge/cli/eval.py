"""`mathforge eval`: run a model on benchmarks with a prompt style and write outputs, metrics, manifest.

Benchmarks are shipped names, your own JSONL/JSON files (with --question-field/--answer-field) or
`task:NAME` generators. A thin wrapper over `mathforge.evaluate.evaluate` (docs/methods/evaluation.md §g); with `--strategy` (sample, bon,
wvote, beam, tsmc) over `mathforge.search_eval.evaluate_search` (docs/methods/tsmc.md §e.9), on a benchmark or a
step-formatted `--task`. Re-running the same command on the same `--out` folder resumes a killed run.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model on math benchmarks (resumable)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True,
                   help="a local HF folder, a pretrained name (smollm2-135m-instruct), `openai:URL#MODEL` "
                        "(a server's /v1/completions), `openai-chat:URL#MODEL` (its /v1/chat/completions: "
                        "the server applies the chat template), or `vllm:PATH`")
    p.add_argument("--benchmark", action="append", dest="benchmarks", default=[],
                   help="what to evaluate on (repeat or comma-separate for several): a shipped benchmark "
                        "(gsm8k,math500), a JSONL/JSON file of your own, or a task generator task:NAME "
                        "(task:arithmetic; with --task-seed and --task-args; 500 problems unless --limit)")
    p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                   help="send each prompt as one user turn through the model's chat template (default: "
                        "when the local model's tokenizer has one; recorded in the manifest)")
    p.add_argument("--system", default=None, help="a system message before every prompt (chat templates and "
                                                    "openai-chat: only)")
    f = p.add_argument_group("your own problem file (--benchmark FILE.jsonl)")
    f.add_argument("--question-field", default="question", help="field (dotted path) of the question")
    f.add_argument("--answer-field", default="answer", help="field (dotted path) of the gold answer")
    f.add_argument("--id-field", default=None, help="field naming each problem (default: its line number from 0)")
    f.add_argument("--answer-rule", default=None,
                   help="how to read the answer field: raw (default), number, gsm8k (after ####), boxed, choice")
    p.add_argument("--split", default="test")
    p.add_argument("--style", default="cot", help="prompt style (see `mathforge show-prompt --list`)")
    p.add_argument("--shots", type=int, default=0, help="few-shot demos before the question")
    p.add_argument("--shots-from", default=None,
                   help="where the demos come from: the style's own (default), `train` (the benchmark's train "
                        "split) or a JSONL/JSON file with question, solution and answer fields")
    p.add_argument("--shot-ids", default=None, help="comma-separated indices of the demos in --shots-from "
                                                      "(default: the first --shots)")
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
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/eval/<model>-<benchmarks>-<style>-<shots>shot-<decoding>"
                        "[-limitN]-<hash of every setting that changes a result>, one folder per evaluation)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    s = p.add_argument_group("inference-time search (docs/methods/tsmc.md §e; step-formatted prompts)")
    s.add_argument("--strategy", default=None, help="sample | bon | wvote | beam | tsmc")
    s.add_argument("--value-model", default=None, help="value-model folder (bon, wvote, beam, tsmc)")
    s.add_argument("--task", default=None, help="a step-formatted task instead of a benchmark, e.g. arith_steps")
    s.add_argument("--task-seed", type=int, default=None,
                   help="seed of the task problems (default: 0 for --benchmark task:NAME, a training run's "
                        "held-out draw with seed 0; 2 for --strategy --task)")
    s.add_argument("--task-args", default="{}", help='task keyword arguments as JSON, e.g. \'{"digits": 1}\'')
    s.add_argument("--m", type=int, default=4, help="TSMC group size / beam expansion")
    s.add_argument("--stop-steps", type=int, default=5)
    s.add_argument("--beta", type=float, default=1.0, help="twist temperature")
    s.add_argument("--ess-threshold", type=float, default=1.0, help="resample when ESS < k*M (1 = always)")
    s.add_argument("--top-k", type=int, default=200)
    s.add_argument("--threads", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from mathforge.cli._args import json_object
    from mathforge.evaluate import EvalConfig, evaluate

    if args.strategy is not None:
        return _run_search(args)
    if not args.benchmarks:
        raise ValueError("give --benchmark (or --strategy with --task)")
    names = [b.strip() for spec in args.benchmarks for b in spec.split(",") if b.strip()]
    try:
        shot_ids = [int(x) for x in args.shot_ids.split(",")] if args.shot_ids else []
    except ValueError as exc:
        raise ValueError(f"--shot-ids: {exc}") from None
    task_args = json_object("--task-args", args.task_args)
    try:
        cfg = EvalConfig(model=args.model, benchmarks=names, out_dir=args.out, split=args.split, style=args.style,
                         shots=args.shots, n=args.n, temperature=args.temperature, top_p=args.top_p,
                         max_new_tokens=args.max_new_tokens, seed=args.seed, limit=args.limit,
                         batch_size=args.batch_size, max_rounds=args.max_rounds, exec_timeout=args.exec_timeout,
                         grade_timeout=args.grade_timeout, profile=args.profile, workers=args.workers,
                         ks=args.ks or [], chat=args.chat, system=args.system, question_field=args.question_field,
                         answer_field=args.answer_field, id_field=args.id_field, answer_rule=args.answer_rule,
                         task_seed=0 if args.task_seed is None else args.task_seed, task_args=task_args,
                         shots_from=args.shots_from, shot_ids=shot_ids)
    except ValueError as exc:  # name the flag, not the config field
        raise ValueError(flag_names(str(exc))) from None
    if not args.quiet:
        _print_start(cfg)
    metrics = evaluate(cfg, progress=not args.quiet)
    if not args.quiet:
        _print_summary(metrics, cfg.out_dir)
    return 0


def flag_names(text: str) -> str:
    """`EvalConfig.max_new_tokens` -> `--max-new-tokens` in an error message."""
    import re

    special = {"benchmarks": "--benchmark", "ks": "--k"}
    text = text.replace("EvalConfig: ", "")
    return re.sub(r"EvalConfig\.(\w+)", lambda m: special.get(m[1], "--" + m[1].replace("_", "-")), text)


def _print_start(cfg) -> None:
    """The resolved config, and whether this run resumes an earlier one in the same folder."""
    import dataclasses
    import sys
    from pathlib import Path

    values = " ".join(f"{k}={v}" for k, v in dataclasses.asdict(cfg).items() if k not in ("model", "out_dir"))
    print(f"mathforge eval: {cfg.model} -> {cfg.out_dir}\n  {values}", file=sys.stderr)
    outputs = Path(cfg.out_dir) / "outputs.jsonl"
    if outputs.is_file():
        with outputs.open("rb") as fh:
            n = sum(1 for line in fh if line.strip())
        print(f"mathforge eval: resuming: {n} outputs already in {outputs} are kept (another --out starts afresh)",
              file=sys.stderr)


def _print_summary(metrics: dict, out: str) -> None:
    """metrics.json (fractions) as a table in percent; accuracy with its Wilson 95% CI, the mean
    accuracy over all n samples, and maj/pass at the largest k."""
    from rich.table import Table

    from mathforge.cli._tables import print_table

    g = metrics.get("grading", {})
    table = Table(title=f"mathforge eval -> {out}",
                  caption=f"grader profile {g.get('profile')}, {g.get('grader_version')}; re-graded now: "
                          f"{g.get('regraded_stale', 0)} stale, {g.get('timeouts_retried', 0)} timeouts retried")
    for col in ("benchmark", "problems", "acc % [95% Wilson]", "mean@n %", "wrong", "timeout", "maj@k %",
                "pass@k %", "no answer", "tok/s"):
        table.add_column(col, no_wrap=True)
    for name, m in metrics["benchmarks"].items():
        k = str(max(int(x) for x in m["pass_at_k"]))
        lo, hi = m["ci95_wilson"]
        table.add_row(name, str(m["n_problems"]), f"{100 * m['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]",
                      f"{100 * m['sample_accuracy']:.1f} (n={m['n']})",
                      str(m["verdicts"]["wrong"]), str(m["verdicts"]["timeout"]),
                      f"@{k} {100 * m['maj_at_k'][k]:.1f}", f"@{k} {100 * m['pass_at_k'][k]:.1f}",
                      f"{100 * m['flags']['extraction_failed']['rate']:.1f}%", f"{m['tokens_per_second']:.1f}")
    print_table(table)


def _run_search(args: argparse.Namespace) -> int:
    from mathforge.cli._args import json_object
    from mathforge.eval_runs import default_search_dir
    from mathforge.search_eval import SearchEvalConfig, evaluate_search

    bench = ",".join(args.benchmarks) or None
    cfg = SearchEvalConfig(model=args.model, out_dir=args.out or "", strategy=args.strategy, value_model=args.value_model,
                           benchmark=bench, split=args.split, task=args.task,
                           task_seed=2 if args.task_seed is None else args.task_seed,
                           task_args=json_object("--task-args", args.task_args),
                           limit=args.limit, n=args.n, m=args.m, stop_steps=args.stop_steps, beta=args.beta,
                           ess_threshold=args.ess_threshold, temperature=args.temperature or 0.8, top_k=args.top_k,
                           top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           batch_size=args.batch_size, threads=args.threads)
    out = cfg.out_dir = args.out or default_search_dir(cfg)
    metrics = evaluate_search(cfg, progress=not args.quiet)
    if not args.quiet:
        lo, hi = metrics["ci95_wilson"]
        print(f"{args.strategy} n={args.n}: accuracy {100 * metrics['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
              f"on {metrics['n_problems']} problems, pass@n {100 * metrics['pass_at_n']:.1f}%, "
              f"{metrics['generated_tokens_per_problem']:.0f} generated tokens/problem -> {out}")
    return 0
