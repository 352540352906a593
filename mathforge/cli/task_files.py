"""`mathforge task-files TASK --n-train N --n-eval M --seed S [--task-args JSON] --out DIR`: write a
synthetic task as a fixed training pool (train.jsonl) and held-out set (heldout.jsonl).

Thin: parses the arguments and calls `mathforge.data.task_files.write_task_files`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("task-files", help="write a synthetic task as fixed train/held-out JSONL files",
                              description=__doc__.splitlines()[0])
    p.add_argument("task", help="a task of mathforge.data.tasks (arithmetic, multiplication, arith_steps, ...)")
    p.add_argument("--n-train", type=int, required=True, help="training pool size (before held-out prompts leave it)")
    p.add_argument("--n-eval", type=int, required=True, help="held-out problems")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task-args", default="{}", help='task keyword arguments as JSON, e.g. \'{"digits": [1, 2]}\'')
    p.add_argument("--out", type=Path, required=True)


def run(args: argparse.Namespace) -> int:
    from mathforge.cli._args import json_object
    from mathforge.data.task_files import write_task_files

    info = write_task_files(args.out, args.task, n_train=args.n_train, n_eval=args.n_eval, seed=args.seed,
                            args=json_object("--task-args", args.task_args))
    print(f"task files: {info['train']} ({info['n_train']}), {info['heldout']} ({info['n_eval']})")
    return 0
