"""Search cost: TSMC against plain sampling at equal N, and TSMC's value-cache reuse against
re-encoding every prefix (what the original TSMC code does), side by side in one process.

Same generator, same value model, same prompts, same sampling settings (temperature, top-k, budget)
and seeds on every side:

* `sample_engine`: N samples per problem with `HFEngine.generate` (shared-prefix decoding), what a
  user runs for majority voting;
* `sample_step`: the same N samples through `StepGenerator` without boundaries (the engine TSMC uses);
* `tsmc`: TSMC (groups of M, `stop_steps` rounds) with the value model reading each token once;
* `tsmc_reencode`: the same TSMC, the value model re-encoding prompt + prefix at every round.

`tsmc_over_sampling_time` = tsmc / the faster sampling side; `reuse_speedup` = tsmc_reencode / tsmc
(whole wall times). The value-scoring share of each TSMC side is printed too.
Usage:
    python bench/search.py                                   # from-scratch `micro` models, GSM8K prompts
    python bench/search.py --model runs/tsmc/generator/model --value-model runs/tsmc/value_ctl/model --task
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from mathforge.data.steps import PROMPT
from mathforge.infer.hf_engine import HFEngine
from mathforge.infer.search import SearchConfig, Searcher
from mathforge.infer.types import SamplingParams


def build(args):
    """(generator, value model, tokenizer, prompt ids, delimiter, description)."""
    if args.model:
        from mathforge.data.tasks import get_task
        from mathforge.models import load_model
        from mathforge.models.value import ValueModel, load_value_model

        model, tok = load_model(args.model)
        value = load_value_model(args.value_model)[0] if args.value_model else ValueModel.from_generator(model)
        prompts = [e.prompt for e in get_task("arith_steps")(args.prompts, seed=7)]
        return model.eval(), value.eval(), tok, prompts, "\n\n", args.model
    from mathforge.data import load_benchmark
    from mathforge.data.tokenizer import build_tokenizer
    from mathforge.models import build_model
    from mathforge.models.value import ValueModel

    prompts = [PROMPT.format(question=p.question) for p in load_benchmark("gsm8k", limit=args.prompts)]
    tok = build_tokenizer(prompts, kind="char")
    model = build_model(args.preset, tok, seed=0).eval()
    value = ValueModel.from_generator(model, init="random", seed=1).eval()
    # A random model writes no blank lines: words (spaces) are its steps, so rounds really happen.
    return model, value, tok, prompts, " ", f"random {args.preset} (char tokenizer), steps = words"


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained generator folder (default: a random `--preset` model)")
    ap.add_argument("--value-model", default=None)
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--stop-steps", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, value, tok, prompts, delim, desc = build(args)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.8, top_k=200, seed=1234)
    ids = [tok(p)["input_ids"] for p in prompts]

    def search(strategy: str, reencode: bool = False):
        cfg = SearchConfig(strategy=strategy, n=args.n, m=args.m, stop_steps=args.stop_steps, delimiter=delim)
        s = Searcher(model, tok, cfg, value_model=value, params=params, answer_marker=None, reencode_values=reencode)
        with torch.inference_mode():
            return s.run(ids)

    engine = HFEngine(model, tok, batch_size=len(ids) * args.n)
    sides = {"sample_engine": lambda: engine.generate(prompts, n=args.n, params=params),
             "sample_step": lambda: search("sample"), "tsmc": lambda: search("tsmc"),
             "tsmc_reencode": lambda: search("tsmc", True)}
    rows = {name: {"seconds": float("inf")} for name in sides}
    for _ in range(args.repeats):  # interleaved, best of repeats: load from other jobs hits every side alike
        for name, fn in sides.items():
            t, res = timed(fn, 1)
            row = rows[name]
            row["seconds"] = min(row["seconds"], t)
            if name == "sample_engine":
                row["generated_tokens"] = sum(c.n_tokens for r in res for c in r)
                continue
            row["generated_tokens"] = sum(r.cost["generated_tokens"] for r in res)
            row["value_tokens"] = sum(r.cost["value_tokens"] for r in res)
            if name.startswith("tsmc"):
                groups = [g for r in res for g in r.extra["groups"]]
                row["resamplings_per_group"] = sum(g["resamplings"] for g in groups) / len(groups)
    sampling = min(rows["sample_engine"]["seconds"], rows["sample_step"]["seconds"])
    for name, row in rows.items():
        print(f"{name:>14}: {row['seconds']:7.2f} s  {row['generated_tokens']:8.0f} generated tokens  "
              f"{row.get('value_tokens', 0):8.0f} value tokens")
    summary = {"bench": "search", "model": desc, "prompts": len(ids), "n": args.n, "m": args.m,
               "stop_steps": args.stop_steps, "max_new_tokens": args.max_new_tokens, "threads": args.threads,
               "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
               "seconds": {k: round(v["seconds"], 3) for k, v in rows.items()},
               "value_tokens": {k: v.get("value_tokens", 0) for k, v in rows.items()},
               "tsmc_over_sampling_time": round(rows["tsmc"]["seconds"] / sampling, 3),
               "tsmc_over_engine_sampling_time": round(rows["tsmc"]["seconds"] / rows["sample_engine"]["seconds"], 3),
               "reuse_speedup": round(rows["tsmc_reencode"]["seconds"] / rows["tsmc"]["seconds"], 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
