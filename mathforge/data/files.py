"""User problem files: any JSONL / JSON-list file (or a Hugging Face dataset) -> `list[Problem]`.

A field mapping says where the question, gold answer, id and solution live in each record;
dotted paths reach into nested objects and lists (`"meta.answer"`, `"choices.0"`). The gold can
be derived with a named rule (`answer_rule="gsm8k"` takes the text after `####`, `"boxed"` the
last `\\boxed{}`) or any callable. Bad input fails loudly with the file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathforge.data import adapters as ad
from mathforge.data.records import Problem

_MISSING = object()


def get_path(record: Any, path: str) -> Any:
    """Follow a dotted path through dicts and lists (`"a.b.0"`); `_MISSING` when absent."""
    node = record
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _rule_choice(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(ad.MC_LETTERS):
        return ad.MC_LETTERS[value]
    letter = str(value).strip().strip("()").upper()
    if len(letter) != 1 or letter not in ad.MC_LETTERS:
        raise ad.RecordError(f"expected an option letter A-E or index 0-4, got {value!r}")
    return letter


ANSWER_RULES: dict[str, Callable[[Any], str]] = {
    "raw": lambda v: ad.number_to_string(v) if isinstance(v, int | float) else str(v).strip(),
    "number": ad.number_to_string,
    "gsm8k": lambda v: ad.after_hashes(str(v)),
    "boxed": lambda v: ad.last_box(str(v)),
    "choice": _rule_choice,
}


@dataclass
class FieldMap:
    """Where each `Problem` field comes from in a record (dotted paths)."""

    question: str = "question"
    answer: str = "answer"
    id: str | None = None
    solution: str | None = None
    choices: str | None = None
    answer_rule: str | Callable[[Any], str] | None = None
    meta: list[str] = field(default_factory=list)
    dataset: str = ""
    extract_style: str = "auto"
    grading: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.answer_rule, str) and self.answer_rule not in ANSWER_RULES:
            raise ValueError(f"unknown answer_rule {self.answer_rule!r}; known: {', '.join(ANSWER_RULES)}")

    def rule(self) -> Callable[[Any], str]:
        if callable(self.answer_rule):
            return self.answer_rule
        return ANSWER_RULES[self.answer_rule or "raw"]

    def build(self, record: Any, index: int) -> Problem:
        """One record -> Problem; raises RecordError naming the field that is wrong."""
        if not isinstance(record, dict):
            raise ad.RecordError(f"expected a JSON object, got {type(record).__name__}")
        question = self._require(record, self.question)
        raw = self._require(record, self.answer)
        try:
            answer = self.rule()(raw)
        except ad.RecordError as exc:
            raise ad.RecordError(f"field {self.answer!r}: {exc}") from exc
        if not answer:
            raise ad.RecordError(f"field {self.answer!r}: empty gold answer")
        pid = str(self._require(record, self.id)) if self.id else str(index)
        solution = self._optional(record, self.solution)
        choices = self._optional(record, self.choices)
        if choices is not None and not isinstance(choices, list):
            raise ad.RecordError(f"field {self.choices!r}: expected a list of choices")
        meta = {key: value for key in self.meta if (value := get_path(record, key)) is not _MISSING}
        meta["gold_raw"] = raw if isinstance(raw, str) else json.dumps(raw)
        return Problem(id=pid, question=str(question), answer=answer,
                       solution=None if solution is None else str(solution),
                       choices=None if choices is None else [str(c) for c in choices],
                       meta=meta, dataset=self.dataset, extract_style=self.extract_style,
                       grading=dict(self.grading))

    @staticmethod
    def _require(record: dict, path: str) -> Any:
        value = get_path(record, path)
        if value is _MISSING or value is None:
            raise ad.RecordError(f"missing field {path!r}")
        return value

    @staticmethod
    def _optional(record: dict, path: str | None) -> Any:
        if not path:
            return None
        value = get_path(record, path)
        return None if value is _MISSING else value


def read_text(path: str | Path) -> str:
    """The file's text as UTF-8; a file that is not UTF-8 is a ValueError naming file, line and byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(_not_utf8(path, data, exc)) from None


def _not_utf8(path: str | Path, data: bytes, exc: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at column {column}); re-save the file as UTF-8"


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-empty line; a malformed line (or one that is not UTF-8)
    names file and line."""
    with Path(path).open("rb") as fh:
        yield from _parse_lines(_decoded(fh, path), path)


def _decoded(raw_lines: Iterable[bytes], path: str | Path) -> Iterator[str]:
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(_not_utf8(path, raw, exc).replace(f"{path}:1:", f"{path}:{lineno}:", 1)) from None


def _parse_lines(lines: Iterable[str], where: Path) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}:{lineno}: malformed JSON line ({exc.msg}, column {exc.colno})") from exc


def read_appended_jsonl(path: Path, *, cut: bool = False) -> list[tuple[int, Any]]:
    """(line number, value) of a JSONL file that a resumable run appends to (eval's outputs.jsonl,
    grade's verdicts.jsonl): a last line without its newline was torn by a kill mid-write and is
    dropped (with `cut`, also cut from the file); any other malformed line names file and line.
    A missing file reads as empty."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n") and cut:
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
    kept = data[: data.rfind(b"\n") + 1]
    return list(_parse_lines(_decoded(kept.splitlines(keepends=True), path), path))


def iter_json_list(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number where the element starts, element) for a file holding one JSON list.

    Decoding element by element keeps the line number of every record, so an error about a
    missing field can point at the line where that record begins.
    """
    text = read_text(path)
    decoder = json.JSONDecoder()

    def fail(pos: int, what: str) -> ValueError:
        return ValueError(f"{path}:{text.count(chr(10), 0, pos) + 1}: {what}")

    pos = _skip_ws(text, 0)
    if not text.startswith("[", pos):
        raise fail(pos, "expected a JSON list of records (or use a .jsonl file)")
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, f"malformed JSON ({exc.msg})") from exc
        yield text.count("\n", 0, pos) + 1, value
        pos = _skip_ws(text, end)
        if text.startswith("]", pos):
            return
        if not text.startswith(",", pos):
            raise fail(pos, "malformed JSON (expected ',' or ']' after a record)")
        pos = _skip_ws(text, pos + 1)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _build_all(rows: Iterable[tuple[int, Any]], where: str, fmap: FieldMap, limit: int | None) -> list[Problem]:
    """Build every record; `where` is a format string for the location, e.g. `"f.jsonl:{}"`."""
    from mathforge.data.benchmarks import check_limit

    check_limit(limit)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for lineno, record in rows:
        if limit is not None and len(problems) >= limit:
            break
        try:
            problem = fmap.build(record, len(problems))
        except ad.RecordError as exc:
            raise ValueError(f"{where.format(lineno)}: {exc}") from exc
        if problem.id in seen:
            raise ValueError(f"{where.format(lineno)}: field {fmap.id!r}: id {problem.id!r} repeats {seen[problem.id]}")
        seen[problem.id] = lineno
        problems.append(problem)
    return problems


def load_file(path: str | Path, *, question: str = "question", answer: str = "answer", id: str | None = None,
              solution: str | None = None, answer_rule: str | Callable[[Any], str] | None = None,
              choices: str | None = None, meta: list[str] | None = None, dataset: str | None = None,
              extract_style: str = "auto", grading: dict[str, Any] | None = None,
              limit: int | None = None) -> list[Problem]:
    """Load a user JSONL file (one object a line) or JSON file (one list) as `Problem`s.

    `question`, `answer`, `id`, `solution`, `choices` and each `meta` entry are dotted field paths;
    `id=None` numbers records from 0. `answer_rule` derives the gold from the answer field:
    `"raw"` (default: strings stripped, numbers as `145`), `"number"`, `"gsm8k"` (after `####`),
    `"boxed"` (last `\\boxed{}`), `"choice"` (letter or 0-based index -> letter), or a callable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such problem file: {path}")
    fmap = FieldMap(question=question, answer=answer, id=id, solution=solution, choices=choices,
                    answer_rule=answer_rule, meta=list(meta or []), dataset=dataset or path.stem,
                    extract_style=extract_style, grading=dict(grading or {}))
    if path.suffix.lower() == ".json":
        return _build_all(iter_json_list(path), f"{path}:{{}}", fmap, limit)
    return _build_all(iter_jsonl(path), f"{path}:{{}}", fmap, limit)


def load_hf(name_or_path: str | Path, split: str = "train", mapping: dict[str, Any] | None = None, *,
            limit: int | None = None) -> list[Problem]:
    """Load a Hugging Face `datasets` dataset (a local data file or folder, or a hub name where the
    user has network access) with the same field mapping as `load_file`."""
    try:
        import datasets
    except ImportError as exc:  # optional extra
        raise ImportError("load_hf needs the `datasets` package: pip install 'mathforge[hf]'") from exc
    source = Path(name_or_path)
    kinds = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
    if source.is_file() and source.suffix.lower() in kinds:
        ds = datasets.load_dataset(kinds[source.suffix.lower()], data_files=str(source), split=split)
    else:
        ds = datasets.load_dataset(str(name_or_path), split=split)
    options = dict(mapping or {})
    options.setdefault("dataset", source.stem if source.exists() else str(name_or_path))
    options["meta"] = list(options.get("meta") or [])
    try:
        fmap = FieldMap(**options)
    except TypeError as exc:
        raise ValueError(f"bad mapping for {name_or_path}: {exc}") from exc
    rows = ((i, row) for i, row in enumerate(ds))
    return _build_all(rows, f"{name_or_path}[{split}] row {{}}", fmap, limit)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (data hashes in run manifests and summaries)."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
