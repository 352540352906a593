"""`mathforge value-data --model GEN --out FILE`: K graded samples per training problem for the value
model of TSMC (docs/methods/tsmc.md §e.6), grouped per problem. Thin wrapper over
`mathforge.value_data.make_value_data`; re-running the same command resumes."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("value-data", help="sample and grade K solutions per problem for value training",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the generator folder")
    p.add_argument("--out", required=True, help="output JSONL (one problem per line)")
    p.add_argument("--task", default="arith_steps", help="a step-formatted task")
    p.add_argument("--n-problems", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1, help="seed of the problems (not the generator's training seed)")
    p.add_argument("--k", type=int, default=16, help="samples per problem")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=200)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8, help="problems per generate call")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mathforge.value_data import ValueDataConfig, make_value_data

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = ValueDataConfig(model=args.model, out=args.out, task=args.task, n_problems=args.n_problems, seed=args.seed,
                          k=args.k, temperature=args.temperature, top_k=args.top_k,
                          max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    path = make_value_data(cfg, progress=not args.quiet)
    print(f"value data written to {path}")
    return 0
