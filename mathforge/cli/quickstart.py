"""`mathforge quickstart [--out DIR]`: the README's main job.

Generates a step-by-step synthetic task, trains a tiny model with SFT and with Masked Thought
fine-tuning (same data, budget and seed), evaluates both on held-out problems through the grading
module, then samples the SFT model N times per problem, trains a value model and compares majority
vote, best-of-N, weighted vote and TSMC on the same problems, and writes report.md + PNGs into the
out dir. All logic lives in `mathforge.quickstart` and `mathforge.quickstart_search`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("quickstart", help="train SFT vs MFT on a toy task, then sample, train a value model and run TSMC, and write a report "
                                   "(about 4 minutes on 2 idle cores; "
                                   "README: measured times)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="output folder (default runs/quickstart)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default: the tuned budget)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, init and masks")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's choice)")
    p.add_argument("--fresh", action="store_true", help="ignore checkpoints of an earlier run in --out")


def run(args: argparse.Namespace) -> int:
    from mathforge.quickstart import quickstart

    overrides = {"threads": args.threads} if args.threads else None
    report = quickstart(args.out, steps=args.steps, seed=args.seed, resume=not args.fresh, overrides=overrides)
    print(f"report written to {report}")
    return 0
