"""Printing rich tables whole: a table is never cut or squeezed to the terminal's (or a pipe's
default 80) columns; when it is wider, the terminal wraps its lines instead of rich dropping cells."""

from __future__ import annotations


def print_table(table, console=None) -> None:
    from rich.console import Console
    from rich.measure import Measurement

    console = console or Console()
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if needed > console.width:
        console = Console(width=needed, file=console.file)
    console.print(table)
