"""Linear-time structural helpers for `math_equal` (docs/methods/evaluation.md §g.5 rules 2-6).

Plain-number parsing (integers kept exact, thousands separators, scientific notation), splitting
at top-level commas, recognising sets / tuples / intervals / matrices / unions, multiple-choice
letters, and the exponent-nesting measure used as a pre-filter. All scans are single passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
_INT = re.compile(r"[-+]?\d+")
_DECIMAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TIMES_TEN = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+))(?:\\times|\\cdot|\*)10\^\{?([-+]?\d+)\}?")
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?(?:[.:)]\s*.*|\s+.*)?", re.DOTALL)
_MATRIX = re.compile(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", re.DOTALL)


def parse_number(s: str) -> int | float | None:
    """A plain number (`-12`, `1,234.5`, `4.5e33`, `3\\times10^{8}`); integers stay exact ints."""
    s = s.strip()
    if not s or len(s) > 400:
        return None
    if "{,}" in s:                    # `10{,}000`: the LaTeX thousands separator
        s = s.replace("{,}", ",")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if _INT.fullmatch(s):
        return int(s)
    if _DECIMAL.fullmatch(s):
        try:
            return float(s)
        except (ValueError, OverflowError):
            return None
    m = _TIMES_TEN.fullmatch(s)
    if m and abs(int(m.group(2))) < 300:
        return float(m.group(1)) * 10.0 ** int(m.group(2))
    return None


def numbers_close(p: int | float, g: int | float, *, include_percentage: bool, rel_tol: float = 1e-4,
                  abs_tol: float | None = None) -> bool:
    """§g.5 rule 2: equal (exactly for two integers, else to `rel_tol`), also as percent variants."""
    try:
        if abs_tol is not None and abs(p - g) <= abs_tol:
            return True
        for ref in (g, g * 100, g / 100) if include_percentage else (g,):
            if isinstance(p, int) and isinstance(ref, int):
                if p == ref:
                    return True
            elif p == ref or abs(p - ref) <= rel_tol * max(abs(p), abs(ref)):
                return True
    except OverflowError:             # a 400-digit integer against a float: not close
        return False
    return False


def split_top_level(s: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside all brackets; unbalanced input gives the whole string back."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                return [s]
        elif ch == sep and depth == 0:
            parts.append(s[start:k])
            start = k + 1
    parts.append(s[start:])
    return parts if depth == 0 else [s]


def outer_brackets(s: str) -> tuple[str, str] | None:
    """(`open`, `close`) when the first bracket closes exactly at the end (`(a),(b)` gives None).

    Intervals mix kinds (`[0,1)`), so any opener may close with any closer at depth 0.
    """
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return None
    depth = 0
    for k, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0 and k != len(s) - 1:
                return None
    return (s[0], s[-1]) if depth == 0 else None


@dataclass
class Container:
    """A comma-separated answer: `kind` is set, tuple (also intervals) or list (bare commas)."""

    kind: str
    brackets: tuple[str, str] | None
    items: list[str]


def as_container(s: str) -> Container | None:
    """Recognise `{a,b}`, `(a,b)`, `[a,b)`, `a,b`; None for a single element."""
    br = outer_brackets(s)
    if br is not None:
        inner = split_top_level(s[1:-1])
        if len(inner) > 1:
            kind = "set" if br == ("{", "}") else "tuple"
            return Container(kind, br, [x.strip() for x in inner])
    items = split_top_level(s)
    if len(items) > 1:
        return Container("list", None, [x.strip() for x in items])
    return None


def matrix_cells(s: str) -> list[list[str]] | None:
    """Rows and cells of a `pmatrix`/`bmatrix`, or None."""
    s = s.strip()
    if outer_brackets(s) is not None and s[1:].lstrip().startswith("\\begin"):
        s = s[1:-1].strip()           # `\left[\begin{array}...\end{array}\right]`
    m = _MATRIX.fullmatch(s)
    if m is None or "\\begin" in m.group(1) or "\\end" in m.group(1):
        return None                   # two matrices (`A + B`): an expression, not one matrix
    rows = [r for r in m.group(1).split("\\\\") if r.strip()]
    return [[c.strip() for c in r.split("&")] for r in rows]


def choice_letter(s: str) -> str | None:
    """`B`, `(B)`, `B)`, `B.`, `(B) 12`, `\\text{(B)}` -> `B`; None otherwise."""
    s = s.strip().replace("$", "")
    for wrapper in ("\\text{", "\\textbf{", "\\mathrm{"):
        if s.startswith(wrapper) and s.endswith("}"):
            s = s[len(wrapper):-1].strip()
    m = _CHOICE.fullmatch(s)
    return m.group(1).upper() if m else None


def exponent_nesting(s: str) -> int:
    """How deeply `^` exponents nest (`5^{5^{5}}` -> 3), in one pass."""
    stack: list[bool] = []          # one entry per open brace: is it an exponent's brace?
    depth = best = 0
    pending = False                 # a `^` was just read: its `{` opens an exponent
    bare = 0                        # `^5^5` style chains without braces
    for ch in s:
        if ch == "^":
            bare = bare + 1 if not pending else bare
            best = max(best, depth + 1, bare)
            pending = True
            continue
        if ch == "{":
            stack.append(pending)
            depth += pending
        elif ch == "}":
            if stack and stack.pop():
                depth -= 1
        elif not (ch.isalnum() or ch == "."):
            bare = 0
        pending = False
    return best
