"""File-level entry points of the synthesis stages (docs/methods/synthesis.md §d): read JSONL, call the stage's
function on plain records, write the output and a `manifest.json` beside it. The `mathforge synth`
subcommands call these and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from mathforge.synth.io import load_records, write_jsonl, write_manifest


def snippets_stage(corpus: str | Path, out_dir: str | Path, cfg=None) -> dict[str, int]:
    from mathforge.synth.snippets import SnippetConfig, corpus_files, make_snippets

    cfg = cfg or SnippetConfig()
    snippets, counts = make_snippets(corpus, cfg)
    write_jsonl(Path(out_dir) / "snippets.jsonl", snippets)
    write_manifest(out_dir, "snippets", config=cfg, inputs=corpus_files(corpus), counts=counts)
    return counts


def prompts_stage(snippets_file: str | Path, out_dir: str | Path, cfg=None, *, tool: bool = False,
                  demos_file: str | Path | None = None) -> dict[str, int]:
    from mathforge.synth.prompts import PromptConfig, build_prompts, build_tool_prompts

    cfg = cfg or PromptConfig()
    snippets = load_records(snippets_file, required=("id", "text"))
    if not snippets:
        raise ValueError(f"{snippets_file}: no snippets")
    if tool:
        demos = load_records(demos_file, required=("question", "solution")) if demos_file else None
        prompts = build_tool_prompts(snippets, demos, cfg)
    else:
        prompts = build_prompts(snippets, cfg)
    if not prompts:
        raise ValueError(f"{snippets_file}: no prompt built (no snippet has a level in {cfg.levels})")
    counts = {"snippets": len(snippets), "prompts": len(prompts)}
    for p in prompts:
        counts[f"level_{p['level']}"] = counts.get(f"level_{p['level']}", 0) + 1
    write_jsonl(Path(out_dir) / "prompts.jsonl", prompts)
    inputs = [snippets_file, *([demos_file] if demos_file else [])]
    write_manifest(out_dir, "prompts", config=cfg, inputs=inputs, counts=counts, extra={"tool": tool})
    return counts


def generate_stage(prompts_file: str | Path, cfg, engine=None) -> dict[str, int]:
    from mathforge.synth.generate import check_prompts, run_generation

    prompts = load_records(prompts_file)
    check_prompts(prompts, str(prompts_file))
    return run_generation(prompts, cfg, engine)


def parse_stage(generations_file: str | Path, out_dir: str | Path, cfg=None) -> dict[str, int]:
    from mathforge.synth.parse import ParseConfig, parse_generations

    cfg = cfg or ParseConfig()
    kept, rejected, counts = parse_generations(load_records(generations_file), cfg)
    write_jsonl(Path(out_dir) / "records.jsonl", kept)
    write_jsonl(Path(out_dir) / "rejected.jsonl", rejected)
    write_manifest(out_dir, "parse", config=cfg, inputs=[generations_file], counts=counts)
    return counts


def filter_stage(records_file: str | Path, out_dir: str | Path, cfg=None, *, engine_spec: str = "",
                 engine_options: dict | None = None) -> dict[str, int]:
    from mathforge.synth.filters import FilterConfig, apply_filters

    cfg = cfg or FilterConfig()
    engine = None
    if engine_spec:
        from mathforge.infer.loading import load_engine

        engine = load_engine(engine_spec, **(engine_options or {}))
    kept, removed, counts = apply_filters(load_records(records_file), cfg, engine)
    write_jsonl(Path(out_dir) / "kept.jsonl", kept)
    write_jsonl(Path(out_dir) / "removed.jsonl", removed)
    write_manifest(out_dir, "filter", config=cfg, inputs=[records_file], counts=counts,
                   extra={"engine": engine_spec})
    return counts


def dedup_stage(records_file: str | Path, out_dir: str | Path, cfg=None) -> dict[str, int]:
    from mathforge.synth.dedup import DedupConfig, deduplicate

    cfg = cfg or DedupConfig()
    kept, removed, counts = deduplicate(load_records(records_file), cfg)
    write_jsonl(Path(out_dir) / "kept.jsonl", kept)
    write_jsonl(Path(out_dir) / "removed.jsonl", removed)
    write_manifest(out_dir, "dedup", config=cfg, inputs=[records_file], counts=counts)
    return counts


def decontaminate_stage(file: str | Path, out_dir: str | Path, cfg=None,
                        extra_refs: list[tuple[str, str]] | None = None) -> dict:
    """Any JSONL file: `clean.jsonl`, `flagged.jsonl`, `report.json`/`report.md` and the manifest.
    `extra_refs`: (JSONL file, question field) pairs of user evaluation sets."""
    import json

    from mathforge.synth.decontam import DecontamConfig, decontaminate, file_references, shipped_references
    from mathforge.synth.io import read_jsonl

    cfg = cfg or DecontamConfig()
    fields = (cfg.field, cfg.solution_field) if cfg.solution_field else (cfg.field,)
    records = [rec for _, rec in read_jsonl(file, required=fields)]
    refs = shipped_references(cfg.benchmarks or None)
    for path, qfield in extra_refs or []:
        refs += file_references(path, qfield)
    clean, flagged, report = decontaminate(records, cfg, refs)
    out = Path(out_dir)
    write_jsonl(out / "clean.jsonl", clean)
    write_jsonl(out / "flagged.jsonl", flagged)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Decontamination of {file}", "", f"{report['flagged']} of {report['input']} records flagged "
             f"against {report['references']} reference problems (rules: {report['per_rule']}).", "",
             "| benchmark/split | records flagged |", "|---|---|"]
    lines += [f"| {b} | {n} |" for b, n in report["per_benchmark"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_manifest(out, "decontaminate", config=cfg, inputs=[file, *(p for p, _ in extra_refs or [])],
                   counts={k: report[k] for k in ("input", "flagged", "clean", "references")})
    return report


def kd_stage(generations_file: str | Path, out_dir: str | Path, *, init: str = "", preset: str = "nano",
             seq_len: int = 2048) -> dict[str, int]:
    """S3: teacher generations -> `kd.jsonl` and `synthesizer.toml` (run it with `mathforge train`)."""
    from mathforge.synth.training import kd_examples, synthesizer_recipe, toml_dumps

    out = Path(out_dir)
    examples, counts = kd_examples(load_records(generations_file))
    if not examples:
        raise ValueError(f"{generations_file}: no usable teacher answer ({counts})")
    write_jsonl(out / "kd.jsonl", examples)
    recipe = synthesizer_recipe(str((out / "kd.jsonl").resolve()), str(out / "synthesizer"), init=init,
                                preset=preset, seq_len=seq_len)
    (out / "synthesizer.toml").write_text(toml_dumps(recipe), encoding="utf-8")
    write_manifest(out, "kd", config=recipe, inputs=[generations_file], counts=counts)
    return counts


def train_data_stage(pt_files: list[str | Path], sft_file: str | Path | None, out_dir: str | Path, *,
                     sft_question_key: str = "", sft_response_key: str = "", init: str = "", preset: str = "nano",
                     seq_len: int = 2049, seed: int = 0) -> dict:
    """S9: synthetic records (+ an SFT file) -> stage files and `s9-stage*.toml` recipes."""
    from mathforge.synth.io import read_jsonl
    from mathforge.synth.training import s9_recipes, stage_files, to_io_record, toml_dumps

    out = Path(out_dir)
    pt = [to_io_record(r, f"{f}:{n}") for f in pt_files for n, r in read_jsonl(f)]
    sft = [to_io_record(r, f"{sft_file}:{n}", sft_question_key, sft_response_key)
           for n, r in read_jsonl(sft_file)] if sft_file else []
    counts = stage_files(pt, sft, out, seed=seed)
    recipes = s9_recipes(str(out.resolve()), counts, init=init, preset=preset, seq_len=seq_len)
    for k, recipe in enumerate(recipes, 1):
        (out / f"s9-stage{k}.toml").write_text(toml_dumps(recipe), encoding="utf-8")
    write_manifest(out, "train-data", config={"recipes": recipes, "seed": seed},
                   inputs=[*pt_files, *([sft_file] if sft_file else [])], counts=counts)
    return counts | {"recipes": len(recipes)}


def boost_stage(candidates_file: str | Path, model_dir: str, out_dir: str | Path, cfg=None, *,
                targets_file: str | Path | None = None, n_targets: int = 200) -> dict[str, int]:
    """S3c: `selected.jsonl`, the candidate prompts of highest gradient value, for the teacher.
    Targets: `targets_file` ({input, output} or question/answer), else GSM8K *train* (never test)."""
    from mathforge.infer.loading import load_engine
    from mathforge.synth.boost import BoostConfig, select_prompts
    from mathforge.synth.io import read_jsonl
    from mathforge.synth.training import to_io_record

    cfg = cfg or BoostConfig()
    candidates = load_records(candidates_file)
    if targets_file:
        targets = [to_io_record(r, f"{targets_file}:{n}") for n, r in read_jsonl(targets_file)][:n_targets]
    else:
        from mathforge.data import load_benchmark

        targets = [to_io_record({"question": p.question, "answer": p.solution or p.answer}, f"gsm8k train #{p.id}")
                   for p in load_benchmark("gsm8k", "train", limit=n_targets)]
    engine = load_engine(model_dir, batch_size=1)
    selected = select_prompts(candidates, targets, engine.model, engine.tokenizer, cfg)
    write_jsonl(Path(out_dir) / "selected.jsonl", selected)
    counts = {"candidates": len(candidates), "targets": len(targets), "selected": len(selected)}
    write_manifest(out_dir, "boost", config=cfg, inputs=[candidates_file, *([targets_file] if targets_file else [])],
                   counts=counts, extra={"model": model_dir})
    return counts


def ablation_stage(kept_files: list[str | Path], out_dir: str | Path, cfg=None, *, sft_benchmark: str = "gsm8k"
                   ) -> dict[str, int]:
    """The with/without comparison's files and recipes: instruction set = `sft_benchmark`'s train
    split, held out = its test split (first `cfg.n_heldout`), synthetic = the kept records."""
    from mathforge.data import load_benchmark
    from mathforge.synth.ablation import AblationConfig, ablation_files
    from mathforge.synth.io import read_jsonl
    from mathforge.synth.training import to_io_record

    cfg = cfg or AblationConfig()
    synthetic = [to_io_record(r, f"{f}:{n}") for f in kept_files for n, r in read_jsonl(f)]

    def io(p) -> dict:
        return to_io_record({"question": p.question, "answer": p.solution or p.answer}, f"{sft_benchmark} #{p.id}")

    sft = [io(p) for p in load_benchmark(sft_benchmark, "train")]
    heldout = [io(p) | {"answer": p.answer} for p in load_benchmark(sft_benchmark, "test", limit=cfg.n_heldout)]
    counts = ablation_files(synthetic, sft, heldout, out_dir, cfg)
    write_manifest(out_dir, "ablation", config=cfg, inputs=list(kept_files), counts=counts,
                   extra={"sft": f"{sft_benchmark} train", "heldout": f"{sft_benchmark} test"})
    return counts
