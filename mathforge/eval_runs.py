"""Run folders of `mathforge eval`: default names that never collide, and the same-run check.

A default folder is `runs/eval/<model>-<benchmarks>-<style>-<shots>shot-<decoding>[-limitN]-<hash>`:
the readable part names what a person looks for (a trained model's `<run>/model` is named by its
run, `sft-model`), and the hash covers every setting that changes a result (the model's absolute
path, benchmarks and their data source, split, limit, prompt, chat template, few-shot source,
decoding, n, seed, grading of program styles), so two different evaluations never share a folder
and the same command finds its folder again to resume. Settings that change no result (batch size,
workers, grading profile and timeout: a new profile re-grades) are left out.

The same-run check runs before any model is loaded: resuming a folder with other settings is an
error at once, not after minutes of loading. The run folder's files: `outputs.jsonl` (appended and
forced to disk per batch, so a kill loses nothing written; a torn last line is dropped on reading),
`manifest.json` (config, versions, data hashes) and `metrics.json`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from mathforge import faults
from mathforge.data.files import read_appended_jsonl

ROOT = Path("runs/eval")
OUTPUTS, METRICS, MANIFEST = "outputs.jsonl", "metrics.json", "manifest.json"
# Config keys that may change between a run and its resumption without changing any generation:
# another profile re-grades the stored records at `finalize` (their grade keys differ); another
# grade timeout applies to what is graded from then on, recorded timeouts included.
VOLATILE_KEYS = {"out_dir", "batch_size", "workers", "profile", "grade_timeout"}
GENERIC_LEAVES = {"model", "final", "best", "last", "hf", "export"}


def _slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^\w.+-]+", "_", text).strip("_.") or "x"
    return s[:limit]


def model_label(spec: str) -> str:
    """A short readable name for a model spec: a served model's name, a pretrained name, or the
    folder's name, with its parent's when the folder has a generic name (`runs/sft/model` ->
    `sft-model`, `.../checkpoint-400` -> `run-checkpoint-400`)."""
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in ("openai", "openai-chat"):
        url, _, name = rest.partition("#")
        return _slug(name or url.split("//")[-1].split("/")[0])
    if sep and scheme in ("hf", "vllm"):
        spec = rest
    parts = Path(spec.rstrip("/")).parts or ("model",)
    leaf = parts[-1]
    if len(parts) > 1 and (leaf in GENERIC_LEAVES or leaf.startswith(("checkpoint", "step"))):
        leaf = f"{parts[-2]}-{leaf}"
    return _slug(leaf)


def model_identity(spec: str) -> str:
    """What the model spec points at: the absolute path of a local folder (two `<run>/model` folders
    differ), else the spec itself."""
    scheme, sep, rest = spec.partition(":")
    path = rest if sep and scheme in ("hf", "vllm") else spec
    p = Path(path).expanduser()
    return f"{scheme + ':' if sep and scheme in ('hf', 'vllm') else ''}{p.resolve()}" if p.exists() else spec


def result_settings(cfg: Any) -> dict[str, Any]:
    """The settings of an EvalConfig that can change a result (what the folder name hashes)."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in VOLATILE_KEYS}
    settings["model"] = model_identity(cfg.model)
    settings["benchmarks"] = [str(Path(b).resolve()) if Path(b).is_file() else b for b in cfg.benchmarks]
    return settings


def default_out_dir(cfg: Any, root: Path = ROOT) -> str:
    """The default run folder of an EvalConfig (see the module docstring)."""
    benches = "+".join(Path(b).stem if Path(b).is_file() else b.replace("task:", "") for b in cfg.benchmarks)
    decoding = "greedy" if cfg.temperature == 0 else f"t{cfg.temperature:g}-p{cfg.top_p:g}-n{cfg.n}-seed{cfg.seed}"
    parts = [model_label(cfg.model), _slug(benches), cfg.style, f"{cfg.shots}shot", decoding]
    if cfg.limit is not None:
        parts.append(f"limit{cfg.limit}")
    return _named(root, parts, result_settings(cfg))


def _named(root: Path, parts: list[str], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return str(root / ("-".join(parts) + "-" + digest[:8]))


SEARCH_VOLATILE = {"out_dir", "batch_size", "threads"}


def default_search_dir(cfg: Any, root: Path = Path("runs/search")) -> str:
    """The default folder of a `mathforge eval --strategy` run (a SearchEvalConfig), named the same
    way: model, benchmark or task, strategy, n (and m), limit, and a hash of every result setting."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in SEARCH_VOLATILE}
    settings["model"] = model_identity(cfg.model)
    if cfg.value_model:
        settings["value_model"] = model_identity(cfg.value_model)
    parts = [model_label(cfg.model), _slug(cfg.benchmark or cfg.task), cfg.strategy, f"n{cfg.n}"]
    if cfg.strategy in ("tsmc", "beam"):
        parts.append(f"m{cfg.m}")
    if cfg.limit is not None:
        parts.append(f"limit{cfg.limit}")
    return _named(root, parts, settings)


def check_same_run(out: Path, manifest_name: str, outputs_name: str, config: dict, data: dict,
                   defaults: dict | None = None) -> None:
    """Refuse to resume `out` when its manifest was made with other result settings or other data.
    A setting the manifest does not record (it predates the setting) counts as its default.
    Nothing is written here; a folder without outputs is not a run yet."""
    path = out / manifest_name
    if not (path.exists() and (out / outputs_name).exists()):
        return
    from mathforge.grading.jobs import differing_settings

    old = json.loads(path.read_text(encoding="utf-8"))
    diff = differing_settings({**(defaults or {}), **old.get("config", {})}, config, VOLATILE_KEYS)
    if diff:
        flags = ", ".join("--" + k.replace("_", "-") for k in diff)
        raise ValueError(f"{path}: this run folder was made with different settings ({flags}); "
                         "leave out --out to get a folder of its own, or delete this one")
    if old.get("data") != data:
        raise ValueError(f"{path}: the benchmark data changed since this run started; use another --out")



_appends = [0]          # appends in this process, for the kill-and-resume test's exact point


def append_records(path: Path, records: list[dict]) -> None:
    """Append records and force them to disk, so a kill right after loses nothing written."""
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
    _appends[0] += 1
    faults.kill_at(faults.EVAL, _appends[0])


def load_records(path: Path, n: int | None = None, *, repair: bool = False) -> list[dict]:
    """Read outputs.jsonl (the reader `mathforge grade` uses for its verdicts: a torn last line is
    dropped); with `n`, so are problems with fewer than `n` samples. With `repair`, the file is
    rewritten to hold exactly what is returned."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records = [r for _, r in read_appended_jsonl(path)]
    kept = records
    if n is not None:
        counts: dict[tuple, int] = {}
        for r in records:
            counts[(r["dataset"], r["idx"])] = counts.get((r["dataset"], r["idx"]), 0) + 1
        kept = [r for r in records if counts[(r["dataset"], r["idx"])] == n]
    if repair and (not raw.endswith(b"\n") and raw or len(kept) != len(records)):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, path)
    return kept


def package_versions() -> dict[str, str | None]:
    import mathforge

    out: dict[str, str | None] = {"mathforge": mathforge.__version__, "python": platform.python_version()}
    for dist in ("torch", "transformers", "tokenizers", "sympy", "math-verify", "antlr4-python3-runtime",
                 "vllm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_or_write_manifest(out: Path, manifest: dict, defaults: dict | None = None) -> None:
    """A run folder belongs to one config: resuming with different settings is an error, not a mix."""
    path = out / MANIFEST
    check_same_run(out, MANIFEST, OUTPUTS, manifest["config"], manifest["data"], defaults)
    if path.exists() and (out / OUTPUTS).exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        # The grading settings are the current ones: finalize re-grades what was graded otherwise.
        manifest = {**old, "config": manifest["config"], "profile": manifest["profile"],
                    "grader_version": manifest["grader_version"], "versions_resumed": manifest["versions"],
                    "resumed_at": manifest["created"]}
    write_json(path, manifest)
