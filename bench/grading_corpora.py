"""Labelled corpora for the grading bench, each carrying where its labels came from.

- `classes`: hand-written cases by class (`bench/data/classes.tsv`, issue 7 points 1-2). These
  are traps that must be rejected and correct answers in other notations that must be accepted.
- `real`: real model outputs on GSM8K test and MATH level-5 problems, labelled by hand
  (`bench/data/real_outputs.jsonl`). They can be graded as the source extracted the answer or
  end to end from the response text.
- `synthetic`: rewrites of GSM8K and MATH golds (`grading_synthetic.py`), labelled by construction.
- `mixed`: the speed corpus. It is a fixed mix of synthetic numerals, synthetic LaTeX numbers,
  synthetic symbolic and structured answers, and every pair of `classes` and `real` (see `MIX`).

Rows that are malformed raise `ValueError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CLASSES_FILE = DATA / "classes.tsv"
REAL_FILE = DATA / "real_outputs.jsonl"
CLASSES_LABELS = "hand-written and hand-labelled by a mathforge developer, 2026-12 (the grader's dev set)"
REAL_LABELS = {
    "gsm8k": "real GSM8K test outputs of GPT-3 6B/175B and ToRA-70B/Code-34B, read and labelled by hand by "
             "a mathforge developer, 2026-12",
    "math": "real answers of 38 chat models to MATH level-5 problems with integer golds (ZeroEval), read "
            "and labelled by hand by a mathforge developer, 2026-12",
}
SYNTHETIC_LABELS = "synthetic rewrites labelled by construction (consistency, not correctness)"
# The speed corpus: synthetic pairs drawn by the kind of their gold, plus every hand-labelled pair.
MIX = (("synthetic numeral (integer or decimal gold)", "numeral", 800),
       ("synthetic LaTeX number (fraction, root, pi, percent)", "latex_number", 500),
       ("synthetic symbolic or structured (variables, tuples, sets, intervals, matrices)", "symbolic", 700))
_LETTERS = re.compile(r"\\(?:text|mbox|mathrm)\{[^}]*\}|\\[a-zA-Z]+")
_STRUCTURE = re.compile(r"[,=<>]|\\le|\\ge|\\in|\\cup|matrix|\\pm")
_NUMERAL = re.compile(r"-?\$?\d[\d,]*(\.\d+)?")


@dataclass(frozen=True)
class Case:
    """One labelled comparison."""

    gold: str
    pred: str | None
    expected: bool
    group: str = ""          # the class (classes.tsv), model (real) or gold kind (synthetic)
    note: str = ""
    question: str | None = None
    response: str | None = None
    ident: str = ""
    benchmark: str = ""


def gold_kind(gold: str) -> str:
    """`numeral`, `latex_number` or `symbolic`: how much algebra the gold asks a grader for."""
    g = gold.strip()
    if _NUMERAL.fullmatch(g):
        return "numeral"
    letters = re.search(r"[a-zA-Z]", _LETTERS.sub("", g))
    if letters or _STRUCTURE.search(g):
        return "symbolic"
    return "latex_number"


def load_classes(path: Path = CLASSES_FILE) -> list[Case]:
    """The hand-written class corpus: tab-separated gold, pred, expected, class, note[, question]."""
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) not in (5, 6):
            raise ValueError(f"{path}:{n}: expected 5 or 6 tab-separated fields "
                             f"(gold, pred, expected, class, note[, question]), got {len(cells)}")
        gold, pred, expected, group, note = cells[:5]
        if expected not in ("0", "1"):
            raise ValueError(f"{path}:{n}: field 'expected' must be 0 or 1, got {expected!r}")
        if not gold.strip() or not pred.strip() or not group.strip():
            raise ValueError(f"{path}:{n}: fields 'gold', 'pred' and 'class' must not be empty")
        question = cells[5].strip() if len(cells) == 6 and cells[5].strip() else None
        cases.append(Case(gold, pred, expected == "1", group, note, question, ident=f"classes:{n}"))
    return cases


_REAL_FIELDS = {"id": str, "gold": str, "response": str, "label": bool, "label_source": str,
                "source": str, "licence": str, "model": str}


def load_real(path: Path = REAL_FILE) -> list[Case]:
    """Real model outputs: one JSON object a line (see bench/data/README.md for the fields)."""
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        for field, kind in _REAL_FIELDS.items():
            if not isinstance(row.get(field), kind):
                raise ValueError(f"{path}:{n}: field {field!r} must be {kind.__name__}, "
                                 f"got {row.get(field)!r}")
        if row.get("pred") is not None and not isinstance(row["pred"], str):
            raise ValueError(f"{path}:{n}: field 'pred' must be a string or null")
        if row.get("benchmark") not in REAL_LABELS:
            raise ValueError(f"{path}:{n}: field 'benchmark' must be one of {sorted(REAL_LABELS)}")
        cases.append(Case(row["gold"], row.get("pred"), row["label"], row["model"], row.get("note", ""),
                          question=row.get("question"), response=row["response"], ident=row["id"],
                          benchmark=row["benchmark"]))
    return cases


def synthetic_cases(limit: int | None = None, seed: int = 0) -> list[Case]:
    """The synthetic rewrites as cases, grouped by the kind of their gold."""
    from grading_synthetic import load_golds, make_pairs

    return [Case(g, p, t, gold_kind(g)) for g, p, t in make_pairs(load_golds(limit), seed)]


def mixed_cases(synthetic: list[Case], classes: list[Case], real: list[Case],
                seed: int = 0) -> tuple[list[Case], list[tuple[str, int]]]:
    """The speed corpus and its recipe, (part, count) in order; shuffled so no kind runs in a block."""
    rng = random.Random(seed)
    parts, cases = [], []
    for label, kind, want in MIX:
        pool = [c for c in synthetic if c.group == kind]
        take = rng.sample(pool, min(want, len(pool)))
        parts.append((label, len(take)))
        cases += take
    answered = [c for c in real if c.pred is not None]
    parts += [("hand-written classes (bench/data/classes.tsv)", len(classes)),
              ("real GSM8K and MATH outputs with an answer (bench/data/real_outputs.jsonl)", len(answered))]
    cases += classes + answered
    rng.shuffle(cases)
    return cases, parts
