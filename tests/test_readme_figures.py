"""README figures others can reproduce (issue 10 item 12): every figure has its command and says
whether CI runs it; the quickstart row gives the spread over three seeds and the machine it varies
with; the quickstart's run time is stated the same way everywhere it is stated."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _figures_table() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Figures (latest)")
    lines = [ln for ln in text[start:].split("\n\n")[2].splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]


def test_every_figure_has_a_command_and_its_ci_status():
    header, _, *rows = _figures_table()
    assert header == ["what", "figure", "baseline, side by side", "command", "in CI"]
    assert len(rows) >= 15
    for row in rows:
        assert len(row) == 5, row
        what, _, _, command, ci = row
        assert re.search(r"`(python |mathforge |bash |pytest )[^`]+`", command), f"no runnable command: {what}"
        assert ci.startswith(("never", "a 6-step run only", "the test runs")), f"CI status missing: {what}"
        assert "earlier run" not in what, f"a figure of code that no longer exists: {what}"


def test_quickstart_row_gives_the_spread_over_three_seeds():
    row = next(r for r in _figures_table()[2:] if r[0].startswith("quickstart"))
    figure = row[1]
    for seed in (0, 1, 2):
        assert f"seed {seed}" in figure
    assert "spread" in figure and "machine" in figure
    assert "--seed" in row[3]


def test_the_quickstart_time_is_stated_one_way():
    from mathforge import quickstart
    from mathforge.cli import build_parser

    claim = "about 4 minutes on 2 idle cores"
    help_text = " ".join(build_parser("quickstart").format_help().split())
    recipe = " ".join(line.lstrip("# ") for line in (ROOT / "recipes" / "quickstart.toml").read_text().splitlines())
    doc = " ".join(quickstart.__doc__.split())
    for where, text in (("--help", help_text), ("recipe", recipe), ("docstring", doc)):
        assert claim in text, where
        assert not re.search(r"~\s*\d+\s*min|\d+-\d+ minutes", text), where
