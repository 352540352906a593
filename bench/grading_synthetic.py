"""Synthetic rewrites for the grading bench: equivalent and wrong forms of GSM8K and MATH golds.

For each gold answer of GSM8K test (1,319) and MATH test (5,000) this writes forms a model might
produce (`18` -> `18.0`, `$18`, `18 dollars`, `\\frac{1}{2}` -> `0.5`, `1/2`, `\\dfrac12`, reordered
set elements, `\\left(...\\right)`, added `\\text{}` units, re-ordered sum terms) and wrong answers
(perturbed numbers, swapped tuple elements, reciprocals, changed coefficients), each with its truth
label. The labels hold by construction, and the wrong answers are built to stay clear of the
inherited grader's tolerances (never a factor of 100 away, more than 1e-4 relative away). So
agreement on this set measures consistency across notations, not correctness: the hand-labelled
corpora in `bench/data/` measure that.
"""

from __future__ import annotations

import json
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mathforge.grading import extract_answer  # noqa: E402
from mathforge.grading.structure import as_container, outer_brackets  # noqa: E402

_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")


def load_golds(limit: int | None) -> list[tuple[str, str]]:
    """(dataset, gold) for GSM8K test and MATH test, as the data adapters derive them."""
    golds = []
    for line in (ROOT / "data/benchmarks/gsm8k/test.jsonl").open():
        answer = json.loads(line)["answer"]
        golds.append(("gsm8k", answer.split("####")[-1].strip().replace(",", "")))
    for line in (ROOT / "data/benchmarks/math/test.jsonl").open():
        box = extract_answer(json.loads(line)["solution"], style="boxed")
        if box:
            golds.append(("math", box))
    if limit:
        random.Random(0).shuffle(golds)
        golds = golds[:limit]
    return golds


def _terminating(fr: Fraction) -> str | None:
    den = fr.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return None
    return f"{float(fr):.10f}".rstrip("0").rstrip(".")


def _number_rewrites(g: str, rng: random.Random) -> tuple[list[str], list[str]]:
    n = int(g)
    good = [f"{n}.0", f"${n}", f"{n} dollars", f"\\text{{{n}}}", f"{n}.", f"{n}.00"]
    if abs(n) >= 1000:
        good.append(f"{n:,}")
    # Wrong answers stay clear of the harness's tolerances: more than 1e-4 relative away, and
    # never a factor of 100 away (the percent variants of docs/methods/evaluation.md §g.5 rule 2 would accept those).
    rev = str(n)[::-1]
    bad = [str(n + rng.choice([1, -1, 2]) * max(1, abs(n) // 1000)), str(-n) if n else "1",
           str(n * 2 + 1), rev if n > 9 and rev != str(n) and not str(n).endswith("0") else str(n + 3),
           f"{n}.5" if abs(n) < 1000 else f"{n // 2}.5"]
    return good, bad


def _fraction_rewrites(sign: str, a: int, b: int) -> tuple[list[str], list[str]]:
    fr = Fraction(int(sign + str(a)), b)
    good = [f"{sign}{a}/{b}", f"{sign}\\dfrac{{{a}}}{{{b}}}", f"\\frac{{{sign}{a}}}{{{b}}}"]
    if a < 10 and b < 10:
        good.append(f"{sign}\\frac{a}{b}")
    dec = _terminating(fr)
    if dec is not None:
        good.append(dec)
    # Far enough from the gold that the 1e-4 relative tolerance cannot make them right.
    bad = [f"{sign}\\frac{{{2 * a + 1}}}{{{b}}}", f"{sign}{a}/{2 * b + 1}"]
    if abs(a - b) > 1e-3 * max(a, b):
        bad.append(f"{sign}\\frac{{{b}}}{{{a}}}")
    bad.append(str(round(float(fr) * 1.5, 4)) if a else "1")
    return good, bad


def _reorder_sum(g: str) -> str | None:
    """`6p^4 + 5p^2 - 4` -> `- 4 + 6p^4 + 5p^2` (top-level terms only)."""
    terms, depth, start = [], 0, 0
    for k, ch in enumerate(g):
        depth += (ch in "({[") - (ch in ")}]")
        if ch in "+-" and depth == 0 and k > 0 and g[k - 1] not in "^_{(" and g[k - 1] != "e":
            terms.append(g[start:k])
            start = k
    terms.append(g[start:])
    terms = [t.strip() for t in terms if t.strip()]
    if len(terms) < 2 or g.endswith(".") or "=" in g or "," in g or "\\" in g.replace("\\frac", "").replace(
            "\\sqrt", "").replace("\\pi", ""):
        return None
    signed = [t if t[0] in "+-" else "+" + t for t in terms]
    out = "".join(signed[1:] + signed[:1]).lstrip("+")
    return out if out != g else None


def _perturb_digit(g: str, rng: random.Random) -> str | None:
    """Change the first digit (the most significant one, so tolerances cannot absorb it)."""
    m = re.search(r"\d", g)
    if m is None:
        return None
    k = m.start()
    return g[:k] + str((int(g[k]) + rng.choice([1, 2, 3])) % 10) + g[k + 1:]


def _latex_rewrites(g: str, rng: random.Random) -> tuple[list[str], list[str]]:
    good, bad = [], []
    if "\\frac" in g and "\\dfrac" not in g:
        good.append(g.replace("\\frac", "\\dfrac"))
    cont = as_container(g.replace("\\left", "").replace("\\right", ""))
    if cont is not None and cont.kind == "list" and len(set(cont.items)) == len(cont.items) \
            and not re.search(r"\d(?:,|\{,\}|,\\!)\d{3}", g):  # `\$115,000`, `771,\!400`: one number
        good.append(", ".join(reversed(cont.items)))
    if cont is not None and cont.kind == "tuple" and "\\left" not in g:
        good.append("\\left" + g[0] + " " + g[1:-1] + " \\right" + g[-1])
        if g[0] == "(" and g[-1] == ")" and cont.items[0] != cont.items[1]:
            swapped = [cont.items[1], cont.items[0]] + cont.items[2:]
            bad.append("(" + ", ".join(swapped) + ")")
    if "\\sqrt{" in g:
        good.append(re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", g))
    if re.search(r"\^\d", g):
        good.append(re.sub(r"\^(\d)", r"^{\1}", g))
    if outer_brackets(g) is None and cont is None and "\\text" not in g and "=" not in g \
            and "^\\circ" not in g and len(g) < 40:
        good.append(g + "\\text{ units}")
    if g.endswith("^\\circ"):
        good += [g[:-6], g[:-6] + "^{\\circ}"]
    if g.endswith("\\%"):
        good += [g[:-2] + "%", g[:-2]]
    reordered = _reorder_sum(g)
    if reordered:
        good.append(reordered)
    p = _perturb_digit(g, rng)
    if p is not None and p != g:
        bad.append(p)
    if "+" in g and "^" not in g and "=" not in g:
        bad.append(g.replace("+", "-", 1))
    return good, bad


def make_pairs(golds: list[tuple[str, str]], seed: int) -> list[tuple[str, str, bool]]:
    """(gold, pred, truth) triples; at most 3 equivalent and 3 wrong predictions per gold."""
    rng = random.Random(seed)
    pairs = []
    for _, g in golds:
        m = _FRAC.match(g.replace(" ", ""))
        if _INT.match(g):
            good, bad = _number_rewrites(g, rng)
        elif m:
            good, bad = _fraction_rewrites(m.group(1), int(m.group(2)), int(m.group(3)))
        elif _DECIMAL.match(g):
            good, bad = [g + "0", "$" + g + "$"], [str(round(float(g) * 1.5 + 1, 6)), "-" + g]
        else:
            good, bad = _latex_rewrites(g, rng)
        good = [x for x in dict.fromkeys(good) if x != g]
        bad = [x for x in dict.fromkeys(bad) if x != g]
        rng.shuffle(good)
        rng.shuffle(bad)
        pairs += [(g, p, True) for p in good[:3]] + [(g, p, False) for p in bad[:3]]
    return pairs
