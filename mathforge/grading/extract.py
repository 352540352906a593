"""Answer extraction from model generations (docs/methods/evaluation.md §g.4, rules H1-H2; ICoT docs/methods/icot.md §f.2).

Styles (`extract_answer(text, style=...)`):

- `auto` (default, lenient; the math-evaluation-harness H2 lineage): the first rule that finds
  something wins: Minerva "final answer is $x$. I hope"; the last `\\boxed{}`/`\\fbox{}` (the
  un-braced `\\boxed 5` too); GSM8K `#### x`; the last answer marker ("the answer is",
  "final answer is", "Answer:", "**Final Answer:**", a line `A:`; prose of four or more words
  without a digit after `Answer:` is skipped); the last LaTeX span (`$…$`, `$$…$$`, `\\(…\\)`,
  `\\[…\\]`) when no digit follows it and it holds a digit or a command, or only punctuation
  follows it (`Let $x$ be the number.` gives None, `$odd$` gives `odd`); the last number.
- `boxed` / `math` (strict): only a `\\boxed{}`/`\\fbox{}` counts; "just 42" gives None.
- `answer` (strict): only an answer marker counts (Minerva sentence, "the answer is", "final
  answer is", an `Answer:` / `Final Answer:` line, markdown bold included); "just 42" gives None.
- `choice` (H1, multiple choice only): a letter A-E, see `mathforge.grading.choice`.
- `gsm8k` (strict `#### x`), `program` (last printed line), `icot` (§f.2), `last_number`.

Conventions a researcher can rely on:

- **Truncation.** A last `\\boxed{` whose brace never closes means the generation was cut off:
  the answer is None, never a number picked from the reasoning. The one exception: an earlier
  complete box stands when the cut-off box had already begun restating it (its partial text
  is a non-empty prefix of the earlier box, spaces ignored), so nothing the model wrote is
  contradicted. "\\boxed{1} ... let me redo: \\boxed{2" gives None.
- **Several boxes.** The last box wins, except that boxes divided only by separators (`,`,
  `and`, `\\quad`, `\\text{ and }`, `$`) are one answer written in pieces and are joined with
  ", " (`$\\boxed{-2}$ and $\\boxed{1}$` gives `-2, 1`). "or" is not a separator: `\\boxed{3} or
  \\boxed{5}` usually offers alternatives, and the last one stands. LaTeX spans after a marker
  or at the end are joined the same way (`$1$, $2$ and $3$`).
- **Wrappers.** An answer written as a LaTeX span after a marker comes back without its
  delimiters (`The answer is $2-2p$.` gives `2-2p`), with a `\\boxed{}` inside it opened and a
  whole-answer `\\text{}` / `\\textbf{}` / `\\mathrm{}` / `\\mbox{}` removed. Box contents are
  returned verbatim (they are what dataset golds are written as).
- **Numbers in prose.** `1,000` / `12,345` / `1,234,567.5` (a first group of 1-3 digits not
  starting with 0, then groups of exactly three digits) are thousands separators. A single
  comma between digits followed by 1-2 or 4+ digits, or after a lone 0 (`0,111`), is a decimal
  comma (`the answer is 1,5 kg` gives `1.5 kg`), except inside brackets, where `(3,4)` is a
  pair; two or more such commas make a list. A text that is only `1 000` is one thousand;
  digits glued to letters on both sides (`AZYUK2A`) are not a number. Inside boxes and LaTeX
  spans commas are left alone (`\\boxed{1,5}` is usually the list 1, 5). A trailing
  `\\frac{a}{b}` or `a/b` is read whole by the last-number rule.
- Letters are extracted only under `choice`; `auto` never turns a free-form answer into a letter.

Every rule is a `str.find`/`rfind`, a bounded look-back, or a regex without nested quantifiers,
so a 1 MB generation is handled in linear time; `extract_answer` never raises on any string.
`strip_string` (§g.4.1) is applied by the grader, so records keep `extracted` and `normalised`
apart (§g.1).
"""

from __future__ import annotations

import re

from mathforge.grading.extract_numbers import (
    _NUMBER_RUN,
    _decimal_comma,
    _last_match,
    _read_number,
    last_number,
)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MAX_BOX_TRIES = 3            # earlier box commands looked at behind a cut-off or non-box one
_MAX_SPAN_TRIES = 3           # `$` candidates looked at from the end for the last LaTeX span
_MAX_JOINED = 5               # boxes / spans joined into one answer ("$1$, $2$ and $3$")
_BOX_GAP = re.compile(
    r"(?:\s|[,;&~$]|\\[()\[\],;: !]|\\q?quad|\\(?:text|mbox|textrm)\{\s*(?:and|,)?\s*\}|and)*")
_SPAN_GAP = re.compile(r"\s{0,3}(?:,\s{0,3}(?:and)?|and)?\s{0,3}")
_NEWLINE_INDENT = re.compile(r"\n\s*")
_SENTENCE_END = re.compile(r"\.\s|\n|\$\.|\.$")
_DIGIT = re.compile(r"\d")
_SPAN_JOINER = re.compile(r"[ \t]{0,3}(?:,[ \t]{0,3}(?:and)?|and)[ \t]{1,3}(?=\$|\\\()")
_WORD = re.compile(r"[A-Za-z']+")
# "the answer is", "final answer is:", "Answer:", "**Final Answer:**", "answer**:".
_ANSWER_WORD = re.compile(r"\banswers?\b(?:[ \t]*\*\*)?[ \t]*(?:(?:is|are)\b[ \t]*:?|:)", re.IGNORECASE)
# "# Answer" (PRM800K), "## Final Answer", "**Final Answer**" alone on their line.
_ANSWER_HEADING = re.compile(
    r"(?:^|\n)[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?(?:final[ \t]+)?answer(?:\*\*)?[ \t]*(?::[ \t]*)?(?:\*\*[ \t]*)?(?=\n)",
    re.IGNORECASE)
# `[ \t]*`, not `\s*`: a `\s*` after `\n` would rescan every later newline (quadratic on "\n" * N).
_A_LINE = re.compile(r"(?:^|\n)[ \t]*(?:\*\*)?A(?:\*\*)?[ \t]*:", re.IGNORECASE)
_WRAPPERS = ("\\text", "\\textbf", "\\mathrm", "\\mbox", "\\textrm")
_LATEX_SPACES = ("\\,", "\\;", "\\!", "\\quad", "\\ ")


def matching_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `{` at `start`, or -1. Escaped braces (`\\{`, `\\}`) are
    literal characters, not grouping, so `\\left\\{ ... \\right.` inside a box stays balanced."""
    depth = 0
    k, n = start, len(text)
    while k < n:
        ch = text[k]
        if ch == "\\" and k + 1 < n and text[k + 1] in "{}":
            k += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return -1


# ---------------------------------------------------------------------------------------- boxes

_NOT_A_BOX = "not a box"
_CUT_OFF = "cut off"


def _box_at(text: str, pos: int, command: str) -> tuple[str, str, int]:
    """(kind, content, end) of the box command at `pos`: ("box", content, index after it),
    (_CUT_OFF, partial text, len) for an unclosed brace, or (_NOT_A_BOX, "", pos) for another
    command such as `\\boxedx`."""
    k = pos + len(command)
    n = len(text)
    while k < n and text[k] == " ":
        k += 1
    if k < n and text[k] == "{":
        end = matching_brace(text, k)
        return (_CUT_OFF, text[k + 1:], n) if end < 0 else ("box", text[k + 1:end], end + 1)
    if k == pos + len(command) or k >= n:   # `\boxedx` is another command; `\boxed` at the end
        return (_NOT_A_BOX, "", pos) if k < n else (_CUT_OFF, "", n)
    stop = k
    while stop < n and text[stop] not in "$ \n":
        stop += 1
    return "box", text[k:stop], stop


def _rfind_box(text: str, end: int) -> tuple[int, str]:
    best, command = -1, ""
    for cmd in _BOX_COMMANDS:
        i = text.rfind(cmd, 0, end)
        if i > best:
            best, command = i, cmd
    return best, command


def _join_boxes(text: str, pos: int, content: str) -> str:
    """The last box with the boxes right before it that only separators divide from it
    (`\\boxed{1}, \\boxed{2}`, `\\boxed{(2,2)} \\quad \\text{and} \\quad \\boxed{(6,2)}`): one
    answer written as several boxes, joined with ", ". Boxes with words between them are
    corrections ("\\boxed{3}, then after correcting, \\boxed{4}") and the last one stands."""
    parts = [content.strip()]
    for _ in range(_MAX_JOINED - 1):
        prev, command = _rfind_box(text, pos)
        if prev < 0:
            break
        kind, prev_content, end = _box_at(text, prev, command)
        if kind != "box" or end > pos or pos - end > 60 or not _BOX_GAP.fullmatch(text, end, pos):
            break
        parts.append(prev_content.strip())
        pos = prev
    return content if len(parts) == 1 else ", ".join(reversed(parts))


def _find_box(text: str) -> tuple[str | None, bool]:
    """(content of the last box, cut_off). cut_off is True when the last box never closes and no
    earlier box is restated by it (see the module docstring); then content is None."""
    end, partial = len(text), None
    for _ in range(_MAX_BOX_TRIES):
        best, command = _rfind_box(text, end)
        if best < 0:
            break
        kind, content, _ = _box_at(text, best, command)
        if kind == "box":
            if partial is None:
                return _join_boxes(text, best, content), False
            same = "".join(content.split()).startswith(partial)
            return (content, False) if partial and same else (None, True)
        if kind == _CUT_OFF and partial is None:
            partial = "".join(content.split())
        end = best
    return None, partial is not None


def last_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` / `\\fbox{...}` (None if there is none, or if
    the generation was cut off inside its last box)."""
    return _find_box(text)[0]


# -------------------------------------------------------------------------------- LaTeX spans

def _span_at_start(text: str) -> tuple[str, int] | None:
    """(content, end) of the LaTeX span `text` opens with: `$$…$$`, `\\[…\\]`, `\\(…\\)`, or an
    inline `$…$` on one line. A `$` before a number with prose after it is a currency sign."""
    for opener, closer in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if text.startswith(opener):
            j = text.find(closer, len(opener))
            return (text[len(opener):j], j + len(closer)) if j >= 0 else None
    if not text.startswith("$"):
        return None
    j = 1
    while True:
        j = text.find("$", j)
        if j < 0 or text[j - 1] != "\\":
            break
        j += 1
    if j < 0 or "\n" in text[1:j]:
        return None
    content = text[1:j]
    if content[:1].isdigit() and re.search(r"\s[A-Za-z]{2,}", content):
        return None                          # "$18. She spent $": a price, not math
    return content, j + 1


def _last_span(text: str, limit: int) -> tuple[str, int, int] | None:
    """(content, start, end) of the last LaTeX span in `text[:limit]`, or None. A `$` followed by a
    digit opens a price, so it never closes a span."""
    best: tuple[str, int, int] | None = None
    for opener, closer in (("\\[", "\\]"), ("\\(", "\\)")):
        j = text.rfind(closer, 0, limit)
        if j >= 0 and (best is None or j + 2 > best[2]):
            i = text.rfind(opener, 0, j)
            if i >= 0:
                best = (text[i + 2:j], i, j + 2)
    end = limit
    for _ in range(_MAX_SPAN_TRIES):
        j = text.rfind("$", 0, end)
        if j <= 0 or (best is not None and j + 1 <= best[2]):
            break
        end = j
        if text[j - 1] == "\\" or text[j + 1:j + 2].isdigit():
            continue
        if text[j - 1] == "$":               # display `$$…$$`
            i = text.rfind("$$", 0, j - 1)
            if i >= 0:
                return text[i + 2:j - 1], i, j + 1
            break
        i = text.rfind("$", 0, j)
        if i >= 0 and text[i - 1:i] not in ("\\", "$") and text.find("\n", i, j) < 0:
            return text[i + 1:j], i, j + 1
        break
    return best


def _last_spans(text: str) -> tuple[list[str], int] | None:
    """The contents of the last LaTeX span and of the spans right before it that only "," /
    "and" / "or" divide from it ("$21,16$ or $11$"), in order, and the end of the last one."""
    span = _last_span(text, len(text))
    if span is None:
        return None
    contents, start, end = [span[0]], span[1], span[2]
    for _ in range(_MAX_JOINED - 1):
        prev = _last_span(text, start)
        if prev is None or prev[2] > start or start - prev[2] > 12 \
                or not _SPAN_GAP.fullmatch(text, prev[2], start):
            break
        contents.append(prev[0])
        start = prev[1]
    return contents[::-1], end


def _strip_wrapper(s: str) -> str:
    """`\\text{Evelyn}` -> `Evelyn` when the wrapper covers the whole answer."""
    for _ in range(3):
        for cmd in _WRAPPERS:
            if s.startswith(cmd + "{") and matching_brace(s, len(cmd)) == len(s) - 1:
                s = s[len(cmd) + 1:-1].strip()
                break
        else:
            return s
    return s


def _unwrap(content: str) -> str | None:
    """A span's content as an answer: a box inside it opened, `\\displaystyle`, whole-answer
    text wrappers and trailing LaTeX spacing and punctuation removed."""
    box, cut_off = _find_box(content)
    if cut_off:
        return None
    s = (box if box is not None else content).replace("\\displaystyle", "").strip()
    s = _strip_wrapper(s)
    changed = True
    while changed and s:
        changed = False
        for tail in (*_LATEX_SPACES, ".", ","):
            if s.endswith(tail):
                s, changed = s[:-len(tail)].rstrip(), True
    return s or None


# ------------------------------------------------------------------------------ answer markers

def _first_sentence(text: str) -> str:
    """Cut "18. So she earns..." at the end of the first sentence (decimals like 3.5 survive)."""
    text = text.strip()
    m = _SENTENCE_END.search(text)
    return text[:m.start() + (1 if m.group().startswith("$") else 0)] if m else text




def _last_marker(text: str, *, a_line: bool) -> tuple[int, bool] | None:
    """(end of the last answer marker, it is an `A:` line)."""
    found = [(m.end(), False) for m in (_last_match(_ANSWER_WORD, text), _last_match(_ANSWER_HEADING, text))
             if m is not None]
    line = _last_match(_A_LINE, text) if a_line else None
    if line is not None:
        found.append((line.end(), True))
    return max(found) if found else None


def _segment(text: str, start: int, *, a_line: bool) -> str | None:
    """The answer written after a marker ending at `start`: a LaTeX span or box it opens with,
    else its first sentence (long prose falls to a number, as the harness did for `A:`)."""
    rest = text[start:].lstrip(" \t\n*:_")
    span = _span_at_start(rest)
    if span is not None:
        return _joined_spans(rest, span)
    for cmd in _BOX_COMMANDS:
        if rest.startswith(cmd):
            box, cut_off = _find_box(rest)
            return None if cut_off else box
    nl = rest.find("\n")
    line = _first_sentence(rest if nl < 0 else rest[:nl]).strip().strip("*_").strip()
    if line.startswith("$") and line[1:2].isdigit() and "$" not in line[1:]:
        line = line[1:]                       # "$18": a price
    if a_line and (len(line) > 40 or "=" in line):
        return last_number(line)
    if len(line) > 40:
        lead = _NUMBER_RUN.match(line)
        return _read_number(lead.group(), "", line[lead.end():lead.end() + 1]) if lead else last_number(line)
    return _strip_wrapper(_decimal_comma(line))


def _joined_spans(rest: str, span: tuple[str, int]) -> str | None:
    """"$2$ and $3$" / "$2$, $3$, and $4$" after a marker: the spans joined with ", " (at most 5)."""
    parts = [_unwrap(span[0])]
    end = span[1]
    for _ in range(4):
        m = _SPAN_JOINER.match(rest, end)
        nxt = _span_at_start(rest[m.end():m.end() + 2000]) if m else None
        if nxt is None:
            break
        parts.append(_unwrap(nxt[0]))
        end = m.end() + nxt[1]
    if any(p is None for p in parts):
        return None
    return ", ".join(parts)   # type: ignore[arg-type]


def _minerva(text: str) -> str | None:
    i = text.rfind("final answer is $")
    if i < 0:
        return None
    start = i + len("final answer is $")
    j = text.find("$. I hope", start)
    return _unwrap(text[start:j]) if j >= 0 else None


def _marked(text: str, *, a_line: bool) -> str | None:
    marker = _last_marker(text, a_line=a_line)
    if marker is None:
        return None
    return _segment(text, marker[0], a_line=marker[1])


def _clean(ans: str | None) -> str | None:
    """H2 tail: drop newlines with their indentation, a leading `:`, trailing `.` and `/`."""
    if ans is None:
        return None
    ans = _NEWLINE_INDENT.sub("", ans).strip().lstrip(":").strip().rstrip("./").strip()
    return ans or None


# ------------------------------------------------------------------------------------- styles

def _auto(text: str) -> str | None:
    """H2 (first matching rule wins), extended as the module docstring lists."""
    ans = _clean(_minerva(text))
    if ans is not None:
        return ans
    box, cut_off = _find_box(text)
    if cut_off:
        return None
    for ans in (box, _gsm8k_strict(text)):
        ans = _clean(ans)
        if ans is not None:
            return ans
    ans = _clean(_marked(text, a_line=True))
    if ans is not None and not _is_prose(ans):
        return ans
    spans = _last_spans(text)
    if spans is not None and _DIGIT.search(text, spans[1]) is None:
        contents, end = spans
        mathy = any(_DIGIT.search(c) or "\\" in c for c in contents)
        if mathy or not text[end:].strip(" \t\n.,;:!"):
            parts = [_clean(_unwrap(c)) for c in contents]
            if all(parts):
                return ", ".join(parts)   # type: ignore[arg-type]
    return last_number(text)


def _is_prose(ans: str) -> bool:
    """"Let's think step by step" after `Answer:` is not an answer: 4+ words, no digit, no LaTeX."""
    return _DIGIT.search(ans) is None and "\\" not in ans and "$" not in ans and \
        sum(1 for _ in zip(range(4), _WORD.finditer(ans), strict=False)) >= 4


def _boxed(text: str) -> str | None:
    ans = last_boxed(text)
    return ans.strip() or None if ans is not None else None


def _answer_strict(text: str) -> str | None:
    """Only an answer marker counts; "just 42" gives None."""
    ans = _clean(_minerva(text))
    return ans if ans is not None else _clean(_marked(text, a_line=False))


def _gsm8k_strict(text: str) -> str | None:
    ans = _after_last(text, "####")
    if ans is None:
        return None
    line = ans.strip().split("\n", 1)[0].strip()
    m = re.match(r"-?[0-9.,]*[0-9]", line)
    return m.group().replace(",", "") if m else (line or None)


def _after_last(text: str, trigger: str) -> str | None:
    i = text.rfind(trigger)
    return None if i < 0 else text[i + len(trigger):]


def _choice(text: str) -> str | None:
    from mathforge.grading.choice import extract_choice
    return extract_choice(text)


def _program(text: str) -> str | None:
    """Program-of-thought: the last non-empty line of the printed output."""
    for line in reversed(text.strip().splitlines()):
        if line.strip():
            return line.strip()
    return None


def _icot(text: str) -> str | None:
    """§f.2: `#### ...` kept as the exact string after the first `####`, commas removed."""
    i = text.find("####")
    out = ("####" + text[i + 4:]) if i >= 0 else text
    out = out.strip().replace(",", "")
    return out or None


_STYLES = {
    "auto": _auto,
    "boxed": _boxed,
    "math": _boxed,
    "answer": _answer_strict,
    "gsm8k": _gsm8k_strict,
    "choice": _choice,
    "program": _program,
    "icot": _icot,
    "last_number": last_number,
}
STYLES = tuple(_STYLES)


def extract_answer(text: str, *, style: str = "auto") -> str | None:
    """The answer string in `text` under `style`, or None when there is none. Never raises on text."""
    if style not in _STYLES:
        raise ValueError(f"extract_answer: unknown style {style!r}; expected one of {sorted(_STYLES)}")
    if not isinstance(text, str):
        return None
    try:
        return _STYLES[style](text)
    except (RecursionError, MemoryError, ValueError, IndexError):  # defensive: a verdict of "no answer"
        return None
