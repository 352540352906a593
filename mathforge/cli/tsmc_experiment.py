"""`mathforge tsmc-experiment [--out runs/tsmc]`: the TSMC experiment end to end (generator SFT, value
data, value models by CTL and BCE, every strategy at N in {4, 8, 16, 32}, report). Thin wrapper over
`mathforge.tsmc_experiment.run_experiment`; each stage resumes after a kill."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("tsmc-experiment", help="run the TSMC experiment end to end (resumable)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/tsmc")
    p.add_argument("--recipes", default="recipes", help="folder with the tsmc-*.toml recipes")
    p.add_argument("--value-problems", type=int, default=1000)
    p.add_argument("--k", type=int, default=16, help="samples per value-training problem")
    p.add_argument("--eval-problems", type=int, default=500)
    p.add_argument("--n-max", type=int, default=32)
    p.add_argument("--beam-n", type=int, default=0, help="also run step-level beam search at this N")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mathforge.tsmc_experiment import ExperimentConfig, run_experiment

    cfg = ExperimentConfig(out=args.out, recipes=args.recipes, value_problems=args.value_problems, k=args.k,
                           eval_problems=args.eval_problems, n_max=args.n_max,
                           budgets=[n for n in (4, 8, 16, 32) if n <= args.n_max], beam_n=args.beam_n,
                           threads=args.threads)
    report = run_experiment(cfg, progress=not args.quiet)
    print(f"report written to {report}")
    return 0
