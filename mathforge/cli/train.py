"""`mathforge train RECIPE.toml [--out DIR] [--set section.key=value ...]`: run one training recipe.

Thin: loads and validates the recipe (`mathforge.train.config.load_recipe`), then calls
`mathforge.train.loop.train`. Re-running the same command in the same out dir resumes from the
latest checkpoint. Multi-process: `accelerate launch --num_processes N -m mathforge train ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model from a TOML recipe (resumes after a kill)",
                              description=__doc__.splitlines()[0])
    p.add_argument("recipe", type=Path, help="TOML recipe (see recipes/)")
    p.add_argument("--out", default=None, help="output folder (overrides out_dir of the recipe)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set optim.lr=3e-4 (repeatable)")
    p.add_argument("--no-resume", action="store_true", help="ignore checkpoints in the out dir")


def run(args: argparse.Namespace) -> int:
    from mathforge.train.config import load_recipe, parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.out:
        overrides["out_dir"] = str(args.out)
    if args.no_resume:
        overrides["resume"] = False
    cfg = load_recipe(args.recipe, overrides, override_label="--set")
    from mathforge.train.loop import train

    folder = train(cfg)
    print(f"model: {folder}")
    return 0
