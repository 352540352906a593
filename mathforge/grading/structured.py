"""The `default` profile's first layer: compare answers by their structure, then their leaves.

Order of the rules (the first that decides wins):
1. clean both sides (`forms.clean`) and compare the strings;
2. labelled and chained answers (`x=3, y=4`; `(p,q)=(3,2)`; `x=2+3=5`): labels bind their values
   when both sides carry them, a function's value (`y`, `f(x)`) matches another function's value,
   and a label on one side only is dropped;
3. equations (`2x+3y=6`, conics): equal when `lhs - rhs` of one is a non-zero constant multiple of
   the other's, decided at random points (`latex_numeric`), else by SymPy;
4. sets of reals (intervals, unions, inequalities, `x \\in …`): `intervals.read_set` on both;
5. `\\pm` expands to a two-element set; a decimal comma (`1,5`) is read as a decimal point against a
   single-number gold;
6. everything else goes to the ordinary rules (`equivalence._Grader.equal`) on `strip_string`-ed
   leaves, with the profile's percent, interval and ordering readings.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mathforge.grading import forms
from mathforge.grading import intervals as iv
from mathforge.grading import latex_numeric as ln
from mathforge.grading.normalize import strip_string
from mathforge.grading.structure import parse_number

if TYPE_CHECKING:
    from mathforge.grading.equivalence import Verdict, _Grader

_SPACE = re.compile(r"(?<!\d)\s+|\s+(?!\d)")      # whitespace, except between two digits
_HAS_EQ = re.compile(r"(?<![<>\\])=")


def top(g: _Grader, pred: str, gold: str) -> Verdict:
    """Grade, reading a response (prose, boxes) on either side down to its final answer first."""
    from mathforge.grading.equivalence import Verdict

    p0, q0 = forms.clean(pred).replace("$", ""), forms.clean(gold).replace("$", "")
    if p0.lower() == q0.lower() or _SPACE.sub("", p0) == _SPACE.sub("", q0):
        return Verdict(True, "string")                 # the same text once wrappers are gone
    golds = forms.answers_of(gold)[:1] if forms.is_response(gold) else [gold]
    preds = forms.answers_of(pred) if forms.is_response(pred) else [pred]
    verdict = None
    for p in preds:
        for q in golds:
            v = _top(g, p, q)
            if v.correct:
                return v
            verdict = verdict or v
    return verdict


def _top(g: _Grader, pred: str, gold: str) -> Verdict:
    from mathforge.grading.equivalence import Verdict

    p, q = forms.clean(pred), forms.clean(gold)
    if p.lower() == q.lower():
        return Verdict(True, "string")
    if not p:
        return Verdict(False, "none")
    v = _labelled(g, p, q)
    if v is not None:
        return v
    v = _sets(g, p, q)
    if v is not None:
        return v
    v = _half_planes(p, q)
    if v is not None:
        return v
    m = _BASE.fullmatch(q.replace(" ", "")) or _BASE.fullmatch(p.replace(" ", ""))
    if m and m.group(1) in (p.replace(" ", ""), q.replace(" ", "")):
        return Verdict(True, "string")               # `1011_2` vs `1011`: the base left out
    v = _plus_minus(g, p, q)
    if v is not None:
        return v
    if parse_number(strip_string(q)) is not None:
        p = forms.decimal_comma(p) or p
    if parse_number(strip_string(p)) is not None:
        q = forms.decimal_comma(q) or q
    return leaves(g, p, q)


def leaves(g: _Grader, p: str, q: str) -> Verdict:
    """The ordinary rules on normalised strings (no label or percent information left to lose)."""
    return g.equal(strip_string(p, skip_unit=g.skip_unit), strip_string(q, skip_unit=g.skip_unit))


def compare(g: _Grader, p: str, q: str) -> Verdict:
    """Structure-aware comparison of two cleaned sub-answers (used for label values)."""
    from mathforge.grading.equivalence import Verdict

    if p.lower() == q.lower():
        return Verdict(True, "string")
    for rule in (_sets, _plus_minus):
        v = rule(g, p, q)
        if v is not None:
            return v
    return leaves(g, p, q)


def _labelled(g: _Grader, p: str, q: str) -> Verdict | None:
    from mathforge.grading.equivalence import Verdict

    if not (_HAS_EQ.search(p) or _HAS_EQ.search(q)):
        return None
    pi = [forms.read_item(x) for x in forms.items(p)]
    qi = [forms.read_item(x) for x in forms.items(q)]
    if any(x.equation for x in pi) or any(x.equation for x in qi):
        return _equations(g, pi, qi)
    if len(pi) != len(qi):
        if len(pi) == 1 and pi[0].label is None and all(x.label for x in qi):
            return compare(g, p, "(" + ", ".join(x.value for x in qi) + ")")   # `(1,2,3)` vs `a=1,b=2,c=3`
        if len(qi) == 1 and qi[0].label is not None and len(pi) > 1 and all(x.label is None for x in pi):
            return compare(g, p, qi[0].value)       # `x=1,2` style gold against a bare list
        if len(pi) == 1 and pi[0].label is not None and len(qi) > 1 and all(x.label is None for x in qi):
            return compare(g, pi[0].value, q)
        return Verdict(False, "label")
    if all(x.label for x in pi) and all(x.label for x in qi):
        ep, eq = forms.expand_labels(pi), forms.expand_labels(qi)
        labels_p, labels_q = [x.label for x in ep], [x.label for x in eq]
        if len(set(labels_q)) == len(labels_q) > 1 and sorted(labels_p) == sorted(labels_q):
            by_label = {x.label: x.value for x in ep}           # bound: compare label by label
            return _all(g, [by_label[x.label] for x in eq], [x.value for x in eq], "label")
    for a, b in zip(pi, qi, strict=True):
        if a.label and b.label and a.label != b.label and g.bind_labels and \
                not (forms.function_label(a.label) and forms.function_label(b.label)):
            return Verdict(False, "label")
    if len(pi) == 1:
        v = compare(g, pi[0].value, qi[0].value)
        return Verdict(v.correct, "label" if v.correct else v.rule, v.timed_out)
    labels_q = [x.label for x in qi]
    if all(labels_q) and len(set(labels_q)) == len(labels_q):    # distinct gold labels: in order
        return _all(g, [x.value for x in pi], [x.value for x in qi], "label")
    # Unbound values (a label on one side only, or repeated labels): a list of the gold's type.
    v = compare(g, ", ".join(x.value for x in pi), ", ".join(x.value for x in qi))
    return Verdict(v.correct, "label" if v.correct else v.rule, v.timed_out)


def _all(g: _Grader, ps: list[str], qs: list[str], rule: str) -> Verdict:
    from mathforge.grading.equivalence import Verdict

    for a, b in zip(ps, qs, strict=True):
        v = compare(g, a, b)
        if not v.correct:
            return Verdict(False, rule, v.timed_out)
    return Verdict(True, rule)


def _equation_text(x: forms.Item) -> str:
    if x.expr:
        return f"{x.label}={x.value}"
    return x.value if x.equation else (f"{x.label}={x.value}" if x.label else x.value)


def _equations(g: _Grader, pi: list[forms.Item], qi: list[forms.Item]) -> Verdict:
    """Equations equal up to a non-zero factor; several equations in order."""
    from mathforge.grading.equivalence import Verdict

    if len(pi) != len(qi):
        return Verdict(False, "equation")
    for a, b in zip(pi, qi, strict=True):
        if (a.expr and b.label is None and not b.equation) or (b.expr and a.label is None and not a.equation):
            v = compare(g, a.value, b.value)          # `V_1:V_2=11:21` against `11:21`
            if not v.correct:
                return Verdict(False, "equation", v.timed_out)
            continue
        ea, eb = _equation_text(a), _equation_text(b)
        if "=" not in ea or "=" not in eb:
            return Verdict(False, "equation")
        la, ra = ea.split("=", 1)
        lb, rb = eb.split("=", 1)
        da, db = f"{la}-({ra})", f"{lb}-({rb})"
        same = _proportional(strip_string(da, skip_unit=True), strip_string(db, skip_unit=True))
        if same is None:                 # outside the fast subset: the SymPy relation rule
            v = g._relations(strip_string(ea, skip_unit=True), strip_string(eb, skip_unit=True))
            same = bool(v and v.correct)
            if v is not None and v.timed_out:
                return Verdict(False, "equation", True)
        if not same:
            return Verdict(False, "equation")
    return Verdict(True, "equation")


_BASE = re.compile(r"(\w+)_\{?([0-9a-z]+)\}?")
_INEQ = re.compile(r"\\le|\\ge|<|>")
_SIGN = {"<": 1, "\\le": 1, ">": -1, "\\ge": -1}


def _half_planes(p: str, q: str) -> Verdict | None:
    """`y \\le 2x+1` vs `2x-y \\ge -1`: one inequality each, `lhs - rhs` proportional with a
    positive factor once both are written as `… < 0` (or `… \\le 0`)."""
    from mathforge.grading.equivalence import Verdict

    forms_ = []
    for s in (p, q):
        ops = _INEQ.findall(s)
        if len(ops) != 1:
            return None
        lhs, rhs = _INEQ.split(s)
        forms_.append((f"({lhs})-({rhs})" if _SIGN[ops[0]] > 0 else f"({rhs})-({lhs})",
                       ops[0] in ("<", ">")))
    (dp, sp), (dq, sq) = forms_
    if sp != sq:
        return Verdict(False, "relation")
    ratio = _ratio(strip_string(dp, skip_unit=True), strip_string(dq, skip_unit=True))
    return None if ratio is None else Verdict(ratio > 0, "relation")


def _values(a: str, b: str) -> list[tuple[complex, complex]] | bool | None:
    """(a, b) evaluated at three random points of their common variables (`latex_numeric`); None
    outside the fast subset, without variables or where either cannot be evaluated; False when the
    two have different variables."""
    ca, cb = ln.try_compile(a), ln.try_compile(b)
    if ca is None or cb is None:
        return None
    if ca.variables != cb.variables:
        return False
    if not ca.variables:
        return None
    names = sorted(ca.variables)
    out = []
    for k in range(3):
        env = dict(zip(names, ln._POINTS[k], strict=False))
        va, vb = ln._evaluate(ca, env), ln._evaluate(cb, env)
        if va is None or vb is None:
            return None
        out.append((va, vb))
    return out


def _ratio(a: str, b: str) -> float | None:
    """The constant real k with a = k*b at three random points (0.0 when the ratio varies), or None."""
    values = _values(a, b)
    if not values or any(abs(vb) < 1e-12 for _, vb in values):
        return None
    ks = [va / vb for va, vb in values]
    if any(abs(x - ks[0]) > 1e-6 * abs(ks[0]) for x in ks) or abs(ks[0].imag) > 1e-9 * abs(ks[0]):
        return 0.0
    return ks[0].real


def _proportional(a: str, b: str) -> bool | None:
    """Whether a = k*b for a non-zero constant k, at three random points; None if not decidable."""
    values = _values(a, b)
    if values is None or values is False:
        return values
    for va, vb in values:
        if abs(vb) < 1e-12:
            return abs(va) < 1e-12 and None
    ratios = [va / vb for va, vb in values]
    r0 = ratios[0]
    return abs(r0) > 1e-12 and all(abs(r - r0) <= 1e-6 * abs(r0) for r in ratios)


def _sets(g: _Grader, p: str, q: str) -> Verdict | None:
    from mathforge.grading.equivalence import Verdict

    if not (iv.set_like(p) or iv.set_like(q)):
        return None
    sp, sq = iv.read_set(p), iv.read_set(q)
    if sp is None or sq is None:
        return None
    (np_, ip), (nq, iq) = sp, sq
    if g.bind_labels and np_ and nq and np_ != nq:
        return Verdict(False, "interval")
    return Verdict(iv.same_set(ip, iq, strict=g.strict_intervals), "interval")


def _plus_minus(g: _Grader, p: str, q: str) -> Verdict | None:
    ep, eq = forms.expand_pm(p), forms.expand_pm(q)
    if ep is None and eq is None:
        return None
    from mathforge.grading.equivalence import Verdict

    ps = ep if ep is not None else forms.items(_unbrace(p))
    qs = eq if eq is not None else forms.items(_unbrace(q))
    if len(ps) != len(qs):
        return Verdict(False, "tuple")
    v = g._multiset_equal([strip_string(x) for x in ps], [strip_string(x) for x in qs])
    return v


def _unbrace(s: str) -> str:
    """`\\{a, b\\}` or `{a, b}` -> `a, b`."""
    s = s.replace("\\{", "{").replace("\\}", "}").strip()
    return s[1:-1] if s.startswith("{") and s.endswith("}") else s
