"""S4 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.6): bulk generation.

The prompts are cut into fixed chunks (work units; the original used 8,000 prompts each). Chunk `k`
is written to `chunks/chunk-{k:06d}.jsonl` in one atomic rename once all its generations are in, so
a run killed at any moment leaves only whole chunks; rerunning skips them and redoes only the chunk
that was in flight: nothing written is lost and nothing is generated twice into the output. Chunk
`k` belongs to shard `k mod n` (`--shard i/n`), and its sampling seed is `seed + k`, so a chunk's
content does not depend on how many shards share the work: shards may run in separate processes or
machines, and `merge_generations` joins their folders' chunks in prompt order, checking that each
is present exactly once. Past one machine the engine itself scales out (vLLM data parallelism, or a
fleet of OpenAI-compatible servers behind `openai:URL#MODEL` with bounded concurrency); no scheduler
lives here.

Sampling (§d.6): CoT prompts use temperature 1.0, top-p 1, 2,500 new tokens (what actually ran in
the original); `use_declared_sampling=True` uses the declared top-p 0.95 (the engines take no top-k
or repetition penalty, so those two declared values are not applied). Tool prompts use temperature
0.1, top-p 0.95 and 5,000 new tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathforge import faults
from mathforge.synth.io import load_records, write_jsonl, write_manifest

PROMPT_FIELDS = ("id", "prompt")


class GenerationError(RuntimeError):
    """The engine failed (for example an unreachable endpoint); finished chunks are kept."""


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


@dataclass
class GenerateConfig:
    """`engine` is a `mathforge.infer.load_engine` spec; `engine_options` its keyword arguments
    (`batch_size` for HF, `concurrency` for OpenAI-compatible servers)."""

    engine: str
    out_dir: str
    chunk_size: int = 8000
    shard: str = "0/1"
    n: int = 1
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 2500
    use_declared_sampling: bool = False
    tool_temperature: float = 0.1
    tool_top_p: float = 0.95
    tool_max_new_tokens: int = 5000
    stop: list[str] = field(default_factory=list)
    engine_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_shard(self.shard)
        if self.chunk_size < 1 or self.n < 1:
            raise ValueError("generate.chunk_size and generate.n must be >= 1")
        if self.use_declared_sampling:
            self.top_p = 0.95
        from mathforge.infer.types import SamplingParams  # validates the sampling numbers

        SamplingParams(self.max_new_tokens, self.temperature, self.top_p, self.seed)
        SamplingParams(self.tool_max_new_tokens, self.tool_temperature, self.tool_top_p, self.seed)

    def key(self, prompts_hash: str) -> dict[str, Any]:
        """What decides a chunk's content; a resumed run must match it (the shard count need not)."""
        skip = {"shard", "out_dir", "engine_options", "engine"}  # a fleet's shards use different URLs
        return {k: v for k, v in vars(self).items() if k not in skip} | {"prompts_sha256": prompts_hash}


def prompts_hash(prompts: list[dict]) -> str:
    digest = hashlib.sha256()
    for p in prompts:
        digest.update(json.dumps([p["id"], p["prompt"], p.get("variant", "cot")]).encode())
    return digest.hexdigest()


def check_prompts(prompts: list[dict], where: str = "prompts") -> None:
    seen: set[str] = set()
    for i, p in enumerate(prompts):
        for name in PROMPT_FIELDS:
            if not isinstance(p.get(name), str):
                raise ValueError(f"{where} record #{i}: field {name!r} missing or not a string")
        if p["id"] in seen:
            raise ValueError(f"{where} record #{i}: duplicate id {p['id']!r}")
        seen.add(p["id"])
    if not prompts:
        raise ValueError(f"{where}: no prompts")


def chunk_path(out_dir: str | Path, k: int) -> Path:
    return Path(out_dir) / "chunks" / f"chunk-{k:06d}.jsonl"


def _check_run(out: Path, key: dict[str, Any], n_chunks: int) -> None:
    run_file = out / "run.json"
    body = {"key": key, "n_chunks": n_chunks}
    if run_file.exists():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        if old != body:
            diff = sorted(k for k in set(old.get("key", {})) | set(key) if old.get("key", {}).get(k) != key.get(k))
            raise ValueError(f"{out}: holds chunks of a run with other settings ({', '.join(diff) or 'n_chunks'}); "
                             "use a new --out or delete it")
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = run_file.with_name(f".run.json.tmp{os.getpid()}")  # shards may start together in one folder
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_file)


def _generate_chunk(engine: Any, chunk: list[dict], cfg: GenerateConfig, seed: int) -> list[dict]:
    from mathforge.infer.types import SamplingParams

    rows: list[dict | None] = [None] * len(chunk)
    for variant in ("cot", "tool"):
        idx = [j for j, p in enumerate(chunk) if (p.get("variant") == "tool") == (variant == "tool")]
        if not idx:
            continue
        params = (SamplingParams(cfg.tool_max_new_tokens, cfg.tool_temperature, cfg.tool_top_p, seed)
                  if variant == "tool" else SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, seed))
        outs = engine.generate([chunk[j]["prompt"] for j in idx], n=cfg.n, params=params, stop=cfg.stop or None)
        for j, comps in zip(idx, outs, strict=True):
            rows[j] = [{**{k: v for k, v in chunk[j].items()}, "sample": s, "generated_text": c.text,
                        "finish_reason": c.finish_reason, "n_tokens": c.n_tokens} for s, c in enumerate(comps)]
    return [r for group in rows for r in group]


def run_generation(prompts: list[dict], cfg: GenerateConfig, engine: Any = None) -> dict[str, int]:
    """Generate this shard's missing chunks; returns counts (chunks done now, skipped, records)."""
    check_prompts(prompts)
    out = Path(cfg.out_dir)
    shard_i, shard_n = parse_shard(cfg.shard)
    chunks = [prompts[a : a + cfg.chunk_size] for a in range(0, len(prompts), cfg.chunk_size)]
    _check_run(out, cfg.key(prompts_hash(prompts)), len(chunks))
    mine = [k for k in range(len(chunks)) if k % shard_n == shard_i]
    counts = {"chunks_total": len(chunks), "chunks_in_shard": len(mine), "chunks_generated": 0,
              "chunks_resumed": 0, "records_written": 0}
    manifest = {"name": f"manifest-shard{shard_i}of{shard_n}.json", "config": cfg}
    for k in mine:
        if chunk_path(out, k).exists():
            counts["chunks_resumed"] += 1
            continue
        if engine is None:
            from mathforge.infer.loading import load_engine

            engine = load_engine(cfg.engine, **cfg.engine_options)
        try:
            rows = _generate_chunk(engine, chunks[k], cfg, cfg.seed + k)
        except RuntimeError as exc:
            write_manifest(out, "generate", counts=counts | {"failed_chunk": k}, **manifest)
            raise GenerationError(f"engine {cfg.engine!r} failed on chunk {k}: {exc}. {counts['chunks_generated']} "
                                  f"chunks written now are kept in {out}/chunks; rerun to resume") from exc
        faults.kill_at(faults.SYNTH, k)  # the kill-and-resume test's exact point: a chunk in flight
        counts["records_written"] += write_jsonl(chunk_path(out, k), rows)
        counts["chunks_generated"] += 1
    write_manifest(out, "generate", counts=counts, **manifest)
    return counts


def merge_generations(folders: list[str | Path], out_file: str | Path) -> dict[str, int]:
    """Join the chunks of one run (split over shard folders) into `out_file`, in prompt order.

    Every chunk must be present (missing ones are named) and found once, or twice with identical
    content (two folders that both hold a copy); each (id, sample) appears once in the result."""
    folders = [Path(f) for f in folders]
    runs = []
    for f in folders:
        if not (f / "run.json").exists():
            raise FileNotFoundError(f"{f}: no run.json (not a generation folder)")
        runs.append(json.loads((f / "run.json").read_text(encoding="utf-8")))
    if any(r != runs[0] for r in runs[1:]):
        raise ValueError("merge: the folders come from runs with different settings")
    n_chunks = runs[0]["n_chunks"]
    records, missing, seen = [], [], set()
    for k in range(n_chunks):
        copies = [chunk_path(f, k) for f in folders if chunk_path(f, k).exists()]
        if not copies:
            missing.append(k)
            continue
        texts = {p.read_bytes() for p in copies}
        if len(texts) > 1:
            raise ValueError(f"merge: chunk {k} differs between {', '.join(map(str, copies))}")
        for rec in load_records(copies[0]):
            key = (rec["id"], rec.get("sample", 0))
            if key in seen:
                raise ValueError(f"merge: {copies[0]}: record {key} appears twice")
            seen.add(key)
            records.append(rec)
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise ValueError(f"merge: {len(missing)} of {n_chunks} chunks missing ({shown}); run their shards first")
    n = write_jsonl(out_file, records)
    counts = {"chunks": n_chunks, "records": n, "folders": len(folders)}
    write_manifest(Path(out_file).parent, "merge", config={"folders": [str(f) for f in folders]},
                   counts=counts, name=Path(out_file).stem + ".manifest.json")
    return counts
