"""S1 of the JiuZhang3.0-style synthesis pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.3): corpus → snippets.

Every unit of text becomes one snippet, its first 1,000 characters after trimming whitespace. How a
document is cut into units depends on its source kind:

| source   | unit → snippet                                                        | levels      | seed |
|----------|-----------------------------------------------------------------------|-------------|------|
| stack    | `question[:1000] + "\\n\\n" + answer[:1000]` of each record            | 1, random   | 42   |
| textbook | sections starting at lines `## ` (text before the first is dropped), | 1, random   | 42   |
|          | each `[:1000]` wrapped in a fenced block                              |             |      |
| wiki     | `text[:1000]`                                                         | all 8       | 42   |
| web      | `text[:1000]` (optional score window, default [0.20, 1.00])           | 1, random   | 2025 |
| arxiv    | sections starting at `\\section{…}` (the preamble is dropped), `[:1000]` | 1, random | 42   |

A corpus is a JSONL file (field `text`, or `question`/`answer` for stack), a Markdown or plain-text
file (one document), or a folder of them. `source="auto"` picks textbook for Markdown, arxiv for
`.tex`, stack for JSONL records holding question and answer, web otherwise. A record without its
text field is an error naming file, line and field; units that are empty after trimming are counted,
and a corpus that yields no snippet at all is an error.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathforge.synth.io import read_jsonl

LEVELS = ("grade", "middle", "high", "college", "amc8", "amc10", "amc12", "aime")
SOURCES = ("auto", "stack", "textbook", "wiki", "web", "arxiv")
SEEDS = {"stack": 42, "textbook": 42, "wiki": 42, "web": 2025, "arxiv": 42}
TEXT_SUFFIXES = (".jsonl", ".md", ".markdown", ".txt", ".tex")
_MD_SECTION = re.compile(r"^## ", re.MULTILINE)
_TEX_SECTION = re.compile(r"\\section\*?\{")


@dataclass
class SnippetConfig:
    """How a corpus becomes snippets. `seed` None uses the source's seed of §d.3; `score_field`
    (JSONL) with `min_score`/`max_score` keeps units whose score lies in the window (the web subset
    used [0.20, 1.00], arXiv [0.60, 1.00])."""

    source: str = "auto"
    text_field: str = "text"
    question_field: str = "question"
    answer_field: str = "answer"
    max_chars: int = 1000
    seed: int | None = None
    score_field: str = ""
    source_contains: str = ""  # JSONL: keep rows whose `source` field contains this (MMIQC: "stackexchange")
    min_score: float = 0.2
    max_score: float = 1.0
    limit: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"snippets.source={self.source!r} is not one of {list(SOURCES)}")
        if self.max_chars < 1 or self.limit < 0:
            raise ValueError("snippets.max_chars must be >= 1 and snippets.limit >= 0")
        if self.min_score > self.max_score:
            raise ValueError(f"snippets.min_score {self.min_score} > max_score {self.max_score}")


def corpus_files(corpus: str | Path) -> list[Path]:
    """The text files of a corpus: the file itself, or every known text file under a folder."""
    corpus = Path(corpus)
    if corpus.is_file():
        return [corpus]
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus {corpus}: no such file or folder")
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def split_markdown(doc: str) -> list[str]:
    """Sections starting at lines `## `; the text before the first such heading is dropped."""
    return _cut(doc, [m.start() for m in _MD_SECTION.finditer(doc)])


def split_tex(doc: str) -> list[str]:
    """Sections starting at `\\section{…}` commands; the preamble before the first is dropped."""
    return _cut(doc, [m.start() for m in _TEX_SECTION.finditer(doc)])


def _cut(doc: str, starts: list[int]) -> list[str]:
    return [doc[a:b] for a, b in zip(starts, [*starts[1:], len(doc)], strict=False)]


def _units(path: Path, cfg: SnippetConfig, counts: Counter) -> list[tuple[str, str, str]]:
    """(source kind, unit text, origin "file:line") for one file."""
    suffix = path.suffix.lower()
    if suffix != ".jsonl":
        doc = path.read_text(encoding="utf-8")
        kind = cfg.source if cfg.source != "auto" else {".md": "textbook", ".markdown": "textbook",
                                                        ".tex": "arxiv"}.get(suffix, "web")
        if kind == "stack":
            raise ValueError(f"{path}: source 'stack' needs a JSONL file with "
                             f"{cfg.question_field!r}/{cfg.answer_field!r} fields")
        parts = split_markdown(doc) if kind == "textbook" else split_tex(doc) if kind == "arxiv" else [doc]
        return [(kind, p, str(path)) for p in parts]
    out = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        kind = cfg.source
        if kind == "auto":
            kind = "stack" if cfg.question_field in rec and cfg.answer_field in rec else "web"
        if cfg.source_contains and cfg.source_contains.lower() not in str(rec.get("source", "")).lower():
            counts["other_source"] += 1
            continue
        if not _in_window(rec, cfg, where):
            counts["outside_score_window"] += 1
            continue
        if kind == "stack":
            q, a = (_field(rec, f, where) for f in (cfg.question_field, cfg.answer_field))
            out.append((kind, q.strip()[: cfg.max_chars] + "\n\n" + a.strip()[: cfg.max_chars], where))
            continue
        text = _field(rec, cfg.text_field, where)
        parts = split_markdown(text) if kind == "textbook" else split_tex(text) if kind == "arxiv" else [text]
        out.extend((kind, p, where) for p in parts)
    return out


def _field(rec: dict[str, Any], name: str, where: str) -> str:
    value = rec.get(name)
    if not isinstance(value, str):
        have = ", ".join(sorted(rec)) or "none"
        raise ValueError(f"{where}: no text field {name!r} (string) in the record; fields: {have} "
                         "(choose one with --text-field)")
    return value


def _in_window(rec: dict[str, Any], cfg: SnippetConfig, where: str) -> bool:
    if not cfg.score_field:
        return True
    score = rec.get(cfg.score_field)
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise ValueError(f"{where}: score field {cfg.score_field!r} missing or not a number")
    return cfg.min_score <= score <= cfg.max_score


def snippet_text(kind: str, unit: str, max_chars: int) -> str:
    """The snippet of one unit: trimmed, cut to `max_chars`; textbook sections are fenced (§d.3)."""
    if kind == "stack":
        return unit.strip()  # both halves were trimmed and cut already
    text = unit.strip()[:max_chars]
    return f"```\n{text}\n```" if kind == "textbook" and text else text


def make_snippets(corpus: str | Path, cfg: SnippetConfig | None = None) -> tuple[list[dict], dict[str, int]]:
    """Snippet records `{id, text, source, levels, origin}` and counts (units, empty, per source)."""
    cfg = cfg or SnippetConfig()
    files = corpus_files(corpus)
    counts: Counter = Counter(files=len(files))
    rngs = {k: random.Random(SEEDS[k] if cfg.seed is None else cfg.seed) for k in SEEDS}
    snippets: list[dict] = []
    for path in files:
        for kind, unit, origin in _units(path, cfg, counts):
            counts["units"] += 1
            text = snippet_text(kind, unit, cfg.max_chars)
            if not text.strip():
                counts["empty_units"] += 1
                continue
            levels = list(LEVELS) if kind == "wiki" else [rngs[kind].choice(LEVELS)]
            snippets.append({"id": f"{kind}-{counts[f'source_{kind}']:06d}", "text": text, "source": kind,
                             "levels": levels, "origin": origin})
            counts[f"source_{kind}"] += 1
            if cfg.limit and len(snippets) >= cfg.limit:
                return snippets, dict(counts, snippets=len(snippets))
    if not snippets:
        raise ValueError(f"corpus {corpus}: no snippets ({counts['files']} text files, {counts['units']} units, "
                         f"{counts['empty_units']} empty after trimming)")
    return snippets, dict(counts, snippets=len(snippets))
