"""`mathforge report RUN_DIR...`: report.md and a self-contained report.html with plots, for eval runs
(compared side by side) or for a training run (loss and eval curves, config, samples)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="write report.md / report.html for eval runs or a training run",
                              description=__doc__.replace("\n", " "))
    p.add_argument("runs", nargs="+", help="run folders written by `mathforge eval`, or by `mathforge train`")
    p.add_argument("--out", default=None, help="report folder (default: the first run folder)")
    p.add_argument("--title", default=None, help="page title (default: mathforge evaluation/training report)")
    p.add_argument("--examples", type=int, default=2, metavar="N",
                   help="example generations per kind (correct, wrong, no answer, grader timeout), benchmark "
                        "and run (default: 2; 0: none)")


def run(args: argparse.Namespace) -> int:
    from mathforge.report import write_report

    paths = write_report(args.runs, out_dir=args.out, title=args.title, examples=args.examples)
    for path in paths:
        print(path)
    return 0
