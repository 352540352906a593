"""Search cost: TSMC against plain sampling at equal N, and TSMC's value-cache reuse against
re-encoding every prefix (what the original TSMC code does), side by side in one process.

Same generator, same value model, same prompts, same sampling settings (temperature, top-k, budget)
and seeds on every side:

* `hf_generate`: N samples per problem with transformers' `model.generate` (one call), what a user
  without mathforge runs for majority voting;
* `sample_engine`: the same with `HFEngine.generate` (shared-prefix decoding, per-row stopping);
* `sample_step`: the same N samples through `StepGenerator` without boundaries (the engine TSMC uses);
* `tsmc`: TSMC (groups of M, `stop_steps` rounds) with the value model reading each token once;
* `tsmc_reencode`: the same TSMC, the value model re-encoding prompt + prefix at every round.

Default workload: the TSMC experiment's setting at bench scale. The generator is the `nano` model of
`recipes/tsmc-generator.toml` trained for 300 steps (trained on the first run, about 2-4 minutes on
these cores, then reused from `runs/bench/search-generator`), so it writes real steps of the
`arith_steps` task; the value model is that trunk with a random head (the cost of a trained value
model: same size, same reads). Prompts are held-out `arith_steps` problems. `--random` runs the
stress case of earlier versions instead: an untrained `micro` model whose steps are words, so step
lengths are geometric and particles wait on each other far more than a trained model's do.

`tsmc_over_sampling_time` = tsmc / the faster mathforge sampling side (the bar; against HF `generate`
it is `tsmc_over_hf_generate_time`); `reuse_speedup` = tsmc_reencode / tsmc
(wall times, best of `--repeats` interleaved runs). CPU seconds of this process are printed beside
them (`*_cpu`), which a loaded machine disturbs less than wall time. `value_share_of_tsmc`: the
fraction of TSMC's wall time spent in value-model reads. `value_read_floor_s`: one plain forward of the
value model over as many tokens as TSMC's value model read, packed into rows of 128 with no cache and
no prefix: the least it costs to read those tokens once. `floor_ratio` = (fastest sampling, scaled to
TSMC's generated tokens, + that floor) / fastest sampling: what TSMC would cost with zero attention
over prefixes, zero bookkeeping and zero waiting at boundaries. A value model as large as the
generator cannot take TSMC below it on this machine.
Usage:
    python bench/search.py                         # trained nano generator (trains it on the first run)
    python bench/search.py --random                # untrained micro model, words as steps
    python bench/search.py --model GEN --value-model VALUE   # your own folders (arith_steps prompts)
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from mathforge.data.steps import PROMPT
from mathforge.infer.hf_engine import HFEngine
from mathforge.infer.search import SearchConfig, Searcher
from mathforge.infer.types import SamplingParams

GENERATOR = "runs/bench/search-generator"


def trained_generator() -> str:
    """The bench's generator folder, trained once (300 steps of the TSMC generator recipe)."""
    from pathlib import Path

    from mathforge.cli import main as cli

    folder = Path(GENERATOR) / "model"
    if not (folder / "config.json").is_file():
        print(f"training the bench generator into {GENERATOR} (once; a few minutes) ...", flush=True)
        cli(["train", "recipes/tsmc-generator.toml", "--set", "optim.max_steps=300", "--set", f"out_dir={GENERATOR}",
             "--set", "checkpoint_every=1000", "--set", "eval.every=0"])
    return str(folder)


def build(args):
    """(generator, value model, tokenizer, prompt ids, delimiter, description)."""
    from mathforge.models.value import ValueModel

    if args.random:
        from mathforge.data import load_benchmark
        from mathforge.data.tokenizer import build_tokenizer
        from mathforge.models import build_model

        prompts = [PROMPT.format(question=p.question) for p in load_benchmark("gsm8k", limit=args.prompts)]
        tok = build_tokenizer(prompts, kind="char")
        model = build_model(args.preset, tok, seed=0).eval()
        value = ValueModel.from_generator(model, init="random", seed=1).eval()
        # A random model writes no blank lines: words (spaces) are its steps, so rounds really happen.
        return model, value, tok, prompts, " ", f"random {args.preset} (char tokenizer), steps = words"
    from mathforge.data.tasks import get_task
    from mathforge.models import load_model
    from mathforge.models.value import load_value_model

    path = args.model or trained_generator()
    model, tok = load_model(path)
    value = load_value_model(args.value_model)[0] if args.value_model else ValueModel.from_generator(
        model, init="random", seed=1)
    prompts = [e.prompt for e in get_task("arith_steps")(args.prompts, seed=7)]
    what = path if args.model or args.value_model else f"{path} (300 steps) + random value head"
    return model.eval(), value.eval(), tok, prompts, "\n\n", what


def timed(fn):
    """(wall seconds, CPU seconds of this process, result)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def value_read_floor(value, n_tokens: int, vocab: int, repeats: int, width: int = 128) -> float:
    """Best-of-`repeats` wall seconds of one cache-free forward of `value` over `n_tokens` random ids."""
    rows = max(1, round(n_tokens / width))
    ids = torch.randint(0, vocab, (rows, width), generator=torch.Generator().manual_seed(0))  # [rows, width]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            value(ids)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained generator folder (default: the bench's own)")
    ap.add_argument("--value-model", default=None, help="default: the generator's trunk with a random head")
    ap.add_argument("--random", action="store_true", help="an untrained --preset model, words as steps")
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--prompts", type=int, default=8)
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

    def hf_generate():
        """What a user without mathforge runs for majority voting: transformers' `generate`, one call."""
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=True, temperature=params.temperature, top_k=params.top_k,
                                 max_new_tokens=params.max_new_tokens, num_return_sequences=args.n,
                                 pad_token_id=tok.pad_token_id)[:, enc.input_ids.shape[1]:]  # [P * n, new]
        eos = tok.eos_token_id
        return sum(r.index(eos) + 1 if eos in r else len(r) for r in out.tolist())  # generated tokens

    sides = {"hf_generate": hf_generate, "sample_engine": lambda: engine.generate(prompts, n=args.n, params=params),
             "sample_step": lambda: search("sample"), "tsmc": lambda: search("tsmc"),
             "tsmc_reencode": lambda: search("tsmc", True)}
    rows = {name: {"seconds": float("inf"), "cpu_seconds": float("inf")} for name in sides}
    for _ in range(args.repeats):  # interleaved, best of repeats: load from other jobs hits every side alike
        for name, fn in sides.items():
            t, c, res = timed(fn)
            row = rows[name]
            row["seconds"], row["cpu_seconds"] = min(row["seconds"], t), min(row["cpu_seconds"], c)
            if name == "hf_generate":
                row["generated_tokens"] = res
                continue
            if name == "sample_engine":
                row["generated_tokens"] = sum(c.n_tokens for r in res for c in r)
                continue
            row["generated_tokens"] = sum(r.cost["generated_tokens"] for r in res)
            row["value_tokens"] = sum(r.cost["value_tokens"] for r in res)
            if t <= row["seconds"]:  # the value-model share of the best run
                row["value_share"] = sum(r.cost["value_s"] for r in res) / t
            if name.startswith("tsmc"):
                groups = [g for r in res for g in r.extra["groups"]]
                row["resamplings_per_group"] = sum(g["resamplings"] for g in groups) / len(groups)
    floor_s = value_read_floor(value, rows["tsmc"]["value_tokens"], len(tok), args.repeats)

    def ratio(a: str, b: str, key: str = "seconds") -> float:
        return round(rows[a][key] / rows[b][key], 3)

    fast = min(("sample_engine", "sample_step"), key=lambda k: rows[k]["seconds"])
    fast_cpu = min(("sample_engine", "sample_step"), key=lambda k: rows[k]["cpu_seconds"])
    print(f"value read floor: {floor_s:.2f} s for {rows['tsmc']['value_tokens']} tokens")
    for name, row in rows.items():
        print(f"{name:>14}: {row['seconds']:7.2f} s wall {row['cpu_seconds']:7.2f} s CPU  "
              f"{row['generated_tokens']:8.0f} generated tokens  {row.get('value_tokens', 0):8.0f} value tokens")
    summary = {"bench": "search", "model": desc, "prompts": len(ids), "n": args.n, "m": args.m,
               "stop_steps": args.stop_steps, "max_new_tokens": args.max_new_tokens, "threads": args.threads,
               "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
               "repeats": args.repeats, "load_average": [round(x, 2) for x in os.getloadavg()],
               "seconds": {k: round(v["seconds"], 3) for k, v in rows.items()},
               "cpu_seconds": {k: round(v["cpu_seconds"], 3) for k, v in rows.items()},
               "generated_tokens": {k: v["generated_tokens"] for k, v in rows.items()},
               "value_tokens": {k: v.get("value_tokens", 0) for k, v in rows.items()},
               "value_share_of_tsmc": round(rows["tsmc"]["value_share"], 3),
               "tsmc_over_sampling_time": ratio("tsmc", fast),
               "tsmc_over_engine_sampling_time": ratio("tsmc", "sample_engine"),
               "tsmc_over_hf_generate_time": ratio("tsmc", "hf_generate"),
               "reuse_speedup": ratio("tsmc_reencode", "tsmc"),
               "value_read_floor_s": round(floor_s, 3),
               "floor_ratio": round((rows[fast]["seconds"] * rows["tsmc"]["generated_tokens"]
                                     / rows[fast]["generated_tokens"] + floor_s) / rows[fast]["seconds"], 3),
               "tsmc_over_sampling_cpu": ratio("tsmc", fast_cpu, "cpu_seconds"),
               "reuse_speedup_cpu": ratio("tsmc_reencode", "tsmc", "cpu_seconds")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
