"""Nothing shipped cites what is not shipped: no reference to the internal specs (methods.md, data.md,
architecture.md, anchors.md, ../shared), and every section a shipped file cites (`docs/methods/x.md
§a.3`, `docs/data.md §3.1`, or a bare `§a.3`) is a heading of the note it points to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("mathforge", "README.md", "docs", "recipes", "bench", "scripts", "pyproject.toml", "data/README.md",
           "data/PROVENANCE.md", "data/examples/README.md", "bench/data/README.md")
TEXT = (".py", ".md", ".toml", ".sh", ".txt", ".cfg", ".json")
# a spec file name not preceded by a path (docs/data.md is ours), or any path into the shared folder
UNSHIPPED = re.compile(r"(?<![\w/.])(methods|data|architecture|anchors)\.md|\.\./shared|shared/specs|\bspecs/")
NOTES = {"0": "README", "a": "mft", "b": "sdat", "c": "packing", "d": "synthesis", "e": "tsmc", "f": "icot",
         "g": "evaluation"}


def shipped_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", *SHIPPED], cwd=ROOT, capture_output=True, text=True, check=True)
        names = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the folders
        names = [str(p.relative_to(ROOT)) for s in SHIPPED for p in ([ROOT / s] if (ROOT / s).is_file()
                 else (ROOT / s).rglob("*")) if p.is_file()]
    files = [ROOT / n for n in names if n.endswith(TEXT) and (ROOT / n).is_file()]
    assert len(files) > 100, "the shipped-file list is suspiciously short"
    return files


def test_no_shipped_file_cites_the_internal_specs():
    bad = []
    for path in shipped_files():
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if UNSHIPPED.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not bad, "citations of unshipped files:\n" + "\n".join(bad)


def _headings(note: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^#{1,4} (?:\()?([0-9a-g](?:\.\d+)*)[.)]? ", note.read_text(), re.M)]


def _resolves(note: Path, section: str) -> bool:
    """`section` (a.3, g.4.1, f, 3.1, 2) is a heading of `note`."""
    return note.is_file() and section in _headings(note)


CITATION = re.compile(r"(docs/methods/(\w+)\.md|docs/data\.md)?`? ?§ ?([0-9a-g](?:\.\d+)*)(?![\w])")


def test_every_cited_section_exists():
    missing = []
    for path in shipped_files():
        if path.is_relative_to(ROOT / "docs" / "methods") or path == ROOT / "docs" / "data.md":
            continue  # the notes cite their own sections, checked below
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in CITATION.finditer(text):
            file, section = m.group(1), m.group(3).rstrip(".")
            if file == "docs/data.md":
                note = ROOT / "docs" / "data.md"
            elif file:
                note = ROOT / file
            elif section[0] in NOTES:
                note = ROOT / "docs" / "methods" / f"{NOTES[section[0]]}.md"
            else:
                continue  # a bare number (data sections are always named with their file)
            if not _resolves(note, section):
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0)} -> {note.relative_to(ROOT)}")
    assert not missing, "cited sections that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("letter,name", sorted(NOTES.items()))
def test_each_note_opens_with_its_method_and_sections(letter, name):
    note = ROOT / "docs" / "methods" / f"{name}.md"
    heads = _headings(note)
    assert heads, f"{note}: no numbered sections"
    assert all(h == letter or h.startswith(f"{letter}.") for h in heads if h[0].isalpha() or h == "0"), heads


def test_the_checks_catch_a_bad_citation(tmp_path):
    """The two checks themselves: an unshipped spec name and a section a note does not have."""
    assert UNSHIPPED.search("see methods.md §a.3") and UNSHIPPED.search("`../shared/specs/x`")
    assert not UNSHIPPED.search("see docs/methods/mft.md §a.3 and docs/data.md §3")
    note = tmp_path / "n.md"
    note.write_text("# (a) X\n\n## a.1 Idea\n\n### a.8.2 Detail\n")
    assert _resolves(note, "a") and _resolves(note, "a.1") and _resolves(note, "a.8.2")
    assert not _resolves(note, "a.2") and not _resolves(note, "a.8")
