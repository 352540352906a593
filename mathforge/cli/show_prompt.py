"""`mathforge show-prompt`: print the exact prompt (and stop strings) a style builds for one problem.

Prompts are data (`mathforge.data.prompts`); this shows precisely what the model will be given.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("show-prompt", help="print the exact prompt for one benchmark problem",
                              description=__doc__.splitlines()[0])
    p.add_argument("--style", default="cot")
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--benchmark", default="gsm8k")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=0, help="0-based problem index")
    p.add_argument("--question", default=None, help="use this question instead of a benchmark problem")
    p.add_argument("--eos", default="</s>", help="EOS string for styles that embed it (icot)")
    p.add_argument("--stops", action="store_true", help="also print the stop strings")
    p.add_argument("--list", action="store_true", help="list the styles and exit")


def run(args: argparse.Namespace) -> int:
    from mathforge.data.prompts import build_prompt, list_styles, stop_strings

    if args.list:
        print("\n".join(list_styles()))
        return 0
    question = args.question
    if question is None:
        from mathforge.data import load_benchmark

        if args.index < 0:
            raise ValueError(f"--index must be >= 0, got {args.index}")
        problems = load_benchmark(args.benchmark, args.split, limit=args.index + 1)
        if args.index >= len(problems):
            raise ValueError(f"--index {args.index}: benchmark {args.benchmark!r} has {len(problems)} problems")
        question = problems[args.index].question
    print(build_prompt(question, args.style, shots=args.shots, benchmark=args.benchmark, eos=args.eos), end="")
    if args.stops:
        print("\n--- stop strings: " + repr(stop_strings(args.style, args.eos)))
    else:
        print()
    return 0
