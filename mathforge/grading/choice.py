"""Multiple-choice letter extraction: the `choice` style of `extract_answer` (docs/methods/evaluation.md §g.4 H1).

The math-evaluation-harness rule H1 (aqua, sat_math, mmlu_stem, mathqa), extended with the forms
models write today. Used only for multiple-choice benchmarks: the free-form styles never turn an
answer into a letter. The first rule that finds a letter A-E wins:

1. A boxed letter: `\\boxed{C}`, `\\boxed{(c)}`, `\\boxed{\\text{(B)}}`. A last box cut off by
   truncation gives None (as in every style).
2. H1: if answer markers ("answer is", "choice is", "option is", "Answer:", "final answer is",
   markdown bold allowed) occur more than once, only the text before the first blank line is read
   (a few-shot continuation starts a new question there). After the last marker: the letter
   written right after it, in parentheses, bold, `$…$` or `\\text{}` (lower case too when it
   stands alone, as in "(c)" or "answer is e"); else the first standalone capital A-E after it.
3. A response that opens with a letter: "A. Because B is wrong", "B) 24", "(C)", "**D**", a
   letter alone on the first line; not when that line lists several options ("(A) 12 (B) 16").
4. A last line that is a letter alone.
5. H1 fallback: the last standalone capital A-E in the text. With none, None: H1 kept the
   text, but it can never equal a letter gold, and None records the extraction failure honestly.

Every rule is a bounded prefix check or one linear regex scan.
"""

from __future__ import annotations

import re

from mathforge.grading.extract import _find_box, _last_match

_LETTERS = "ABCDE"
_MARKER = re.compile(r"\b(?:answer|choice|option)\b(?:[ \t]*\*\*)?[ \t]*(?:is\b[ \t]*:?|:)",
                     re.IGNORECASE)
_BOXED_LETTER = re.compile(r"\s*\(?\s*(?:\\text(?:bf)?\{\s*\(?)?([A-Ea-e])\)?\}?\s*\)?\s*")
_STANDALONE = re.compile(r"\b([A-E])\b")
_LEADING = re.compile(
    r"[ \t\n]{0,20}(?:\*\*)?[ \t]{0,5}(?:\(([A-E])\)|\[([A-E])\]|([A-E])(?:[.)]|(?:\*\*)?[ \t]*(?:\n|$)))")
_OTHER_LABEL = re.compile(r"(?:\(|\[|\b)[A-E][).\]]")
_ALONE = re.compile(r"(?:\*\*)?[(\[]?([A-Ea-e])[)\].]?(?:\*\*)?")
_SKIP = ("**", "*", "$", "\\(", "\\text{", "\\textbf{", "\\mathrm{", "\\boxed{", "(", "[", "{",
         "option", "Option", "choice", "Choice", "letter", "Letter", ":", " ", "\t", "\n")


def _letter_right_after(after: str) -> str | None:
    """The letter a marker is followed by, past bold, brackets, `$`, `\\text{` and "option"."""
    k = 0
    for _ in range(12):
        for prefix in _SKIP:
            if after.startswith(prefix, k):
                k += len(prefix)
                break
        else:
            break
    ch, nxt = after[k:k + 1], after[k + 1:k + 2]
    if not ch or nxt.isalnum():
        return None
    if ch in _LETTERS:
        return ch
    if ch.upper() in _LETTERS and ch.isalpha() and (nxt in ("", ")", "]", "}", ".", "*", "$")):
        return ch.upper()
    return None


def _after_marker(text: str) -> tuple[bool, str | None]:
    """(a marker was found, the letter it gives) under H1 rules 1-2 plus the forms above."""
    markers = 0
    for markers, _ in enumerate(_MARKER.finditer(text), 1):
        if markers > 1:
            break
    if markers > 1:
        blank = text.find("\n\n")
        if blank >= 0:
            text = text[:blank]
    last = _last_match(_MARKER, text)
    if last is None:
        return False, None
    after = text[last.end():]
    letter = _letter_right_after(after)
    if letter is None:
        m = _STANDALONE.search(after)
        letter = m.group(1) if m else None
    return True, letter


def _leading_letter(text: str) -> str | None:
    m = _LEADING.match(text)
    if m is None:
        return None
    nl = text.find("\n", m.end())
    first_line_rest = text[m.end():] if nl < 0 else text[m.end():nl]
    if _OTHER_LABEL.search(first_line_rest):
        return None                               # an echo of the option list
    return m.group(1) or m.group(2) or m.group(3)


def extract_choice(text: str) -> str | None:
    """The chosen letter A-E in `text`, or None when there is none."""
    box, cut_off = _find_box(text)
    if cut_off:
        return None
    if box is not None and len(box) <= 40:
        m = _BOXED_LETTER.fullmatch(box)
        if m:
            return m.group(1).upper()
    found, letter = _after_marker(text)
    if letter is not None:
        return letter
    if not found:
        letter = _leading_letter(text)
        if letter is not None:
            return letter
    stripped = text.strip("\n./ :")
    nl = stripped.rfind("\n")
    m = _ALONE.fullmatch(stripped[nl + 1:].strip())
    if m:
        return m.group(1).upper()
    last = _last_match(_STANDALONE, stripped)
    return last.group(1) if last else None
