"""Slow path of `math_equal`: `symbolic_equal(a, b)` with SymPy (docs/methods/evaluation.md §g.5 rule 8).

Parsing follows the harness: the LaTeX-to-SymPy converter first (latex2sympy2_extended, the
parser inside Math-Verify), then SymPy's plain-expression parser with implicit multiplication,
each also tried with `\\\\` replaced by `\\`. Equality then holds if the printed forms or the
objects are equal, `a.equals(b)` or `simplify(a - b) == 0`, two relations have equal `|lhs - rhs|`,
the numeric values agree to 1e-4 relative, or two matrices agree entry-wise to 3 decimals.

This module imports SymPy at import time and may run without bound on adversarial input, so it
is only ever executed inside the killable worker process (`worker.py`), never in the caller.
"""

from __future__ import annotations

import math

import sympy
from latex2sympy2_extended import latex2sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

_TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)


def parse(s: str):
    """A SymPy object for `s`, or None when no parser accepts it."""
    for cand in dict.fromkeys((s, s.replace("\\\\", "\\"))):
        try:
            return latex2sympy(cand)
        except Exception:  # noqa: BLE001 - any parser failure means "try the next parser"
            pass
        try:
            return parse_expr(cand, transformations=_TRANSFORMS, evaluate=True)
        except Exception:  # noqa: BLE001
            pass
    return None


def _matrix_equal(a, b) -> bool:
    if a.shape != b.shape:
        return False
    return all(round(float(x), 3) == round(float(y), 3) for x, y in zip(a, b, strict=True))


def _relation_equal(a, b) -> bool:
    if type(a) is not type(b):
        return False
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    return sympy.simplify(sympy.Abs(da) - sympy.Abs(db)) == 0 or sympy.simplify(da + db) == 0


def _numeric_close(a, b) -> bool:
    """|a - b| <= 1e-4 max(|a|, |b|), in SymPy floats (no underflow: 1/2004! is not 0)."""
    va, vb = sympy.N(a, 30), sympy.N(b, 30)
    if not (va.is_number and vb.is_number and va.is_finite and vb.is_finite):
        return False              # `0` vs `-oo` would otherwise pass: inf <= 1e-4 * inf
    # Purely relative, as the harness: an absolute floor would make 1/2004! equal 1/4004!.
    return bool(sympy.Abs(va - vb) <= sympy.Rational(1, 10**4) * sympy.Max(sympy.Abs(va), sympy.Abs(vb)))


def _explicit(obj):
    """A matrix expression (`A + B`, `AB` of explicit matrices) as its evaluated matrix."""
    if isinstance(obj, sympy.MatrixExpr) and not isinstance(obj, sympy.MatrixBase):
        try:
            return sympy.Matrix(obj.doit().as_explicit())
        except Exception:  # noqa: BLE001 - symbolic shapes stay as they are
            return obj
    return obj


def symbolic_equal(a: str, b: str) -> bool:
    """The harness's last rule (SymPy equality, several ways) on two normalised answer strings."""
    x, y = parse(a), parse(b)
    if x is None or y is None:
        return False
    x, y = _explicit(x), _explicit(y)
    checks = (
        lambda: str(x) == str(y) or x == y,
        lambda: isinstance(x, sympy.MatrixBase) and isinstance(y, sympy.MatrixBase)
        and _matrix_equal(x, y),
        lambda: isinstance(x, sympy.Rel) and isinstance(y, sympy.Rel) and _relation_equal(x, y),
        lambda: isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr) and bool(x.equals(y)),
        lambda: isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr)
        and sympy.simplify(x - y) == 0,
        lambda: isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr) and _numeric_close(x, y),
    )
    for check in checks:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - a check that cannot run has not shown equality
            continue
    return False


def simplify_equal(a: str, b: str) -> bool:
    """The PRM800K grader's test: `simplify(parse(a) - parse(b)) == 0`, nothing more lenient."""
    x, y = parse(a), parse(b)
    if not (isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr)):
        return False
    try:
        return sympy.simplify(x - y) == 0
    except Exception:  # noqa: BLE001 - a difference SymPy cannot simplify is not shown equal
        return False


def math_verify_equal(pred: str, gold: str) -> bool:
    """Math-Verify's own verdict, `verify(parse(gold), parse(pred))`, both wrapped in `$…$` when they
    carry no delimiters (its extraction wants math mode). Timeouts are ours (the worker), so its
    signal-based ones are off."""
    from math_verify import parse as mv_parse
    from math_verify import verify

    def wrap(s: str) -> str:
        return s if ("$" in s or "\\boxed" in s or "\\(" in s or "\\[" in s) else f"${s}$"

    g = mv_parse(wrap(gold), parsing_timeout=None)
    p = mv_parse(wrap(pred), parsing_timeout=None)
    return bool(g and p and verify(g, p, timeout_seconds=None))


def warm() -> None:
    """Touch the parser and simplifier once so the first real request is not the slow one."""
    assert symbolic_equal("x^2+2x+1", "(x+1)^2"), "latex2sympy parser is not working"
    assert math.isclose(float(sympy.N(parse("\\frac{1}{2}"))), 0.5)
