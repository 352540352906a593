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


def _examples(path: Path, fields: tuple[str, ...], n: int, *, by_reason: bool, limit: int = 300) -> list[str]:
    """Up to `n` records of `path` as short JSON: the first ones, or (rejected files) the first
    record of each distinct reason, so every kind of rejection is shown once."""
    if not path.is_file() or n < 1:
        return []
    out, seen = [], set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if by_reason:
                rules = rec.get("contamination") or [{}]
                why = (rec.get("filter"), rec.get("reason"), rules[0].get("rule"))
                if why in seen:
                    continue
                seen.add(why)
            shown = {k: (v[:limit] + "…" if isinstance(v, str) and len(v) > limit else v)
                     for k, v in rec.items() if k in fields or (k == "generated_text" and "problem" not in rec)}
            out.append(json.dumps(shown, ensure_ascii=False))
            if len(out) >= n:
                break
    return out


def yields_report(folders: list[str | Path], n_examples: int = 1) -> str:
    """Markdown: one row per stage folder (in the order given) and examples under it: up to
    `n_examples` kept records and rejected ones, the latter one per distinct reason."""
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
            for ex in _examples(folder / name, fields, n_examples, by_reason=label == "rejected") if name else []:
                examples.append(f"- **{stage}, {label}**: `{ex}`")
    head = ["| stage | folder | in | out | yield | removed, by reason |", "|---|---|---|---|---|---|"]
    return "\n".join(["# Synthesis yields", "", *head, *rows, "", "## Examples", "", *examples]) + "\n"
