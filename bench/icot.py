"""Implicit against explicit chain of thought: speed and accuracy, side by side in one process.

The implicit model (ICoT-SI / running-sum probe, docs/methods/icot.md §f) answers `a * b||` with `#### c`
directly; the explicit-CoT model writes the §f.3 chain of thought first. Both decode greedily (HF
`generate`, stopping at EOS) on the same shipped test problems, at batch 1 and batch 64, after
one warm-up call each. Throughput is examples per second over the generation calls only (loading,
tokenising and scoring excluded), as in §f.9; accuracy is exact match of the `####` answer
(`extract_answer(style="icot")`) on every problem, with a 95% Wilson interval.

Usage:
    python bench/icot.py --implicit runs/mult4x4-implicit-rsum/model \
        --explicit runs/mult4x4-cot-micro4/model [--k 4] [--n 1000] [--n-b1 100]
Bar (issue 9): implicit_speedup_b1 >= 3. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from mathforge.data.render import render
from mathforge.data.tasks.multiplication import load_shipped
from mathforge.grading import extract_answer
from mathforge.grading.metrics import wilson_interval
from mathforge.models.loading import load_model
from mathforge.models.presets import count_params
from mathforge.train.evaluation import greedy_completions


def prompts_of(examples, tok) -> list[list[int]]:
    out = []
    for ex in examples:
        r = render(ex, tok)
        out.append(r.input_ids[: r.prompt_len])
    return out


def timed(model, tok, prompts, batch_size: int, max_new_tokens: int) -> tuple[list[str], float]:
    greedy_completions(model, tok, prompts[:batch_size], max_new_tokens=max_new_tokens, batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    texts = greedy_completions(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return texts, time.perf_counter() - t0


def accuracy(texts: list[str], examples) -> dict:
    correct = sum(extract_answer(t, style="icot") == ex.answer for t, ex in zip(texts, examples, strict=True))
    lo, hi = wilson_interval(correct, len(examples))
    return {"acc": correct / len(examples), "correct": correct, "n": len(examples), "ci": [lo, hi]}


def measure(name: str, folder: str, examples, args) -> dict:
    model, tok = load_model(folder)
    model.eval()
    prompts = prompts_of(examples, tok)
    texts, t64 = timed(model, tok, prompts, 64, args.max_new_tokens)
    _, t1 = timed(model, tok, prompts[: args.n_b1], 1, args.max_new_tokens)
    res = {"model": folder, "params": count_params(model), **accuracy(texts, examples),
           "ex_per_s_b64": len(prompts) / t64, "ex_per_s_b1": args.n_b1 / t1,
           "mean_new_chars": sum(len(t) for t in texts) / len(texts)}
    print(f"{name:9s} params={res['params']:,} acc={res['acc']:.3f} [{res['ci'][0]:.3f}, {res['ci'][1]:.3f}] "
          f"b1={res['ex_per_s_b1']:.2f} ex/s  b64={res['ex_per_s_b64']:.1f} ex/s", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--implicit", required=True, help="HF folder of the implicit (no-CoT) model")
    ap.add_argument("--explicit", required=True, help="HF folder of the explicit-CoT model")
    ap.add_argument("--k", type=int, default=4, help="operand digits (shipped: 4, 5, 7, 9)")
    ap.add_argument("--n", type=int, default=1000, help="test problems for accuracy and batch-64 speed")
    ap.add_argument("--n-b1", type=int, default=100, help="test problems timed at batch 1")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    examples = load_shipped(args.k, "test", limit=args.n)
    imp = measure("implicit", args.implicit, examples, args)
    exp = measure("explicit", args.explicit, examples, args)
    out = {
        "implicit_speedup_b1": imp["ex_per_s_b1"] / exp["ex_per_s_b1"],
        "implicit_speedup_b64": imp["ex_per_s_b64"] / exp["ex_per_s_b64"],
        "implicit_acc": imp["acc"], "implicit_ci": imp["ci"], "explicit_acc": exp["acc"], "explicit_ci": exp["ci"],
        "implicit": imp, "explicit": exp, "k": args.k, "n": len(examples), "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
