"""A yields report over the output folders of one synthesis run (JiuZhang3.0-style pipeline, Zhou et
al. 2024; docs/methods/synthesis.md §d): per stage, what came in, what went out and why records were dropped, read
from each folder's `manifest.json`, with examples of kept and rejected records.
"""

from __future__ import annotations

import json
from pathlib import Path

# stage -> (count in, count out, kept file, rejected file)
STAGES = {
    "snippets": ("units", "snippets", "snippets.jsonl", None),
    "prompts": ("snippets", "prompts", "prompts.jsonl", None),
    "merge": (None, "records", None, None),
    "parse": ("generations", "parsed", "records.jsonl", "rejected.jsonl"),
    "filter": ("input", "kept", "kept.jsonl", "removed.jsonl"),
    "dedup": ("input", "kept", "kept.jsonl", "removed.jsonl"),
    "decontaminate": ("input", "clean", "clean.jsonl", "flagged.jsonl"),
}


def _example(path: Path, fields: tuple[str, ...], limit: int = 300) -> str | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as fh:
        line = fh.readline()
    if not line.strip():
        return None
    rec = json.loads(line)
    shown = {k: (v[:limit] + "…" if isinstance(v, str) and len(v) > limit else v) for k, v in rec.items() if k in fields}
    return json.dumps(shown, ensure_ascii=False)


def yields_report(folders: list[str | Path]) -> str:
    """Markdown: one row per stage folder (in the order given) and examples under it."""
    rows, examples = [], []
    for folder in map(Path, folders):
        manifests = sorted(folder.glob("manifest*.json")) or sorted(folder.glob("*.manifest.json"))
        if not manifests:
            raise FileNotFoundError(f"{folder}: no manifest.json (not a synth stage output)")
        body = json.loads(manifests[0].read_text(encoding="utf-8"))
        stage, counts = body["stage"], body["counts"]
        n_in, n_out, kept_file, rej_file = STAGES.get(stage, (None, None, None, None))
        got_in, got_out = counts.get(n_in) if n_in else None, counts.get(n_out) if n_out else None
        share = f"{got_out / got_in:.1%}" if got_in and got_out is not None else "—"
        why = ", ".join(f"{k} {v}" for k, v in counts.items() if k.startswith(("rejected_", "removed_", "dropped_", "flagged"))
                        and v) or "—"
        rows.append(f"| {stage} | `{folder}` | {got_in if got_in is not None else '—'} | "
                    f"{got_out if got_out is not None else '—'} | {share} | {why} |")
        fields = ("problem", "solution", "answer", "text", "level", "reason", "filter", "contamination", "id")
        for label, name in (("kept", kept_file), ("rejected", rej_file)):
            ex = _example(folder / name, fields) if name else None
            if ex:
                examples.append(f"- **{stage}, {label}**: `{ex}`")
    head = ["| stage | folder | in | out | yield | removed, by reason |", "|---|---|---|---|---|---|"]
    return "\n".join(["# Synthesis yields", "", *head, *rows, "", "## Examples", "", *examples]) + "\n"
