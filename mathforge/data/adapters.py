"""Per-dataset adapters: one shipped record -> one `Problem` (docs/methods/evaluation.md §g.6, docs/data.md §2-3).

Each adapter builds the question text exactly as §g.6 specifies (the math-evaluation-harness
lineage: JiuZhang3.0 / Qwen2.5-Math evaluation copies), derives the gold answer with the dataset's
own rule, and records the grading options that `mathforge.grading.is_equivalent` needs. Gold
answers keep their LaTeX: the grader normalises both sides itself (`strip_string`), so doing it
here too would only risk normalising twice.
"""

from __future__ import annotations

import ast
import math
import re
from decimal import Decimal
from typing import Any

from mathforge.data.records import Problem

MC_LETTERS = "ABCDE"


class RecordError(ValueError):
    """A record lacks a field or holds a value its adapter cannot read (caller adds file:line)."""


def field(rec: dict[str, Any], name: str) -> Any:
    """`rec[name]`, or a RecordError naming the missing field."""
    if name not in rec or rec[name] is None:
        raise RecordError(f"missing field {name!r}")
    return rec[name]


def number_to_string(value: Any) -> str:
    """Gold numbers as strings: `145.0` -> `145`, `11.5` -> `11.5`, `-2.4967e-05` -> `-0.000024967`.

    Positional notation (never `1e-05`) because graders and humans compare the digits.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise RecordError(f"non-finite number {value!r}")
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text.lower() else text


def rewrite_relations(text: str) -> str:
    """Only the relation macros (`\\neq`, `\\leq`, `\\geq` -> `\\ne`, `\\le`, `\\ge`): the
    JiuZhang3.0 convention for minerva_math and carp_en golds, which get no `strip_string`."""
    return re.sub(r"\\(ne|le|ge)q(?![A-Za-z])", r"\\\1", text)


def after_hashes(text: str) -> str:
    """Text after the last `####`, stripped, thousands separators removed (GSM8K / ICoT rule)."""
    if "####" not in text:
        raise RecordError("no '####' answer marker")
    return text.rsplit("####", 1)[1].strip().replace(",", "")


_EITHER = re.compile(r"\beither (?:point|one|answer|value|of (?:these|them))\b[^.]{0,40}\b(?:acceptable|correct)",
                     re.IGNORECASE)


def last_box(solution: str) -> str:
    """Brace-balanced content of the last `\\boxed{}` through the project's one extractor."""
    from mathforge.grading import extract_answer

    box = extract_answer(solution, style="boxed")
    if box is not None and _EITHER.search(solution):
        # "Either point is an acceptable answer": boxes side by side are alternatives, not one
        # answer; the last one alone is the gold (as before boxes were joined).
        from mathforge.grading.forms import all_boxed

        box = (all_boxed(solution)[0] or [box])[-1]
    if box is None or not box.strip():
        raise RecordError("solution has no \\boxed{} answer")
    return box.strip()


# ---------------------------------------------------------------------------- multiple choice
def format_choices(choices: list[str]) -> str:
    """`(A) c0 (B) c1 ...` — the harness's answer-choice rendering."""
    return " ".join(f"({MC_LETTERS[i]}) {c}" for i, c in enumerate(choices))


def split_lettered(options: str, letters: str = "ABCD") -> list[str]:
    """Split `A) x B) y ...` (or `A. x B. y`) into option texts, finding each letter in order so
    that a `B)` inside an earlier option's maths cannot start a new option early."""
    starts: list[tuple[int, int]] = []
    pos = 0
    for letter in letters:
        m = re.compile(rf"(?:^|\s){letter}[.)]\s*").search(options, pos)
        if m is None:
            raise RecordError(f"options lack a {letter}) marker: {options[:80]!r}")
        starts.append((m.start(), m.end()))
        pos = m.end()
    ends = [s for s, _ in starts[1:]] + [len(options)]
    return [options[b:e].strip() for (_, b), e in zip(starts, ends, strict=True)]


def split_mathqa(options: Any) -> list[str]:
    """MathQA options: `a ) 12 , b ) 16 , ...` split only on ` , <letter> ) ` (option text may hold
    commas); 16 records store a Python-list literal `['a ) 462 cm ²', ...]` instead."""
    if isinstance(options, str) and options.startswith("["):
        try:
            options = ast.literal_eval(options)
        except (ValueError, SyntaxError) as exc:
            raise RecordError(f"unreadable options list {options[:60]!r}") from exc
    parts = options if isinstance(options, list) else re.split(r"\s*,\s*(?=[a-e] \) )", options)
    out = []
    for i, part in enumerate(parts):
        m = re.match(r"\s*([a-e])\s*\)\s*(.*)$", part, re.S)
        if m is None or m.group(1) != "abcde"[i]:
            raise RecordError(f"option {i} is not lettered {'abcde'[i]!r}: {part!r}")
        out.append(m.group(2).strip())
    return out


def choice_problem(idx: int, question: str, choices: list[str], letter: str, **kw: Any) -> Problem:
    letter = str(letter).strip().upper()
    if len(letter) != 1 or letter not in MC_LETTERS[: len(choices)]:
        raise RecordError(f"gold {letter!r} is not one of the {len(choices)} option letters")
    return Problem(id=str(idx), question=question, answer=letter, choices=choices,
                   extract_style="choice", **kw)


def aqua(rec: dict, idx: int, aqua_newline: bool = False) -> Problem:
    choices = []
    for i, opt in enumerate(field(rec, "options")):
        if not opt.startswith(f"{MC_LETTERS[i]})"):
            raise RecordError(f"option {i} does not start with '{MC_LETTERS[i]})': {opt!r}")
        choices.append(opt[2:].strip())
    sep = "\nAnswer Choices: " if aqua_newline else " Answer Choices: "
    question = field(rec, "question").strip() + sep + format_choices(choices)
    return choice_problem(idx, question, choices, field(rec, "correct"),
                          solution=rec.get("rationale"), meta={})


def sat_math(rec: dict, idx: int) -> Problem:
    choices = split_lettered(field(rec, "options"))
    question = field(rec, "question") + "\nAnswer Choices: " + format_choices(choices)
    return choice_problem(idx, question, choices, field(rec, "Answer"), meta={"source_id": rec.get("id")})


def mmlu_stem(rec: dict, idx: int) -> Problem:
    choices = [str(c) for c in field(rec, "choices")]
    answer = field(rec, "answer")
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise RecordError(f"field 'answer' must index the choices, got {answer!r}")
    question = field(rec, "question") + "\nAnswer Choices: " + format_choices(choices)
    return choice_problem(idx, question, choices, MC_LETTERS[answer], meta={"type": rec.get("type")})


def mathqa(rec: dict, idx: int) -> Problem:
    choices = split_mathqa(field(rec, "options"))
    question = field(rec, "problem") + "\nAnswer Choices: " + format_choices(choices)
    return choice_problem(idx, question, choices, field(rec, "correct"), solution=rec.get("rationale"),
                          meta={"type": rec.get("type")})


# ---------------------------------------------------------------------------- free-form answers
def gsm8k(rec: dict, idx: int) -> Problem:
    solution = field(rec, "answer")
    return Problem(id=str(idx), question=field(rec, "question"), answer=after_hashes(solution),
                   solution=solution, meta={"gold_raw": solution.rsplit("####", 1)[-1].strip()})


def math_full(rec: dict, idx: int) -> Problem:
    level = re.fullmatch(r"Level (\d)", str(field(rec, "level")))
    meta = {"level": int(level.group(1)) if level else None, "type": field(rec, "type")}
    solution = field(rec, "solution")
    return Problem(id=str(idx), question=field(rec, "problem"), answer=last_box(solution),
                   solution=solution, meta=meta)


def math500(rec: dict, idx: int) -> Problem:
    meta = {"level": int(field(rec, "level")), "subject": field(rec, "subject"),
            "type": field(rec, "subject"), "unique_id": rec.get("unique_id")}
    return Problem(id=str(idx), question=field(rec, "problem"), answer=str(field(rec, "answer")).strip(),
                   solution=rec.get("solution"), meta=meta)


def minerva_math(rec: dict, idx: int) -> Problem:
    solution = field(rec, "solution")
    return Problem(id=str(idx), question=field(rec, "problem"), answer=rewrite_relations(last_box(solution)),
                   solution=solution, meta={"type": rec.get("type")}, grading={"skip_unit": True})


def svamp(rec: dict, idx: int) -> Problem:
    body = str(field(rec, "Body")).strip()
    if not body.endswith("."):
        body += "."
    question = f"{body} {str(field(rec, 'Question')).strip()}"
    meta = {"type": rec.get("Type"), "equation": rec.get("Equation"), "source_id": rec.get("ID")}
    return Problem(id=str(idx), question=question, answer=number_to_string(field(rec, "Answer")), meta=meta)


def asdiv(rec: dict, idx: int, asdiv_unit_rule: str = "mathforge") -> Problem:
    raw = str(field(rec, "answer"))
    if asdiv_unit_rule == "harness":
        # The harness deleted every parenthesised group: `-(1/3)` becomes `-` (unsolvable).
        answer = re.sub(r"\(.*?\)", "", raw).strip()
    elif asdiv_unit_rule == "mathforge":
        # Only a final group holding a letter is a unit: `9 (apples)` -> `9`, `-(1/3)` kept.
        answer = re.sub(r"\s*\([^()]*[A-Za-z][^()]*\)\s*$", "", raw).strip()
    else:
        raise ValueError(f"asdiv_unit_rule must be 'mathforge' or 'harness', got {asdiv_unit_rule!r}")
    question = f"{str(field(rec, 'body')).strip()} {str(field(rec, 'question')).strip()}"
    meta = {"type": rec.get("solution_type"), "formula": rec.get("formula")}
    return Problem(id=str(idx), question=question, answer=answer, meta=meta)


def numeric_target(question_key: str, answer_key: str, meta_keys: tuple[str, ...] = ()):
    """Adapters whose gold is one float field (mawps, gsm_hard, amc23): number -> string."""

    def adapt(rec: dict, idx: int) -> Problem:
        meta = {k: rec[k] for k in meta_keys if k in rec}
        return Problem(id=str(idx), question=str(field(rec, question_key)),
                       answer=number_to_string(field(rec, answer_key)), meta=meta,
                       solution=rec.get("code"))

    return adapt


def carp_en(rec: dict, idx: int) -> Problem:
    return Problem(id=str(idx), question=field(rec, "content"),
                   answer=rewrite_relations(str(field(rec, "answer")).strip()),
                   solution=rec.get("steps"), grading={"skip_unit": True})


def aime24(rec: dict, idx: int) -> Problem:
    # The solutions hold 0-9 boxes from several write-ups: never a gold source (docs/data.md).
    return Problem(id=str(idx), question=field(rec, "problem"), answer=str(field(rec, "answer")).strip(),
                   meta={"source_id": rec.get("id"), "url": rec.get("url")})


def college_math(rec: dict, idx: int) -> Problem:
    meta = {k: rec.get(k) for k in ("data_source", "data_topic", "question_number", "license")}
    meta["type"] = rec.get("data_topic")
    return Problem(id=str(idx), question=field(rec, "question"), answer=str(field(rec, "answer")).strip(),
                   meta=meta)


# ---------------------------------------------------------------------------- several answers
def split_top_level(text: str) -> list[str]:
    """Split on commas outside every bracket pair (`()`, `[]`, `{}`; `\\{` counts as `{`)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def answer_list(raw: str, *, allow_thousands: bool = True) -> list[str]:
    """The answers held in one gold string.

    `$48$, $384$` and `$0.05$ and $0.6$` (several maths segments joined by `,`/`and`) and
    top-level comma lists such as `(12,3,4), (6,5.4,7.6)` or `$I,II,III,IV$` hold several; a
    set `\\{2,3,5\\}`, an interval `[2,3)` or a number with thousands separators (`$2,900$`,
    when `allow_thousands`) is one answer.
    """
    text = raw.strip()
    segments = re.findall(r"\$([^$]*)\$", text)
    between = re.sub(r"\$[^$]*\$", "", text)
    if len(segments) >= 2 and re.fullmatch(r"(?:\s*(?:,|and)\s*)+", between):
        return [s.strip() for s in segments]
    inner = text[1:-1] if len(segments) == 1 and text.startswith("$") and text.endswith("$") else text
    if allow_thousands and re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", inner.strip()):
        return [text]
    parts = split_top_level(inner)
    return parts if len(parts) >= 2 else [text]


def gaokao2023en(rec: dict, idx: int) -> Problem:
    raw, question = str(field(rec, "answer")), str(field(rec, "question"))
    meta = {k: rec[k] for k in ("source", "sourcename", "id") if k in rec}
    meta["type"] = rec.get("sourcename") or "gaokao"
    if not raw.strip():
        # [library] 2 shipped records have an empty `answer` and their answer pasted at the end of
        # the question (`...saddle point.answers: $\frac{3}{10}$`): move it back, so no gold is empty.
        m = re.search(r"\s*answers?\s*:\s*([^:]+?)\s*$", question, re.I)
        if m is None:
            raise RecordError("field 'answer' is empty")
        question, raw = question[: m.start()], m.group(1)
        meta["repaired"] = "gold moved out of the question text"
    answers = answer_list(raw)
    if len(answers) > 1:
        # Several answers (4 records hold two, one holds four): a comma list compared unordered.
        return Problem(id=str(idx), question=question, answer=", ".join(answers),
                       meta=meta | {"n_answers": len(answers)}, grading={"unordered": True})
    return Problem(id=str(idx), question=question, answer=raw.strip(), meta=meta)


def olympiadbench(rec: dict, idx: int) -> Problem:
    finals = field(rec, "final_answer")
    if not isinstance(finals, list) or len(finals) != 1 or not str(finals[0]).strip():
        raise RecordError(f"field 'final_answer' must be a list of one answer, got {finals!r}")
    answer, grading = str(finals[0]).strip(), {}
    if rec.get("is_multiple_answer"):
        answer = ", ".join(answer_list(answer, allow_thousands=False))
        grading["unordered"] = True
    if rec.get("error") is not None:
        try:
            grading["abs_tol"] = float(rec["error"])
        except (TypeError, ValueError) as exc:
            raise RecordError(f"field 'error' is not a number: {rec['error']!r}") from exc
    if rec.get("unit"):
        grading["unit"] = str(rec["unit"])
    solutions = rec.get("solution") or []
    meta = {"type": rec.get("subfield"), "subfield": rec.get("subfield"),
            "answer_type": rec.get("answer_type"), "source_id": rec.get("id")}
    return Problem(id=str(idx), question=field(rec, "question"), answer=answer,
                   solution=solutions[0] if solutions else None, meta=meta, grading=grading)


# ---------------------------------------------------------------------------- `q||cot #### a` lines
def icot_line(line: str, idx: int) -> Problem:
    """One implicit-CoT line `question||cot #### answer` (Deng et al. 2023; docs/data.md §3) -> gold
    `#### answer`, exactly what `extract_answer(style="icot")` returns for a correct generation."""
    if "||" not in line:
        raise RecordError("line lacks the '||' question/chain separator")
    question, rest = line.split("||", 1)
    if "####" not in rest:
        raise RecordError("line lacks the '#### answer' marker")
    from mathforge.grading import extract_answer

    cot, after = rest.rsplit("####", 1)
    if not after.strip():
        raise RecordError("empty answer after '####'")
    # The ICoT convention (docs/methods/icot.md §f.2, docs/data.md §3): gold and prediction are both `#### <answer>` with commas
    # removed, compared as exact strings; the grading extractor makes the gold from the line itself.
    answer = extract_answer("####" + after, style="icot")
    return Problem(id=str(idx), question=question.strip(), answer=answer, solution=cot.strip(),
                   extract_style="icot", meta={"gold_raw": rest.rsplit("####", 1)[1].strip()})
