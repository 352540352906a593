"""Sets of real numbers: intervals, unions, inequalities and `x \\in …`, read into one normal form.

So that `-3<a<10`, `(-3,10)` and `a \\in (-3, 10)` compare equal, and `x<1` equals `-x>-1`, every
such answer becomes a sorted, merged list of intervals `(lo, hi, lo_closed, hi_closed)` over the
reals. An inequality is solved when it is linear in one variable, possibly inside an absolute
value (`1\\le|z|\\le 2` -> `[-2,-1] ∪ [1,2]`); linearity and the coefficients are found by
evaluating the translated expression (`latex_numeric`) at three points. Infinite ends are open.
Anything else gives None, and the caller uses its other rules.
"""

from __future__ import annotations

import math
import re

from mathforge.grading import latex_numeric as ln
from mathforge.grading.structure import outer_brackets, split_top_level

Interval = tuple[float, float, bool, bool]
_INF = re.compile(r"^([-+]?)\s*(?:\\infty|\\inf|infty|inf|oo)$")
_IN = re.compile(r"^\s*([a-zA-Z](?:_\{?\w+\}?)?)\s*\\in\s*")
_REALS = {"\\mathbb{R}", "\\mathbb R", "\\R", "\\mathbf{R}", "\\mathbb{R}^1", "R", "(-\\infty,\\infty)",
          "\\text{allrealnumbers}", "allrealnumbers"}
_EMPTY = {"\\emptyset", "{}", "\\{\\}", "\\text{none}", "\\text{nosolution}"}
_BUILDER = re.compile(r"\{\s*[a-zA-Z](?:\s*\\in\s*\\mathbb\{?R\}?)?\s*[|:]\s*(.+)\}")
_REL = re.compile(r"\\le|\\ge|<|>")
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}
_TOL = 1e-9


def _value(s: str) -> float | None:
    """A real constant, `±inf` for infinities, None otherwise."""
    s = s.strip()
    m = _INF.match(s.replace(" ", ""))
    if m:
        return -math.inf if m.group(1) == "-" else math.inf
    c = ln.try_compile(s)
    if c is None or c.variables:
        return None
    try:
        v = complex(c.fn({}))
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    return v.real if abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) else None


def _merge(parts: list[Interval]) -> list[Interval]:
    """Sort and join overlapping (or touching, when the touching point is included) intervals."""
    out: list[Interval] = []
    for lo, hi, lc, hc in sorted(p for p in parts if p[0] < p[1] or (p[0] == p[1] and p[2] and p[3])):
        if out:
            plo, phi, plc, phc = out[-1]
            if lo < phi - _TOL or (abs(lo - phi) <= _TOL and (lc or phc)):
                if hi > phi + _TOL or (abs(hi - phi) <= _TOL and hc):
                    out[-1] = (plo, hi, plc, hc if hi > phi + _TOL else (hc or phc))
                continue
        out.append((lo, hi, lc and math.isfinite(lo), hc and math.isfinite(hi)))
    return out


def _interval(s: str) -> Interval | None:
    br = outer_brackets(s)
    if br is None or br[0] not in "([" or br[1] not in ")]":
        return None
    ends = split_top_level(s[1:-1], ",")
    if len(ends) != 2:
        return None
    lo, hi = _value(ends[0]), _value(ends[1])
    if lo is None or hi is None or lo > hi:
        return None
    return (lo, hi, br[0] == "[", br[1] == "]")


def _linear(expr: str) -> tuple[str, float, float] | None:
    """(variable, slope, intercept) of an expression linear in exactly one variable."""
    c = ln.try_compile(expr)
    if c is None or len(c.variables) != 1:
        return None
    (name,) = c.variables
    try:
        f = [complex(c.fn({name: complex(t)})) for t in (0.0, 1.0, 2.0)]
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    if any(abs(v.imag) > 1e-12 for v in f):
        return None
    a, b, d = (v.real for v in f)
    slope = b - a
    if abs((d - b) - slope) > 1e-9 * max(1.0, abs(slope)) or abs(slope) < 1e-12:
        return None
    return name, slope, a


def _ray(op: str, k: float) -> Interval:
    """The set of u with `u op k`."""
    return {"<": (-math.inf, k, False, False), "\\le": (-math.inf, k, False, True),
            ">": (k, math.inf, False, False), "\\ge": (k, math.inf, True, False)}[op]


def _intersect(a: Interval, b: Interval) -> Interval:
    lo, lc = (a[0], a[2]) if a[0] > b[0] or (a[0] == b[0] and not a[2]) else (b[0], b[2])
    hi, hc = (a[1], a[3]) if a[1] < b[1] or (a[1] == b[1] and not a[3]) else (b[1], b[3])
    return (lo, hi, lc, hc)


def _preimage(u_set: list[Interval], slope: float, intercept: float, absolute: bool) -> list[Interval]:
    """{t : (|)slope*t + intercept(|) in u_set}."""
    if absolute:            # |g| in S  <=>  g in (S ∩ [0, inf)) ∪ -(S ∩ [0, inf))
        pos = [_intersect(i, (0.0, math.inf, True, False)) for i in u_set]
        pos = [i for i in pos if i[0] < i[1] or (i[0] == i[1] and i[2] and i[3])]
        u_set = _merge(pos + [(-hi, -lo, hc, lc) for lo, hi, lc, hc in pos])
    out = []
    for lo, hi, lc, hc in u_set:
        a, b = (lo - intercept) / slope, (hi - intercept) / slope
        out.append((a, b, lc, hc) if slope > 0 else (b, a, hc, lc))
    return _merge(out)


_NAME = re.compile(r"[a-zA-Z](?:_\{?\w+\}?)?|[a-zA-Z]+\([a-z]\)")


def _side(expr: str) -> tuple[str, float, float, bool] | None:
    """(variable, slope, intercept, inside |…|) for `g` or `|g|` with g linear in one variable."""
    e = expr.strip()
    if _NAME.fullmatch(e.replace(" ", "")):
        return e.replace(" ", ""), 1.0, 0.0, False          # `x`, `a_1`, `f(x)`
    absolute = len(e) > 2 and e[0] == "|" and e[-1] == "|" and e.count("|") == 2
    lin = _linear(e[1:-1] if absolute else e)
    return None if lin is None else (*lin, absolute)


def _inequality(s: str) -> tuple[str, list[Interval]] | None:
    """A chain `k1 op g op k2` or `lhs op rhs` linear in one variable: (variable, solution set)."""
    marked = _REL.sub(lambda m: "\x00" + m.group() + "\x00", s)
    pieces = marked.split("\x00")
    exprs, ops = pieces[0::2], pieces[1::2]
    if not ops or len(ops) > 2 or any(not e.strip() for e in exprs):
        return None
    if len(ops) == 1:
        lhs, op, rhs = exprs[0], ops[0], exprs[1]
        k = _value(rhs)
        if k is None:
            kl = _value(lhs)
            if kl is not None:
                lhs, op, k = rhs, _FLIP[op], kl
            else:                                   # variables on both sides: lhs - rhs op 0
                lhs, k = f"{lhs}-({rhs})", 0.0
        side = _side(lhs)
        if side is None:
            return None
        name, slope, intercept, absolute = side
        return name, _preimage([_ray(op, k)], slope, intercept, absolute)
    k1, k2, side = _value(exprs[0]), _value(exprs[2]), _side(exprs[1])
    if k1 is None or k2 is None or side is None:
        return None
    u = _intersect(_ray(_FLIP[ops[0]], k1), _ray(ops[1], k2))
    name, slope, intercept, absolute = side
    return name, _preimage([u], slope, intercept, absolute)


def read_set(s: str) -> tuple[str | None, list[Interval]] | None:
    """(variable or None, merged intervals) for a set of reals written in any usual way."""
    s = s.strip().replace("\\{", "{").replace("\\}", "}")
    b = _BUILDER.fullmatch(s)
    if b:                                   # `\\{x \\mid 2 < x \\le 5\\}`: the condition
        s = b.group(1)
    m = _IN.match(s)
    name = None
    if m:
        name, s = m.group(1), s[m.end():]
    compact = s.replace(" ", "")
    if compact in _REALS:
        return name, [(-math.inf, math.inf, False, False)]
    if compact in _EMPTY:
        return name, []
    if _REL.search(s):
        parts = split_top_level(s, ",")
        found = [_inequality(p) for p in parts]
        if any(f is None for f in found) or len({f[0] for f in found}) != 1:
            return None
        return found[0][0], _merge([i for f in found for i in f[1]])
    pieces = re.split(r"\\cup|\bU\b", s)
    intervals = [_interval(p.strip()) for p in pieces]
    if any(i is None for i in intervals):
        return None
    return name, _merge(intervals)


def set_like(s: str) -> bool:
    """Whether `s` can only be read as a set of reals (so a bare `(a,b)` opposite it is an interval)."""
    return bool(_REL.search(s)) or "\\cup" in s or "\\in" in s or "infty" in s or "\\mathbb" in s \
        or (outer_brackets(s) or ("", ""))[0] + (outer_brackets(s) or ("", ""))[1] in ("[)", "(]")


def same_set(a: list[Interval], b: list[Interval], strict: bool) -> bool:
    """Equal unions; with `strict` False the open/closed ends are ignored (the harness reading)."""
    if len(a) != len(b):
        return False
    for (alo, ahi, alc, ahc), (blo, bhi, blc, bhc) in zip(a, b, strict=True):
        for x, y in ((alo, blo), (ahi, bhi)):
            if math.isinf(x) or math.isinf(y):
                if x != y:
                    return False
            elif abs(x - y) > 1e-4 * max(abs(x), abs(y)) and abs(x - y) > 1e-12:   # scalar policy
                return False
        if strict and (alc, ahc) != (blc, bhc):
            return False
    return True
