"""Bench: the post-generation half of `mathforge eval` on 5,000 MATH problems x 8 samples.

Generations are constructed (not model outputs): each is the problem's own reference solution with
its final answer replaced, so the text around the answer is realistic LaTeX. Per problem a seeded
mix of correct rewrites of the gold (`\\frac` -> `\\dfrac`, spacing, `\\left(`/`\\right)`, `.0`,
"The answer is ..." without a box) and wrong answers (a perturbed number, an extra term), plus an
occasional answer-less sample. They go through exactly the code `mathforge eval` runs after
generation: `build_records` (extract, normalise, grade in parallel processes), `append_records`
(outputs.jsonl) and `compute_metrics` (accuracy + CI, maj@k with equivalence clustering, pass@k,
breakdowns). Prints seconds and items per second per stage; ends with ONE JSON line.

    .venv/bin/python bench/eval_pipeline.py [--limit 5000] [--samples 8] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mathforge.data import load_benchmark  # noqa: E402
from mathforge.data.prompts import build_prompt, get_style  # noqa: E402
from mathforge.evaluate import GradePool, append_records, build_records, compute_metrics  # noqa: E402
from mathforge.infer.tools import Trace  # noqa: E402


def correct_rewrite(gold: str, rng: random.Random) -> str:
    """An equivalent way a model might write `gold`."""
    options = [gold, gold.replace(" ", ""), gold.replace("\\frac", "\\dfrac")]
    if re.fullmatch(r"-?\d+", gold):
        options += [f"{gold}.0", f"{int(gold):,}"]
    if gold.startswith("(") and gold.endswith(")"):
        options.append(f"\\left{gold[:-1]}\\right)")
    m = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", gold)
    if m:
        options.append(f"{m.group(1)}/{m.group(2)}")
    return rng.choice(options)


def wrong_answer(gold: str, rng: random.Random) -> str:
    """A plausible wrong answer: one number perturbed, or an extra term."""
    nums = list(re.finditer(r"\d+", gold))
    if nums and rng.random() < 0.8:
        m = rng.choice(nums)
        return gold[: m.start()] + str(int(m.group()) + rng.choice([1, 2, 3, 9])) + gold[m.end():]
    return f"{gold}+1"


def generation(solution: str, gold: str, answer: str | None, rng: random.Random) -> str:
    """The reference solution with its final answer swapped for `answer` (or removed)."""
    body = solution
    cut = body.rfind("\\boxed")
    if cut >= 0:
        body = body[:cut].rstrip(" $")
    if answer is None:
        return body + " So we are done."
    if rng.random() < 0.15:
        return f"{body}\nThe answer is {answer}."
    return f"{body} $\\boxed{{{answer}}}$."


def make_traces(problems, samples: int, seed: int) -> tuple[list[list[Trace]], list[list[bool]]]:
    rng = random.Random(seed)
    traces, truth = [], []
    for p in problems:
        p_correct = rng.choice([0.1, 0.4, 0.7, 0.95])
        row, row_truth = [], []
        for _ in range(samples):
            r = rng.random()
            if r < 0.03:
                ans, ok = None, False
            elif r < p_correct:
                ans, ok = correct_rewrite(p.answer, rng), True
            else:
                ans, ok = wrong_answer(p.answer, rng), False
            text = generation(p.solution or "", p.answer, ans, rng)
            row.append(Trace(generation=text, n_tokens=len(text) // 4, finish_reason="stop", rounds=1,
                             generate_s=0.0))
            row_truth.append(ok)
        traces.append(row)
        truth.append(row_truth)
    return traces, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    problems = load_benchmark("math", limit=args.limit)
    style = get_style("cot")
    prompts = [build_prompt(p.question, style, shots=4, benchmark="math") for p in problems]
    traces, truth = make_traces(problems, args.samples, args.seed)
    items = len(problems) * args.samples
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= args.samples]
    with tempfile.TemporaryDirectory() as tmp, GradePool(args.workers, min_parallel=1) as pool:
        out = Path(tmp) / "outputs.jsonl"
        t0 = time.perf_counter()
        pool.map_fn(_warm, list(range(pool.workers)))  # start workers (spawn + imports) outside the timing
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        records = build_records(problems, prompts, traces, style=style, pool=pool)
        t_grade = time.perf_counter() - t0
        t0 = time.perf_counter()
        append_records(out, records)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = compute_metrics(records, ks=ks, seed=args.seed, pool=pool)["benchmarks"]["math"]
        t_metrics = time.perf_counter() - t0
    flat_truth = [t for row in truth for t in row]
    agree = sum(r["correct"] == t for r, t in zip(records, flat_truth, strict=True)) / items
    total = t_grade + t_write + t_metrics
    fig = {"bench": "eval_pipeline", "problems": len(problems), "samples": args.samples, "items": items,
           "workers": pool.workers, "pool_start_s": round(t_start, 2), "grade_s": round(t_grade, 2),
           "write_s": round(t_write, 2), "metrics_s": round(t_metrics, 2), "total_s": round(total, 2),
           "items_per_s": round(items / total, 1), "grade_items_per_s": round(items / t_grade, 1),
           "agreement_with_construction": round(agree, 4), "accuracy": metrics["accuracy"],
           "maj_at_k": metrics["maj_at_k"], "pass_at_k": metrics["pass_at_k"],
           "grade_timeouts": metrics["flags"]["grade_timeout"]["count"],
           "extraction_failed": metrics["flags"]["extraction_failed"]["count"]}
    print(f"{items} samples ({len(problems)} problems x {args.samples}), {pool.workers} grading processes")
    print(f"  grade   {t_grade:8.2f} s  {items / t_grade:9.1f} samples/s")
    print(f"  write   {t_write:8.2f} s")
    print(f"  metrics {t_metrics:8.2f} s  (maj@k clustering, pass@k, CIs)")
    print(f"  total   {total:8.2f} s  {items / total:9.1f} samples/s  (pool start {t_start:.2f} s not included)")
    print(f"  verdicts agree with the constructed truth on {100 * agree:.2f}% of samples")
    print(json.dumps(fig))


def _warm(_: int) -> int:
    import mathforge.grading as g

    g.grade(pred="1", gold="1")
    return os.getpid()


if __name__ == "__main__":
    main()
