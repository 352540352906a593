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
from fractions import Fraction

from mathforge.grading import latex_numeric as ln
from mathforge.grading.extract import matching_brace
from mathforge.grading.normalize import UNIT_WORDS
from mathforge.grading.structure import outer_brackets, split_top_level

_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WHOLE_COMMANDS = ("\\boxed", "\\fbox", "\\displaystyle", "\\mathrm", "\\textbf", "\\mathbf", "\\text")
_SPACES = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad\b|~|\\displaystyle")
_REPLACE = (
    ("\\$", ""), (",\\!", ","), ("\\textnormal", "\\text"), ("\\textrm", "\\text"), (" pct", "%"), ("{,}", ","), (">=", "\\ge "), ("<=", "\\le "), ("!=", "\\ne "),
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\leqslant", "\\le"), ("\\geqslant", "\\ge"),
    ("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne"), ("\\lt", "<"), ("\\gt", ">"),
    ("≤", "\\le "), ("≥", "\\ge "), ("≠", "\\ne "), ("−", "-"), ("∞", "\\infty "),
    ("\\left.", ""), ("\\right.", ""), ("\\left", ""), ("\\right", ""), ("\\bigl", ""), ("\\bigr", ""),
    ("\\langle", "("), ("\\rangle", ")"), ("\\lvert", "|"), ("\\rvert", "|"), ("\\vert", "|"), ("\\mid", "|"), ("\\varnothing", "\\emptyset"),
    ("\\%", "%"), ("\\infin", "\\infty"), ("{matrix}", "{pmatrix}"), ("{bmatrix}", "{pmatrix}"),
    ("{smallmatrix}", "{pmatrix}"), ("{Bmatrix}", "{pmatrix}"),
)
# `6 \text{ and } 8`, `x=1 or x=2`: words that join items of a list.
_JOINERS = re.compile(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|,?\s+(?:and|or)\s+)\s*")
_DECIMAL_COMMA = re.compile(r"-?(?:\d+,(?:\d{1,2}|\d{4,})|0,\d+)")
_MIXED = re.compile(r"(-?)(\d+)\s+(\d+)/(\d+)")
_MIXED_TEX = re.compile(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")
_SPACED_THOUSANDS = re.compile(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_EXP_SPACE_DIGIT = re.compile(r"(\^\{?[\w.]+\}?)\s+(?=\d)")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*\{?\\circ\}?")
_GLUED_UNIT = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?)\s*(?:\\(?:text|mbox|mathrm)\{\s*)?(?:"
    + "|".join(re.escape(u) for u in sorted(set(UNIT_WORDS), key=len, reverse=True))
    + r")\s*\}?(?:\^\{?[23]\}?)?")
_TEXT_UNIT = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s*\\(?:text|mathrm|mbox|rm)\{\s*[a-zA-Z][a-zA-Z/. ]*\}(?:\^\{?[23]\}?)?")
_TRIG = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)\b")
_VAR = r"(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?'*"
_LABEL = re.compile(
    rf"{_VAR}|[a-zA-Z]+(?:\^\{{?-1\}}?)?\((?:[^()]*)\)|\(\s*{_VAR}(?:\s*,\s*{_VAR})+\s*\)"
    r"|[A-Z](?:\s*:\s*[A-Z])+|\\text\{[^{}]*\}|[A-Z]{2,3}|(?:m\s*)?\\angle\s*[A-Z]{1,3}"
    r"|\\overline\{[A-Z]{2}\}|\|[A-Z]{2}\|"
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


_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{4,}")
_COMMANDS_AND_TEXT = re.compile(r"\\(?:text|mbox|mathrm|textbf|begin|end)\{[^{}]*\}|\\[a-zA-Z]+")
_DOUBLE_BACKSLASH_CMD = re.compile(r"\\\\(?=[a-zA-Z])")
_OR_GLUED = re.compile(r"\)\s*or\s*\(")


_MATH_SPAN = re.compile(r"\$\$[^$]*\$\$|\$[^$]*\$|\\\((?:[^\\]|\\[^)])*\\\)|\\\[(?:[^\\]|\\[^\]])*\\\]")
_WORD3 = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_NOT_PROSE = {"and", "or", "pct", "sqrt", "sin", "cos", "tan", "log", "exp", "frac", "infty", "inf", "cot",
              "sec", "csc", "arcsin", "arccos", "arctan"}
_LEAD_WORD = re.compile(r"[A-Za-z]{3,}\s*:")                  # `Answer: 42`, `Result: …`
_ANSWER_WORDS = {"answer", "answers", "result", "therefore", "thus", "hence", "solution"}
_CONNECTOR = re.compile(r"^(?:[\s,;$]|\\[][()]|\\q?quad|\\text\{[^{}]*\}|and|or|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*$")


def is_response(s: str) -> bool:
    """Prose or boxed text (a model's response, a worked solution) rather than a bare answer."""
    if "\\boxed" in s or "\\fbox" in s or "\n" in s.strip() or "<answer>" in s or "</think>" in s:
        return True
    if len(s) > 4000:                    # long text is a response; keeps the scan below linear
        return True
    outside = _COMMANDS_AND_TEXT.sub(" ", _MATH_SPAN.sub(" ", s))
    words = [w for w in _WORD3.findall(outside)
             if w.lower() not in _NOT_PROSE and w.lower() not in UNIT_WORDS]
    if not words or " " not in s.strip():
        return False
    if len(words) >= 2 or outside.strip() != s.strip():     # two words, or a word and `$…$`
        return True
    return _LEAD_WORD.search(outside) is not None or words[0].lower() in _ANSWER_WORDS


def all_boxed(text: str) -> tuple[list[str], list[str]]:
    """Contents of every balanced `\\boxed{…}` / `\\fbox{…}` in order, and the text between them."""
    out, gaps, pos = [], [], 0
    while len(out) < 64:
        hits = [(i, c) for c in ("\\boxed{", "\\fbox{") if (i := text.find(c, pos)) >= 0]
        if not hits:
            break
        i, cmd = min(hits)
        end = matching_brace(text, i + len(cmd) - 1)
        if end < 0:
            break
        if out:
            gaps.append(text[pos:i])
        out.append(text[i + len(cmd):end].strip())
        pos = end + 1
    return out, gaps


def answers_of(text: str) -> list[str]:
    """The candidate final answers in a response: every box joined (`\\boxed{1}\\boxed{2}` is
    `1, 2`), then what `extract_answer` finds; the text itself if neither finds anything."""
    from mathforge.grading.extract import extract_answer

    if "</think>" in text:               # a reasoning model's answer comes after its thinking
        text = text.rsplit("</think>", 1)[1]
    tag = _ANSWER_TAG.search(text)
    if tag:                              # `<answer>…</answer>`: the first tag is the answer
        inner = tag.group(1).strip()
        return answers_of(inner) if is_response(inner) else [inner]
    out = []
    boxes, gaps = all_boxed(text)
    if len(boxes) > 1 and all(_CONNECTOR.match(gap) or len(gap.split()) <= 4 for gap in gaps):
        out.append(", ".join(boxes))          # `\\boxed{(2,2)} and \\boxed{(6,2)}`: one answer
    found = extract_answer(text, style="auto")
    if found:
        out.append(found)
        if len(found) <= 4000 and is_response(found):       # "The largest $n$ is 34"
            last = extract_answer(found, style="auto")          # no marker left: last span or number
            if last:
                out.append(last)
    return list(dict.fromkeys(out)) or [text]


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_DOUBLE_COMMA = re.compile(r",\s*,")


def _semicolons(s: str) -> str:
    """`-12;-11` -> `-12,-11`; `p=5,q=2;p=7,q=2` -> `(5,2),(7,2)`; `(0;0;0)` -> `(0,0,0)`."""
    groups = split_top_level(s, ";")
    if len(groups) == 1:
        return s.replace(";", ",")
    out = []
    for grp in groups:
        parts = [x.strip() for x in split_top_level(grp, ",")]
        if len(parts) > 1:
            vals = [p.split("=", 1)[1].strip() if "=" in p else p for p in parts]
            out.append("(" + ",".join(vals) + ")")
        else:
            out.append(grp.strip().replace(";", ","))
    return ",".join(out)


def clean(s: str) -> str:
    """Remove what never carries meaning; keep labels, percent signs, brackets and set braces."""
    s = _strip_whole(str(s))
    if "\\\\" in s and "\\begin" not in s:
        s = _DOUBLE_BACKSLASH_CMD.sub(r"\\", s)          # `\\le` written with an escaped backslash
    for old, new in _REPLACE:
        if old in s:
            s = s.replace(old, new)
    s = _SPACES.sub(" ", s)
    if "\\boxed" in s or "$" in s:
        s = _strip_whole(s.replace("$", ""))
    if ";" in s:
        s = _semicolons(s)
    if ")or(" in s.replace(" ", ""):
        s = _OR_GLUED.sub("),(", s)
    if (" and " in s or " or " in s or "\\text" in s) and any(c.isdigit() or c == "\\" for c in s):
        s = _DOUBLE_COMMA.sub(",", _JOINERS.sub(", ", s))
    if "\\circ" in s:
        s = _DEGREES.sub(r"(\1\\cdot\\frac{\\pi}{180})", s) if _TRIG.search(s) else \
            s.replace("^{\\circ}", "").replace("^\\circ", "")
    if "^" in s:
        s = _EXP_SPACE_DIGIT.sub(r"\1\\cdot ", s)           # `2^6 3^5` is a product
    if _SPACED_THOUSANDS.fullmatch(s):
        s = s.replace(" ", "")
    if "\\overline" in s:
        s = repeating_decimal(s)
    for ch, frac in _UNICODE_FRACTIONS.items():
        if ch in s:
            s = s.replace(ch, frac)
    m = _GLUED_UNIT.fullmatch(s) or _TEXT_UNIT.fullmatch(s) if any(c.isalpha() for c in s) else None
    if m:
        s = m.group(1)                                   # `5cm`, `5\text{ cm}^2`
    m = _MIXED.fullmatch(s) or _MIXED_TEX.fullmatch(s)
    if m:
        s = f"{m.group(1)}({m.group(2)}+\\frac{{{m.group(3)}}}{{{m.group(4)}}})"
    s = s.strip().rstrip(".").strip()
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1].strip()                               # `185\\`: a stray backslash
    if len(s) > 1 and s[0] == "{" and matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1].strip()                             # a LaTeX group, not a set (that is `\\{`)
    return s


_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
_UNICODE_FRACTIONS = {"½": "\\frac{1}{2}", "⅓": "\\frac{1}{3}", "⅔": "\\frac{2}{3}", "¼": "\\frac{1}{4}",
                      "¾": "\\frac{3}{4}", "⅕": "\\frac{1}{5}", "⅛": "\\frac{1}{8}"}


def repeating_decimal(s: str) -> str:
    """`0.\\overline{3}` -> `\\frac{1}{3}`, `1.2\\overline{36}` -> its exact fraction."""
    m = _REPEATING.fullmatch(s)
    if m is None:
        return s
    sign, whole, fixed, rep = m.groups()
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed)) + \
        Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def decimal_comma(s: str) -> str | None:
    """`1,5` -> `1.5` where a comma can only be a decimal mark (not 3 digits after it)."""
    return s.replace(",", ".") if _DECIMAL_COMMA.fullmatch(s) else None


def has_percent(s: str) -> bool:
    return "%" in s or "percent" in s or " pct" in s


_SENTENCES = re.compile(r"[^.?!]+[.?!]?")


def asks_percent(question: str | None) -> bool:
    """Whether the question's last sentence (the ask) mentions a percent: "What percent of ...?"
    asks for one; "... after a 20% discount. What was the price?" does not."""
    if not question:
        return False
    sentences = [x for x in _SENTENCES.findall(question[-2000:]) if x.strip()]
    return bool(sentences) and _PERCENT_QUESTION.search(sentences[-1]) is not None


def items(s: str) -> list[str]:
    """Top-level comma-separated items (one item when there is no top-level comma)."""
    return [x.strip() for x in split_top_level(s, ",") if x.strip()] or [s]


@dataclass
class Item:
    """One answer item: an optional label, the value, and whether it is an equation."""

    label: str | None
    value: str
    equation: bool = False      # `2x+3y=6`: compared as an equation, not as label and value
    expr: bool = False          # the label is an expression (`x+y=5`): an equation too, or a value


_LATEX_WORDS = re.compile(r"\\(?:begin|end)\{\w+\*?\}|\\[a-zA-Z]+")


def _is_constant(s: str) -> bool:
    """A constant expression: translatable without variables, or with no letters at all once
    LaTeX commands are removed (`\\left|3-5\\right|`, `17 \\bmod 5`, a `vmatrix` of numbers)."""
    c = ln.try_compile(s)
    if c is not None:
        return not c.variables
    return not any(ch.isalpha() for ch in _LATEX_WORDS.sub("", s))


_SUBSCRIPT = re.compile(r"_\{[^{}]*\}|_\w")
_DIGIT_OUTSIDE_SUBSCRIPT = re.compile(r"\d")
_RATIO = re.compile(r"\d+(?:\.\d+)?(?::\d+(?:\.\d+)?)+")


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
    if not _DIGIT_OUTSIDE_SUBSCRIPT.search(_SUBSCRIPT.sub("", head)) and \
            (_is_constant(last) or _RATIO.fullmatch(last.replace(" ", ""))):
        return Item(head, last, equation=True, expr=True)   # `\frac{NO}{BO}=\frac{1}{\sqrt6}`
    if len(sides) > 2 or (_is_constant(head) and not _has_variables(last)):
        return Item(None, last)                      # a chain: the last side is the answer
    return Item(None, f"{head}={last}", equation=True)


def expand_labels(its: list[Item]) -> list[Item]:
    """`(p,q)=(3,2)` -> `p=3, q=2`, so tuple labels bind element by element."""
    out = []
    for it in its:
        if it.label and it.label.startswith("(") and not it.equation:
            names = split_top_level(it.label[1:-1], ",")
            br = outer_brackets(it.value)
            values = split_top_level(it.value[1:-1], ",") if br else []
            if br and len(values) == len(names):
                out.extend(Item(n.strip(), v.strip()) for n, v in zip(names, values, strict=True))
                continue
        out.append(it)
    return out


def _norm_label(label: str) -> str:
    label = label.replace(" ", "").replace("{", "").replace("}", "")
    if label.startswith("\\text{"):
        label = label[6:-1].strip().lower()
    return label


def function_label(label: str | None) -> bool:
    """`y`, `f(x)`, `g^{-1}(x)`: names of a function's value, interchangeable with each other."""
    return label is not None and _FUNCTION_LABEL.fullmatch(label) is not None


def expand_pm(s: str) -> list[str] | None:
    """`a \\pm b` -> [a+b, a-b]; a set or list whose items carry `\\pm` -> every item expanded;
    None when there is no `\\pm` to expand."""
    if "\\pm" not in s:
        return None
    inner = s.replace("\\{", "{").replace("\\}", "}").strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    parts = items(inner)
    if len(parts) > 1:
        out = []
        for part in parts:
            out.extend(expand_pm(part) or [part])
        return out
    if s.count("\\pm") != 1:
        return None
    left, right = s.split("\\pm")
    if outer_brackets(s) is not None:
        return None
    left = left.strip()
    return [f"{left}+{right.strip()}" if left else right.strip(),
            f"{left}-{right.strip()}" if left else f"-{right.strip()}"]
