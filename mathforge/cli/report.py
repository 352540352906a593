"""`mathforge report RUN_DIR...`: report.md and a self-contained report.html with plots for eval runs."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="write report.md / report.html for one or more eval runs",
                              description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders written by `mathforge eval`")
    p.add_argument("--out", default=None, help="report folder (default: the first run folder)")
    p.add_argument("--title", default="mathforge evaluation report")


def run(args: argparse.Namespace) -> int:
    from mathforge.report import write_report

    paths = write_report(args.runs, out_dir=args.out, title=args.title)
    for path in paths:
        print(path)
    return 0
