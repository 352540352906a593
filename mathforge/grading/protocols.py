"""The seed papers' own grading protocols, as profiles, to reproduce their published numbers.

Each takes the prediction (a response or an already extracted answer) and the gold answer and
returns a bool. Where a protocol defines its own extraction, it is applied when its marker is in
the text; otherwise the text is taken as the extracted answer.
- `gsm8k_hash` (Masked Thought GSM8K runs; Chen et al., 2024): `#### x`, commas removed, parsed as
  a float, |pred - gold| < 1e-4; an unparsable answer is wrong.
- `metamath` (MetaMathQA evaluation; Yu et al., 2024): the text after the last `The answer is: `;
  an integer gold takes the first number, fractions evaluated, rounded; otherwise equality of the
  Hendrycks-normalised strings.
- `mammoth` (MAmmoTH evaluation, used by SDAT; Yue et al., 2024): equality of the normalised
  strings; else, when both are numbers, an integer gold wants `round(pred) == gold` and any other
  gold a 4% relative tolerance.
- `prm800k` (the PRM800K grader, used by the TSMC seed; Lightman et al., 2024): the text after the
  last `# Answer`; normalised strings equal, or element by element (brackets and counts must
  match, fractions must be identical strings, an integer only equals an integer, otherwise
  SymPy `simplify(a - b) == 0`, run in the killable worker); no powers with braces are evaluated.
- `icot` (implicit chain of thought; Deng et al., 2023): commas removed, exact string.
The Hendrycks normalisation is the one of the MATH paper's `is_equiv` (Hendrycks et al., 2021).
"""

from __future__ import annotations

import re
from fractions import Fraction

from mathforge.grading.structure import outer_brackets, split_top_level

_HASH = re.compile(r"#### (-?[0-9.,]+)")
_FIRST_NUMBER = re.compile(r"[\-+]?\d*[\.,/]?\d+")
_FRAC = re.compile(r"^-?\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_INT = re.compile(r"^-?\d+$")
_TRAILING_TEXT = re.compile(r"\\text\{\s[^{}]*\}$")
_SQRT_BARE = re.compile(r"\\sqrt(\w)")
_A_SLASH_B = re.compile(r"^(-?\d+)/(\d+)$")


def hendrycks_normalize(s: str) -> str:
    """The MATH paper's answer normalisation (newlines, `\\!`, `tfrac`/`dfrac`, `\\left`/`\\right`,
    degrees, dollars, a trailing unit, percent, leading zeros, a short `k=` prefix, shorthand,
    spaces, `a/b`)."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "")
    s = _TRAILING_TEXT.sub("", s).replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    parts = s.split("=")
    if len(parts) == 2 and len(parts[0]) <= 2:
        s = parts[1]
    s = _SQRT_BARE.sub(r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s).replace(" ", "")
    m = _A_SLASH_B.match(s)
    return f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}" if m else s


def _number(s: str) -> float | None:
    s = s.replace(",", "").strip()
    m = _FRAC.match(s)
    if m:
        return int(m.group(1)) / int(m.group(2)) if int(m.group(2)) else None
    try:
        return float(Fraction(s)) if "/" in s else float(s)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def gsm8k_hash(pred: str, gold: str) -> bool:
    m = None
    for m in _HASH.finditer(pred):  # noqa: B007 - the last match is wanted
        pass
    text = m.group(1) if m else pred
    p, g = _number(text.rstrip(".")), _number(gold)
    return p is not None and g is not None and abs(p - g) < 1e-4


def metamath(pred: str, gold: str) -> bool:
    marker = "The answer is: "
    text = pred.rsplit(marker, 1)[1] if marker in pred else pred
    g = _number(gold)
    if g is not None and float(g).is_integer():
        m = _FIRST_NUMBER.search(text)
        p = _number(m.group()) if m else None
        return p is not None and round(p) == int(g)
    text = text.split(".\n", 1)[0].strip().rstrip(".")
    return hendrycks_normalize(text) == hendrycks_normalize(gold)


def mammoth(pred: str, gold: str) -> bool:
    p, g = hendrycks_normalize(pred.strip().rstrip("./")), hendrycks_normalize(gold)
    if p == g:
        return True
    pn, gn = _number(p), _number(g)
    if pn is None or gn is None:
        return False
    if float(gn).is_integer():
        return round(pn) == int(gn)
    return abs(pn - gn) <= 0.04 * abs(gn)


def icot(pred: str, gold: str) -> bool:
    return pred.replace(",", "").strip() == gold.replace(",", "").strip()


def prm800k_elements(pred: str, gold: str) -> list[tuple[str, str]] | None:
    """The element pairs to compare (strings already normalised), or None when the shapes differ."""
    marker = "# Answer"
    text = pred.rsplit(marker, 1)[1].strip() if marker in pred else pred
    p, g = _strict(hendrycks_normalize(text)), _strict(hendrycks_normalize(gold))
    if p == g:
        return []
    gb, pb = outer_brackets(g), outer_brackets(p)
    gs = split_top_level(g[1:-1]) if gb else [g]
    ps = split_top_level(p[1:-1]) if pb else [p]
    if len(gs) > 1 and (gb != pb):
        return None
    if len(gs) != len(ps):
        return None
    pairs = []
    for a, b in zip(ps, gs, strict=True):
        if a == b:
            continue
        if _FRAC.match(a) and _FRAC.match(b):
            return None                     # an unreduced fraction is not the reduced one
        if bool(_INT.match(a)) != bool(_INT.match(b)):
            return None
        if "^{" in a + b or "^(" in a + b:
            return None                     # the conservative grader refuses powers
        pairs.append((a, b))
    return pairs


def _strict(s: str) -> str:
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s).replace("\\$", "").replace("$", "")
    s = s.replace("^{\\circ}", "").replace("\\dfrac", "\\frac")
    return s.strip()


ENGINES = {"gsm8k_hash": gsm8k_hash, "metamath": metamath, "mammoth": mammoth, "icot": icot}
