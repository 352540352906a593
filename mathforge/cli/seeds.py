"""`mathforge seeds RECIPE --seeds 0,1,2 [--compare KEY=VALUE ...] [--arm NAME:KEY=VALUE ...] --out DIR`:
train a recipe under several seeds, optionally against variants on the same seeds (paired
comparisons with the base: mean, spread, t-interval of the differences, exact sign-flip p-value).

Thin: parses the arguments and calls `mathforge.seeds.run_seeds`. Re-running resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _seeds(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas, got {text!r}") from None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("seeds", help="train a recipe over several seeds; paired comparison of two variants",
                              description=__doc__.splitlines()[0])
    p.add_argument("recipe", type=Path, help="TOML recipe (see recipes/)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                   help="the variant arm: these overrides on top of the base, e.g. --compare objective=mft (repeatable)")
    p.add_argument("--arm", dest="arms", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="a named arm and one of its overrides, e.g. --arm weight:difficulty.mode=weight "
                        "(repeat for more overrides and more arms); each is compared with the base")
    p.add_argument("--base-name", default="base", help="the name of the recipe's own arm (default base)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key in both arms (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="output folder (one run folder per arm and seed)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, one single-threaded process each")


def run(args: argparse.Namespace) -> int:
    from mathforge.seeds import run_seeds
    from mathforge.train.config import parse_override

    overrides = dict(parse_override(t) for t in args.overrides)
    compare = dict(parse_override(t) for t in args.compare)
    arms: dict[str, dict] = {}
    for text in args.arms:
        name, sep, item = text.partition(":")
        if not sep or not name or "=" not in item:
            raise ValueError(f"--arm takes NAME:KEY=VALUE, got {text!r}")
        arms.setdefault(name, {}).update([parse_override(item)])
    result = run_seeds(args.recipe, args.seeds, args.out, overrides=overrides, compare=compare or None,
                       arms=arms, base_name=args.base_name, jobs=args.jobs)
    print((args.out / "seeds.md").read_text())
    return 0 if result else 1
