"""Numbers in prose for answer extraction: the last-number rule (docs/methods/evaluation.md §g.4 H2-5), extended.

Thousands separators and decimal commas are told apart by their shape (see the "Numbers in
prose" convention in `mathforge.grading.extract`): `1,000` / `12,345` are thousands, `1,5` /
`3,14159` / `0,111` are decimal commas, `(3,4)` and `1,2,3` are lists. A trailing
`\\frac{a}{b}` or `a/b` is read whole, a percent sign after the number is kept, and digits glued
to letters on both sides are not a number. Every scan is one linear regex pass.
"""

from __future__ import annotations

import re

_SPACE_THOUSANDS = re.compile(r"\s*(-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?)\s*\.?")
_NUMBER_RUN = re.compile(r"-?\.?\d[\d.,]*")     # starts at a digit: no backtracking, linear
_PERCENT_AFTER = re.compile(r" ?(?:\\?%|percent\b)")
_SIMPLE_NUMBER = re.compile(r"-?\d*\.?\d+")
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_LEADING_DECIMAL_COMMA = re.compile(r"(-?\d+),(\d{1,2}|\d{4,})(?![\d,])")
_TRAILING_FRACTION = re.compile(
    r"(?:-?\\[dtc]?frac\{-?\d+(?:\.\d+)?\}\{-?\d+(?:\.\d+)?\}|(?<![\d.])-?\d+(?:\.\d+)?/\d+(?:\.\d+)?)\Z")


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of `pattern` in `text` (one linear scan)."""
    last = None
    for m in pattern.finditer(text):
        last = m
    return last


def _read_number(run: str, before: str, after: str) -> str | None:
    """One run of digits, dots and commas as a number (see the module docstring for commas)."""
    run = run.rstrip(".,")
    if "," in run:
        if _THOUSANDS.fullmatch(run):
            return run.replace(",", "")
        head, _, tail = run.partition(",")
        decimal = ("," not in tail and "." not in run and (len(tail) != 3 or head in ("0", "-0"))
                   and before not in ("(", "[", "{") and after not in (")", "]", "}"))
        if decimal and head.lstrip("-").isdigit() and tail.isdigit():
            return f"{head}.{tail}"
        run = run.rpartition(",")[2]         # a list such as (3,4) or 1,2,3: its last element
    last = None
    for m in _SIMPLE_NUMBER.finditer(run):
        last = m.group()
    return last


def last_number(text: str) -> str | None:
    """H2-5: the last number, reading thousands separators and decimal commas by their shape; a
    trailing `\\frac{a}{b}` or `a/b` is returned whole; digits glued to letters on both sides
    (`AZYUK2A`) are not a number; a text that is only `1 000` is one thousand."""
    whole = _SPACE_THOUSANDS.fullmatch(text)
    if whole is not None:
        return whole.group(1).replace(" ", "")
    last = None
    for m in _NUMBER_RUN.finditer(text):
        s, e = m.span()
        if not (text[s - 1:s].isalpha() and text[e:e + 1].isalpha()):
            last = m
    if last is None:
        return None
    run = last.group()
    s, e = last.start(), last.start() + len(run.rstrip(".,"))
    before = text[s - 1] if s > 0 else ""
    after = text[e] if e < len(text) else ""
    ans = _read_number(run, before, after)
    if ans is not None and _PERCENT_AFTER.match(text, e):
        return ans + "%"
    if ans is not None and "," not in run and e - s <= 40:
        stop = e + 1 if after == "}" else e
        frac = _TRAILING_FRACTION.search(text[max(0, s - 40):stop])
        if frac is not None:
            return frac.group()
    return ans


def _decimal_comma(ans: str) -> str:
    """`1,5 kg` -> `1.5 kg` when the answer opens with a number whose comma is a decimal comma."""
    m = _LEADING_DECIMAL_COMMA.match(ans)
    return f"{m.group(1)}.{m.group(2)}{ans[m.end():]}" if m else ans
