"""Answer extraction from model generations (methods.md §g.4, rules H1-H2; ICoT §f.2).

Profiles of the math-evaluation-harness lineage: H2 for free-form answers (Minerva
"final answer is $x$. I hope", last brace-balanced `\\boxed{}`, "The answer is", last number),
H1 for multiple-choice letters, plus GSM8K `#### x`, program output and the exact ICoT string.
Every rule is a `str.rfind` / single linear scan or a regex without nested quantifiers, so a
1 MB generation is handled in linear time; `extract_answer` never raises on any string.
The result is the extracted text after the H2 clean-up (newlines, leading `:`, trailing `.`/`/`);
`strip_string` (§g.4.1) is applied by the grader, so the record keeps `extracted` and `normalised`
apart (§g.1).
"""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MAX_BOX_TRIES = 3            # earlier boxes tried when the last one is unbalanced (truncation)
_NUMBER = re.compile(r"-?\d*\.?\d+")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NEWLINE_INDENT = re.compile(r"\n\s*")
_CHOICE_LETTER = re.compile(r"\b([A-E])\b")
_SENTENCE_END = re.compile(r"\.\s|\n|\$\.|\.$")
# `[ \t]*`, not `\s*`: a `\s*` after `\n` would rescan every later newline (quadratic on "\n" * N).
_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t]*(?:A|Answer|Final Answer)[ \t]*:", re.IGNORECASE)


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


def _box_at(text: str, pos: int, command: str) -> str | None:
    """Content of the box whose command starts at `pos`: braced, or the un-braced `\\boxed 5`."""
    k = pos + len(command)
    n = len(text)
    while k < n and text[k] == " ":
        k += 1
    if k < n and text[k] == "{":
        end = matching_brace(text, k)
        return None if end < 0 else text[k + 1:end]
    if k == pos + len(command):           # `\boxedx` is another command, not a box
        return None
    stop = k
    while stop < n and text[stop] not in "$ \n":
        stop += 1
    return text[k:stop] or None


def last_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` / `\\fbox{...}` (None if there is none)."""
    end = len(text)
    for _ in range(_MAX_BOX_TRIES):
        best, command = -1, ""
        for cmd in _BOX_COMMANDS:
            i = text.rfind(cmd, 0, end)
            if i > best:
                best, command = i, cmd
        if best < 0:
            return None
        content = _box_at(text, best, command)
        if content is not None:
            return content
        end = best
    return None


def _after_last(text: str, trigger: str) -> str | None:
    i = text.rfind(trigger)
    return None if i < 0 else text[i + len(trigger):]


def _first_sentence(text: str) -> str:
    """Cut "18. So she earns..." at the end of the first sentence (decimals like 3.5 survive)."""
    text = text.strip()
    m = _SENTENCE_END.search(text)
    return text[:m.start() + (1 if m.group().startswith("$") else 0)] if m else text


def last_number(text: str) -> str | None:
    """H2-5: the last match of `-?\\d*\\.?\\d+` once thousands separators are removed."""
    last = None
    for m in _NUMBER.finditer(_THOUSANDS_COMMA.sub("", text)):
        last = m.group()
    return last


def _minerva(text: str) -> str | None:
    i = text.rfind("final answer is $")
    if i < 0:
        return None
    start = i + len("final answer is $")
    j = text.find("$. I hope", start)
    return text[start:j] if j >= 0 else None


def _answer_line(text: str) -> str | None:
    """`A: x` / `Answer: x` / `Final Answer: x` on the last such line; long prose falls to its last number."""
    last = None
    for m in _ANSWER_LINE.finditer(text):
        last = m
    if last is None:
        return None
    rest = text[last.end():].strip()
    line = _first_sentence(rest.split("\n", 1)[0])
    if len(line) <= 40 and "=" not in line:
        return line
    return last_number(line)


def _clean(ans: str | None) -> str | None:
    """H2 tail: drop newlines with their indentation, a leading `:`, trailing `.` and `/`."""
    if ans is None:
        return None
    ans = _NEWLINE_INDENT.sub("", ans).strip().lstrip(":").strip().rstrip("./").strip()
    return ans or None


def _auto(text: str) -> str | None:
    """H2 (first matching rule wins), extended with `#### x` and `A:`/`Answer:` lines."""
    for rule in (_minerva, last_boxed, _gsm8k_strict):
        ans = _clean(rule(text))
        if ans is not None:
            return ans
    for trigger in ("he answer is", "final answer is", "Final Answer is"):
        ans = _after_last(text, trigger)
        if ans is not None:
            ans = _clean(_first_sentence(ans))
            if ans is not None:
                return ans
    ans = _clean(_answer_line(text))
    return ans if ans is not None else last_number(text)


def _boxed(text: str) -> str | None:
    ans = last_boxed(text)
    return ans.strip() or None if ans is not None else None


def _gsm8k_strict(text: str) -> str | None:
    ans = _after_last(text, "####")
    if ans is None:
        return None
    line = ans.strip().split("\n", 1)[0].strip()
    m = re.match(r"-?[0-9.,]*[0-9]", line)
    return m.group().replace(",", "") if m else (line or None)


def _choice(text: str) -> str | None:
    """H1: a multiple-choice letter A-E (a boxed letter is taken first)."""
    box = last_boxed(text)
    if box is not None:
        m = re.fullmatch(r"\s*\(?\s*(?:\\text\{\s*\(?)?([A-Ea-e])\)?\}?\s*\)?\s*", box)
        if m:
            return m.group(1).upper()
    triggers = ("choice is", "answer is")
    if sum(text.count(t) for t in triggers) > 1:
        text = text.split("\n\n", 1)[0]
    found = False
    for trigger in triggers:
        after = _after_last(text, trigger)
        if after is not None:
            text, found = after, True
    text = text.strip("\n./ :")
    letters = _CHOICE_LETTER.findall(text.upper())
    if letters:
        return letters[0] if found else letters[-1]
    return text or None


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
    "gsm8k": _gsm8k_strict,
    "choice": _choice,
    "program": _program,
    "icot": _icot,
    "last_number": last_number,
}


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
