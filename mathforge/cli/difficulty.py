"""`mathforge difficulty DATA.jsonl --model PATH --out DIR [--k 16 | --adaptive] ...`: estimate each
training example's difficulty for SDAT by sampling the base model with same-source exemplars.

Thin: builds a `EstimateConfig` (validated before any model loads), loads the engine, and calls
`mathforge.difficulty.estimate`. The output file trains with `objective = "difficulty"`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("difficulty", help="SDAT: base-model pass rate and difficulty level per example",
                              description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="training JSONL (question/response, optional answer and source)")
    p.add_argument("--model", required=True, help="the base model: a local folder (or an engine spec)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--k", type=int, default=16, help="samples per example (16)")
    p.add_argument("--adaptive", action="store_true", help="batches of 8 until the margin of error <= 0.15 or 64")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--context-tokens", type=int, default=4096,
                   help="the base model's training context; exemplars fill up to half of it (4096)")
    p.add_argument("--drop-crossing-exemplar", action="store_true")
    p.add_argument("--level-rule", choices=("code", "report"), default="code")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--template", default="Question: {question}\nAnswer:",
                   help="how exemplars and the question are written ({question} is filled); a model trained "
                        "from scratch wants its own layout, e.g. '{question}\\n'")
    p.add_argument("--no-instruction", action="store_true", help="no instruction line before the exemplars")
    p.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    from mathforge.difficulty import INSTRUCTION as DIFF_INSTRUCTION
    from mathforge.difficulty import EstimateConfig, estimate

    cfg = EstimateConfig(k=args.k, adaptive=args.adaptive, temperature=args.temperature,
                           max_new_tokens=args.max_new_tokens, context_tokens=args.context_tokens,
                           drop_crossing_exemplar=args.drop_crossing_exemplar, level_rule=args.level_rule,
                           seed=args.seed, template=args.template.replace("\\n", "\n"),
                           instruction="" if args.no_instruction else DIFF_INSTRUCTION)
    if not args.data.is_file():
        raise ValueError(f"{args.data}: no such file")
    from mathforge.infer.loading import load_engine

    engine = load_engine(args.model, batch_size=args.batch_size)
    path = estimate(engine, args.data, args.out, cfg)
    print(f"difficulty: {path}")
    return 0
