"""Example generations for a report: what the model actually wrote, right and wrong.

From a run's per-sample records (`outputs.jsonl` of `mathforge eval`, `eval_samples.jsonl` of a
training run) it picks, per benchmark, the first few problems (in file order, so the choice is
reproducible) whose first sample was graded correct, wrong, with no answer extracted, or left
undecided by a grader timeout, and shows each with its question, gold answer, generation (cut at
`max_chars`), extracted answer and verdict.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

KINDS = ("correct", "wrong", "no answer extracted", "grader timeout")


@dataclass
class Example:
    benchmark: str
    idx: str
    kind: str
    question: str
    gold: str
    generation: str
    extracted: str | None
    verdict: str
    rule: str | None = None


def kind_of(record: dict) -> str:
    """One of KINDS for an outputs.jsonl record (verdict `correct|wrong|timeout`, `extracted` None when
    nothing could be extracted)."""
    verdict = record.get("verdict") or ("correct" if record.get("correct") else "wrong")
    if verdict == "timeout" or record.get("flags", {}).get("grade_timeout"):
        return "grader timeout"
    if verdict == "correct":
        return "correct"
    return "no answer extracted" if record.get("extracted") in (None, "") else "wrong"


def iter_records(path: Path):
    """The JSON lines of `path`; a torn last line (a run killed mid-write) is skipped."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    return


def pick_eval_examples(outputs: Path, *, per_kind: int = 2) -> list[Example]:
    """Up to `per_kind` first samples of each kind per benchmark, in file order."""
    picked: list[Example] = []
    counts: dict[tuple[str, str], int] = {}
    for r in iter_records(outputs):
        if r.get("sample_id", 0) != 0:
            continue
        kind = kind_of(r)
        key = (str(r.get("dataset")), kind)
        if counts.get(key, 0) >= per_kind:
            continue
        counts[key] = counts.get(key, 0) + 1
        picked.append(Example(str(r.get("dataset")), str(r.get("idx")), kind, str(r.get("question", "")),
                              str(r.get("gold_raw", r.get("gold", ""))), str(r.get("generation", "")),
                              r.get("extracted"), str(r.get("verdict", kind)), r.get("grade_rule")))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(picked, key=lambda e: (e.benchmark, order[e.kind]))


def pick_train_examples(samples: Path, *, per_kind: int = 3, benchmark: str = "held-out") -> list[Example]:
    """The same for a training run's `eval_samples.jsonl` (prompt, completion, pred, gold, correct)."""
    picked: list[Example] = []
    counts: dict[str, int] = {}
    for i, r in enumerate(iter_records(samples)):
        pred = r.get("pred")
        kind = "correct" if r.get("correct") else ("no answer extracted" if pred in (None, "") else "wrong")
        if counts.get(kind, 0) >= per_kind:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        picked.append(Example(benchmark, str(i), kind, str(r.get("prompt", "")), str(r.get("gold", "")),
                              str(r.get("completion", "")), pred, kind))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(picked, key=lambda e: order[e.kind])


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[... {len(text) - max_chars} more characters]"


def examples_md(examples: list[Example], *, max_chars: int = 1200) -> str:
    lines = []
    for e in examples:
        lines += [f"**{e.benchmark} #{e.idx}: {e.kind}** (gold `{e.gold}`, extracted "
                  f"`{e.extracted if e.extracted not in (None, '') else '-'}`, verdict {e.verdict}"
                  + (f", rule {e.rule}" if e.rule else "") + ")", "",
                  "Question:", "", "```text", _cut(e.question, max_chars).replace("```", "` ` `"), "```", "",
                  "Generation:", "", "```text", _cut(e.generation, max_chars).replace("```", "` ` `"), "```", ""]
    return "\n".join(lines)


def examples_html(examples: list[Example], *, max_chars: int = 1200) -> str:
    parts = []
    for e in examples:
        cls = {"correct": "ok", "wrong": "bad", "no answer extracted": "bad"}.get(e.kind, "undecided")
        extracted = e.extracted if e.extracted not in (None, "") else "-"
        parts.append(
            f"<details class='ex {cls}'><summary><b>{html.escape(e.benchmark)} #{html.escape(e.idx)}: "
            f"{html.escape(e.kind)}</b> &mdash; gold <code>{html.escape(e.gold)}</code>, extracted "
            f"<code>{html.escape(str(extracted))}</code>, verdict {html.escape(e.verdict)}"
            + (f", rule {html.escape(e.rule)}" if e.rule else "") + "</summary>"
            f"<div class='q'>Question</div><pre>{html.escape(_cut(e.question, max_chars))}</pre>"
            f"<div class='q'>Generation</div><pre>{html.escape(_cut(e.generation, max_chars))}</pre></details>")
    return "".join(parts)


EXAMPLES_CSS = (".ex{border:1px solid #ccc;border-left-width:6px;margin:6px 0;padding:4px 10px}"
                ".ex.ok{border-left-color:#2e7d32}.ex.bad{border-left-color:#c62828}"
                ".ex.undecided{border-left-color:#e0a800}.ex summary{cursor:pointer}"
                ".ex pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:6px;margin:2px 0 8px}"
                ".q{font-size:12px;color:#555;margin-top:6px}")
