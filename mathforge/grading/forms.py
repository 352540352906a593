"""Answer forms for the `default` grading profile: clean without losing meaning, then read structure.

The harness normalisation (`normalize.strip_string`) throws away what decides some verdicts: the
`x=` of a labelled answer, the percent sign, `\\{` of a set. The default profile first cleans an
answer only of what never carries meaning (math-mode wrappers, `\\boxed{}`, `\\left`/`\\right`,
spacing commands, a trailing period), then reads its structure here: top-level items, labels
(`x=3`, `f(x)=2x+3`, `(p,q)=(3,2)`, `A:B=7:32`), chains (`x=2+3=5` means 5), equations,
`\\pm`, percent marks, decimal commas and mixed numbers. Leaves then go to the ordinary rules.
Every function is a linear scan or a regex without nested quantifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mathforge.grading import latex_numeric as ln
from mathforge.grading.extract import matching_brace
from mathforge.grading.normalize import UNIT_WORDS
from mathforge.grading.structure import outer_brackets, split_top_level

_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WHOLE_COMMANDS = ("\\boxed", "\\fbox", "\\displaystyle", "\\mathrm", "\\textbf", "\\mathbf", "\\text")
_SPACES = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad\b|~|\\displaystyle")
_REPLACE = (
    ("\\$", ""),
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\leqslant", "\\le"), ("\\geqslant", "\\ge"),
    ("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne"), ("\\lt", "<"), ("\\gt", ">"),
    ("≤", "\\le "), ("≥", "\\ge "), ("≠", "\\ne "), ("−", "-"), ("∞", "\\infty "),
    ("\\left.", ""), ("\\right.", ""), ("\\left", ""), ("\\right", ""), ("\\bigl", ""), ("\\bigr", ""),
    ("\\lvert", "|"), ("\\rvert", "|"), ("\\vert", "|"), ("\\mid", "|"), ("\\varnothing", "\\emptyset"),
    ("\\%", "%"), ("\\infin", "\\infty"), ("{matrix}", "{pmatrix}"), ("{bmatrix}", "{pmatrix}"),
    ("{smallmatrix}", "{pmatrix}"), ("{Bmatrix}", "{pmatrix}"),
)
# `6 \text{ and } 8`, `x=1 or x=2`: words that join items of a list.
_JOINERS = re.compile(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|,?\s+(?:and|or)\s+)\s*")
_DECIMAL_COMMA = re.compile(r"-?\d+,(?:\d{1,2}|\d{4,})")
_MIXED = re.compile(r"(-?)(\d+)\s+(\d+)/(\d+)")
_MIXED_TEX = re.compile(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")
_SPACED_THOUSANDS = re.compile(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_EXP_SPACE_DIGIT = re.compile(r"(\^\{?[\w.]+\}?)\s+(?=\d)")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*\{?\\circ\}?")
_GLUED_UNIT = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?)\s*(?:\\(?:text|mbox|mathrm)\{\s*)?(?:"
    + "|".join(re.escape(u) for u in sorted(set(UNIT_WORDS), key=len, reverse=True))
    + r")\s*\}?(?:\^\{?[23]\}?)?")
_TRIG = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)\b")
_VAR = r"(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?'*"
_LABEL = re.compile(
    rf"{_VAR}|[a-zA-Z]+(?:\^\{{?-1\}}?)?\((?:[^()]*)\)|\(\s*{_VAR}(?:\s*,\s*{_VAR})+\s*\)"
    r"|[A-Z](?:\s*:\s*[A-Z])+|\\text\{[^{}]*\}"
)
_FUNCTION_LABEL = re.compile(r"y|[a-zA-Z]+(?:\^\{?-1\}?)?\([^()]*\)")
_PERCENT_QUESTION = re.compile(r"percent|%|percentage", re.IGNORECASE)


def _strip_whole(s: str) -> str:
    """Drop wrappers that enclose the whole answer: `$…$`, `\\(…\\)`, `\\boxed{…}`, `\\text{…}`."""
    for _ in range(8):
        t = s.strip().rstrip(".").strip()
        for left, right in _WRAPPERS:
            if len(t) > len(left) + len(right) and t.startswith(left) and t.endswith(right):
                t = t[len(left):-len(right)].strip()
                break
        else:
            for command in _WHOLE_COMMANDS:
                if t.startswith(command + "{") and matching_brace(t, len(command)) == len(t) - 1:
                    t = t[len(command) + 1:-1].strip()
                    break
        if t == s:
            return s
        s = t
    return s


def clean(s: str) -> str:
    """Remove what never carries meaning; keep labels, percent signs, brackets and set braces."""
    s = _strip_whole(str(s))
    for old, new in _REPLACE:
        if old in s:
            s = s.replace(old, new)
    s = _SPACES.sub(" ", s)
    if "\\boxed" in s or "$" in s:
        s = _strip_whole(s.replace("$", ""))
    if (" and " in s or " or " in s or "\\text" in s) and any(c.isdigit() or c == "\\" for c in s):
        s = _JOINERS.sub(", ", s)
    if "\\circ" in s:
        s = _DEGREES.sub(r"(\1\\cdot\\frac{\\pi}{180})", s) if _TRIG.search(s) else \
            s.replace("^{\\circ}", "").replace("^\\circ", "")
    if "^" in s:
        s = _EXP_SPACE_DIGIT.sub(r"\1\\cdot ", s)           # `2^6 3^5` is a product
    if _SPACED_THOUSANDS.fullmatch(s):
        s = s.replace(" ", "")
    m = _GLUED_UNIT.fullmatch(s) if any(c.isalpha() for c in s) else None
    if m:
        s = m.group(1)                                   # `5cm`, `5\text{ cm}^2`
    m = _MIXED.fullmatch(s) or _MIXED_TEX.fullmatch(s)
    if m:
        s = f"{m.group(1)}({m.group(2)}+\\frac{{{m.group(3)}}}{{{m.group(4)}}})"
    return s.strip().rstrip(".").strip()


def decimal_comma(s: str) -> str | None:
    """`1,5` -> `1.5` where a comma can only be a decimal mark (not 3 digits after it)."""
    return s.replace(",", ".") if _DECIMAL_COMMA.fullmatch(s) else None


def has_percent(s: str) -> bool:
    return "%" in s or "percent" in s


def asks_percent(question: str | None) -> bool:
    return bool(question) and _PERCENT_QUESTION.search(question) is not None


def items(s: str) -> list[str]:
    """Top-level comma-separated items (one item when there is no top-level comma)."""
    return [x.strip() for x in split_top_level(s, ",") if x.strip()] or [s]


@dataclass
class Item:
    """One answer item: an optional label, the value, and whether it is an equation."""

    label: str | None
    value: str
    equation: bool = False      # `2x+3y=6`: compared as an equation, not as label and value


def _is_constant(s: str) -> bool:
    c = ln.try_compile(s)
    return c is not None and not c.variables


def _has_variables(s: str) -> bool:
    c = ln.try_compile(s)
    return c is None or bool(c.variables)


def read_item(s: str) -> Item:
    """`x=3` -> label x; `x=2+3=5` -> label x, value 5; `\\sqrt{4}=2` -> 2; `2x+3y=6` -> equation."""
    sides = [x.strip() for x in split_top_level(s, "=")]
    if len(sides) < 2 or any(not x for x in sides):
        return Item(None, s)
    head, last = sides[0], sides[-1]
    if _LABEL.fullmatch(head):
        return Item(_norm_label(head), last)
    if len(sides) > 2 or (_is_constant(head) and not _has_variables(last)):
        return Item(None, last)                      # a chain: the last side is the answer
    return Item(None, f"{head}={last}", equation=True)


def _norm_label(label: str) -> str:
    label = label.replace(" ", "")
    if label.startswith("\\text{"):
        label = label[6:-1].strip().lower()
    return label


def function_label(label: str | None) -> bool:
    """`y`, `f(x)`, `g^{-1}(x)`: names of a function's value, interchangeable with each other."""
    return label is not None and _FUNCTION_LABEL.fullmatch(label) is not None


def expand_pm(s: str) -> list[str] | None:
    """`a \\pm b` -> [a+b, a-b]; None without exactly one top-level `\\pm`."""
    if s.count("\\pm") != 1:
        return None
    left, right = s.split("\\pm")
    if outer_brackets(s) is not None:
        return None
    left = left.strip()
    return [f"{left}+{right.strip()}" if left else right.strip(),
            f"{left}-{right.strip()}" if left else f"-{right.strip()}"]
