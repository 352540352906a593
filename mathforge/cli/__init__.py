"""The `mathforge` command line: thin subcommands over the library.

Each subcommand lives in its own module here with two functions, `add_parser(subparsers)` and
`run(args) -> int`; the module only parses arguments, builds a config and calls one library
function. Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Short name -> module under mathforge.cli. Imported lazily so `mathforge grade` never pays for torch.
COMMANDS: dict[str, str] = {
    "train": "train",
    "quickstart": "quickstart",
    "grade": "grade",
    "render": "render",
    "eval": "eval",
    "report": "report",
    "show-prompt": "show_prompt",
    "serve": "serve",
    "synth": "synth",
    "value-data": "value_data",
    "tsmc-experiment": "tsmc_experiment",
    "seeds": "seeds",
    "difficulty": "difficulty",
    "task-files": "task_files",
}

# What a re-run of an interrupted command does with the work already on disk.
RESUME_HINTS = {
    "train": "Run the same command again to resume from the last checkpoint (--no-resume starts over).",
    "eval": "Outputs of finished batches are kept; run the same command again to resume.",
    "grade": "Graded problems are kept; run the same command again to resume.",
    "seeds": "Finished runs are kept; run the same command again to resume.",
    "difficulty": "Estimated examples are kept; run the same command again to resume.",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported (fast start-up,
    and one broken command module cannot take the others down)."""
    parser = argparse.ArgumentParser(prog="mathforge", description=__doc__.splitlines()[0])
    from mathforge import __version__

    parser.add_argument("--version", action="version", version=f"mathforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        mod = importlib.import_module(f"mathforge.cli.{module}")
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(f"mathforge.cli.{COMMANDS[args.command]}")
    try:
        return int(mod.run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:  # user errors: one clear line, no traceback
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # str(KeyError) adds quotes
        print(f"mathforge {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what is on disk is a resumable state (appends and checkpoints are atomic)
        print(f"\nmathforge {args.command}: interrupted. {RESUME_HINTS.get(args.command, '')}".rstrip(),
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
