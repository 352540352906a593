"""Plain-record files and run manifests shared by every synthesis stage (JiuZhang3.0-style pipeline,
Zhou et al. 2024; docs/methods/synthesis.md §d).

Every stage reads and writes JSONL of plain dicts. Each output folder gets a `manifest.json` beside it
with the stage name, its resolved config, library versions, the inputs (path, size, sha256) and the
record counts, so a number in a report can be traced back to what made it (docs/architecture.md). Files
are written to a temporary name and renamed, so a killed run never leaves half a file under the real
name.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from mathforge.data.files import iter_jsonl


def read_jsonl(path: str | Path, *, required: Iterable[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-empty line; a malformed line, a non-object or a record
    missing a `required` field is an error naming the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    required = tuple(required)
    for lineno, rec in iter_jsonl(path):     # the project's one JSONL reader (file:line errors)
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        for name in required:
            if not isinstance(rec.get(name), str):
                raise ValueError(f"{path}:{lineno}: field {name!r} missing or not a string "
                                 f"(fields: {', '.join(sorted(rec)) or 'none'})")
        yield lineno, rec


def load_records(path: str | Path, *, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    return [rec for _, rec in read_jsonl(path, required=required)]


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write atomically (temporary file, fsync, rename); returns the number of records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def file_info(path: str | Path) -> dict[str, Any]:
    """Path, size and sha256 of an input file (folders: each file inside, sorted)."""
    path = Path(path)
    if path.is_dir():
        return {"path": str(path), "files": [file_info(p) for p in sorted(path.rglob("*")) if p.is_file()]}
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def versions() -> dict[str, str]:
    """Versions of what decides a stage's output (the engine version matters, docs/methods/synthesis.md §d.14)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("mathforge", "torch", "transformers", "vllm", "datasketch", "httpx"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        from mathforge.grading import GRADER_VERSION

        out["grader"] = GRADER_VERSION
    except ImportError:  # pragma: no cover
        pass
    return out


def config_dict(config: Any) -> dict[str, Any]:
    if is_dataclass(config):
        return json.loads(json.dumps(asdict(config), default=str))
    return json.loads(json.dumps(config, default=str))


def write_manifest(out_dir: str | Path, stage: str, *, config: Any, inputs: Iterable[str | Path] = (),
                   counts: dict[str, Any], name: str = "manifest.json", extra: dict | None = None) -> Path:
    """`manifest.json` (or `name`) in `out_dir`: stage, config, versions, inputs with hashes, counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = {"stage": stage, "config": config_dict(config), "versions": versions(),
            "inputs": [file_info(p) for p in inputs], "counts": counts,
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} | (extra or {})
    path = out / name
    tmp = path.with_name(f".{name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
