"""`mathforge synth STAGE ...`: the JiuZhang3.0-style synthesis pipeline (docs/methods/synthesis.md §d), one
subcommand per stage over `mathforge.synth.stages`; each writes its output and a manifest.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("synth", help="data synthesis: snippets, prompts, generate, merge, parse, filter, "
                                            "dedup, decontaminate, train-data")
    sub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    s = sub.add_parser("snippets", help="S1: corpus (JSONL / Markdown / text / folder) -> snippets.jsonl")
    s.add_argument("corpus", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--source", default="auto", help="auto, stack, textbook, wiki, web, arxiv")
    s.add_argument("--text-field", default="text")
    s.add_argument("--limit", type=int, default=0)
    s.add_argument("--max-chars", type=int, default=1000, help="snippet length (1000; tool-variant seeds: 2000)")
    s.add_argument("--source-contains", default="", help="keep JSONL rows whose 'source' contains this")
    s = sub.add_parser("prompts", help="S2: snippets.jsonl -> prompts.jsonl (8 levels, or --tool)")
    s.add_argument("snippets", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--levels", default="", help="comma-separated subset of the eight levels")
    s.add_argument("--tool", action="store_true", help="the tool (code) variant")
    s.add_argument("--demos", type=Path, default=None, help="JSONL of {question, solution} demonstrations")
    s.add_argument("--cot-demo", action="store_true",
                   help="CoT: one worked demonstration in the layout (## Example) before ## New Problem")
    s.add_argument("--open-problem", action="store_true", help="CoT: end the prompt with the opening [Problem]: tag")
    s = sub.add_parser("generate", help="S4: prompts.jsonl -> chunks (resumable, --shard i/n)")
    s.add_argument("prompts", type=Path)
    s.add_argument("--engine", required=True, help="model folder, openai:URL#MODEL, vllm:PATH, ...")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--shard", default="0/1")
    s.add_argument("--chunk-size", type=int, default=8000)
    s.add_argument("--n", type=int, default=1, help="generations per prompt")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--max-new-tokens", type=int, default=2500)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--tool-max-new-tokens", type=int, default=5000, help="tool-variant prompts (5000)")
    s.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    s.add_argument("--declared-sampling", action="store_true", help="top-p 0.95 as the original declared")
    s.add_argument("--teacher", action="store_true", help="add the teacher stops of §d.5 (```output, ---)")
    s.add_argument("--option", action="append", default=[], metavar="K=V",
                   help="engine keyword, e.g. batch_size=16 or concurrency=32 (value read as JSON)")
    s = sub.add_parser("merge", help="S4: join shard folders into one generations.jsonl")
    s.add_argument("folders", type=Path, nargs="+")
    s.add_argument("--out", type=Path, required=True, help="output JSONL file")
    s = sub.add_parser("parse", help="S5: generations.jsonl -> records.jsonl + rejected.jsonl (reasons counted)")
    s.add_argument("generations", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("filter", help="S6: records.jsonl -> kept.jsonl + removed.jsonl (filter, reason)")
    s.add_argument("records", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--filters", default="", help="comma-separated, default: all but self_consistency")
    s.add_argument("--min-tokens", type=int, default=150)
    s.add_argument("--tokenizer", default="", help="HF tokenizer folder for token counts")
    s.add_argument("--engine", default="", help="solver engine for the self_consistency filter")
    s.add_argument("--k", type=int, default=4, help="re-solves for self_consistency")
    s.add_argument("--consistency-max-new-tokens", type=int, default=1024, help="token cap of a re-solve")
    s.add_argument("--consistency-temperature", type=float, default=0.7)
    s.add_argument("--consistency-stop", action="append", default=[], help="end a re-solve here (repeatable)")
    s = sub.add_parser("dedup", help="S7: exact + MinHash LSH near-duplicate removal -> kept.jsonl + removed.jsonl")
    s.add_argument("records", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--field", default="problem")
    s.add_argument("--threshold", type=float, default=0.8, help="estimated Jaccard of word 5-grams (0.8)")
    s.add_argument("--exact-only", action="store_true")
    s = sub.add_parser("kd-data", help="S3: teacher generations -> kd.jsonl + synthesizer.toml (mathforge train)")
    s.add_argument("generations", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--init", default="", help="HF folder of the synthesis model to fine-tune")
    s.add_argument("--preset", default="nano", help="from-scratch preset when --init is not given")
    s = sub.add_parser("boost", help="S3c: rank candidate prompts by gradient value against target problems")
    s.add_argument("candidates", type=Path, help="generations: {prompt, generated_text}")
    s.add_argument("--model", required=True, help="reference model folder")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--targets", type=Path, default=None, help="training-split problems (default: GSM8K train)")
    s.add_argument("--n-targets", type=int, default=200)
    s.add_argument("--top-k", type=int, default=4000)
    s.add_argument("--dim", type=int, default=8192)
    s = sub.add_parser("train-data", help="S9: kept records (+ SFT set) -> stage files + s9-stage*.toml recipes")
    s.add_argument("records", type=Path, nargs="+", help="synthetic records (CoT and tool), {input, output}")
    s.add_argument("--sft", type=Path, default=None, help="instruction set: {input, output} or question/answer")
    s.add_argument("--sft-question-key", default="")
    s.add_argument("--sft-response-key", default="")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--init", default="", help="HF folder of the model to train")
    s.add_argument("--preset", default="nano")
    s.add_argument("--seq-len", type=int, default=2049)
    s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("report", help="yields per stage (from the manifests) with kept and rejected examples")
    s.add_argument("folders", type=Path, nargs="+", help="stage output folders, in pipeline order")
    s.add_argument("--out", type=Path, default=None, help="write the Markdown here (default: print it)")
    s.add_argument("--examples", type=int, default=3, help="kept examples per stage; rejected: one per reason, "
                                                           "up to this many")
    s = sub.add_parser("decontaminate", help="S8: flag records overlapping any shipped benchmark (any JSONL file)")
    s.add_argument("file", type=Path)
    s.add_argument("--field", default="problem", help="text field to check (e.g. question)")
    s.add_argument("--solution-field", default="", help="also check this field (e.g. solution)")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--n", type=int, default=13, help="word n-gram length (13; 10 is the stricter option)")
    s.add_argument("--benchmarks", default="", help="comma-separated subset (default: every shipped benchmark)")
    s.add_argument("--no-near", action="store_true", help="skip the MinHash near-duplicate rule")
    s.add_argument("--near-shingle", type=int, default=2, help="word n of the near rule (2; §d.10 names 5)")
    s.add_argument("--near-threshold", type=float, default=0.6, help="Jaccard of the near rule (0.6; §d.10: 0.8)")
    s.add_argument("--eval-set", action="append", default=[], metavar="FILE:FIELD",
                   help="a user evaluation set to treat as a reference (repeatable)")
    s = sub.add_parser("ablation", help="with/without comparison: training files, held-out set, two recipes")
    s.add_argument("kept", type=Path, nargs="+", help="kept synthetic records ({input, output})")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--benchmark", default="gsm8k", help="instruction set (its train split) and held-out (test)")
    s.add_argument("--steps", type=int, default=250, help="optimizer steps of each arm (the shared budget)")
    s.add_argument("--seq-len", type=int, default=1024, help="packed row length (GSM8K needs > 512)")
    s.add_argument("--preset", default="nano")
    s.add_argument("--init", default="", help="HF folder to fine-tune instead of a from-scratch preset")
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--micro-batch-size", type=int, default=4)
    s.add_argument("--grad-accum", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--n-heldout", type=int, default=300)
    s = sub.add_parser("compare", help="score the two trained arms of an ablation folder on its held-out set")
    s.add_argument("folder", type=Path)
    s.add_argument("--arms", default="without,with",
                   help="two run folders inside FOLDER, baseline first; '+' joins runs into a group whose "
                        "per-problem bits/byte is averaged (e.g. without+without-seed1,with+with-seed1)")


def _options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from mathforge.synth import stages

    try:
        counts = _run(args, stages)
    except (RuntimeError, ImportError) as exc:  # engine failures, missing extras: one clear line
        print(f"mathforge synth {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


def _run(args: argparse.Namespace, stages) -> dict:
    if args.stage == "snippets":
        from mathforge.synth.snippets import SnippetConfig

        cfg = SnippetConfig(source=args.source, text_field=args.text_field, limit=args.limit,
                            max_chars=args.max_chars, source_contains=args.source_contains)
        return stages.snippets_stage(args.corpus, args.out, cfg)
    if args.stage == "prompts":
        from mathforge.synth.prompts import LEVELS, PromptConfig

        cfg = PromptConfig(levels=args.levels.split(",") if args.levels else list(LEVELS), cot_demo=args.cot_demo,
                           open_problem=args.open_problem)
        return stages.prompts_stage(args.snippets, args.out, cfg, tool=args.tool, demos_file=args.demos)
    if args.stage == "generate":
        from mathforge.synth.generate import GenerateConfig
        from mathforge.synth.training import TEACHER_STOPS

        cfg = GenerateConfig(engine=args.engine, out_dir=str(args.out), chunk_size=args.chunk_size, shard=args.shard,
                             n=args.n, seed=args.seed, temperature=args.temperature,
                             top_p=args.top_p, tool_max_new_tokens=args.tool_max_new_tokens,
                             max_new_tokens=args.max_new_tokens, stop=args.stop + (TEACHER_STOPS if args.teacher else []),
                             use_declared_sampling=args.declared_sampling, engine_options=_options(args.option))
        return stages.generate_stage(args.prompts, cfg)
    if args.stage == "merge":
        from mathforge.synth.generate import merge_generations

        return merge_generations(args.folders, args.out)
    if args.stage == "parse":
        return stages.parse_stage(args.generations, args.out)
    if args.stage == "filter":
        from mathforge.synth.filters import DEFAULT_FILTERS, FilterConfig

        cfg = FilterConfig(filters=args.filters.split(",") if args.filters else list(DEFAULT_FILTERS),
                           min_tokens=args.min_tokens, tokenizer=args.tokenizer, consistency_k=args.k,
                           consistency_max_new_tokens=args.consistency_max_new_tokens,
                           consistency_temperature=args.consistency_temperature,
                           consistency_stop=args.consistency_stop)
        return stages.filter_stage(args.records, args.out, cfg, engine_spec=args.engine)
    if args.stage == "dedup":
        from mathforge.synth.dedup import DedupConfig

        cfg = DedupConfig(field=args.field, threshold=args.threshold, near=not args.exact_only)
        return stages.dedup_stage(args.records, args.out, cfg)
    if args.stage == "decontaminate":
        from mathforge.synth.decontam import DecontamConfig

        cfg = DecontamConfig(field=args.field, solution_field=args.solution_field, n=args.n, near=not args.no_near,
                             near_shingle=args.near_shingle, near_threshold=args.near_threshold,
                             benchmarks=[b for b in args.benchmarks.split(",") if b])
        extra = [tuple(e.rsplit(":", 1)) for e in args.eval_set]
        if any(len(e) != 2 for e in extra):
            raise ValueError("--eval-set expects FILE:FIELD")
        return stages.decontaminate_stage(args.file, args.out, cfg, extra)
    if args.stage == "kd-data":
        return stages.kd_stage(args.generations, args.out, init=args.init, preset=args.preset)
    if args.stage == "report":
        from mathforge.synth.report import yields_report

        text = yields_report(args.folders, n_examples=args.examples)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        else:
            print(text)
        return {"stages": len(args.folders)}
    if args.stage == "boost":
        from mathforge.synth.boost import BoostConfig

        cfg = BoostConfig(top_k=args.top_k, dim=args.dim)
        return stages.boost_stage(args.candidates, args.model, args.out, cfg, targets_file=args.targets,
                                  n_targets=args.n_targets)
    if args.stage == "train-data":
        return stages.train_data_stage(args.records, args.sft, args.out, sft_question_key=args.sft_question_key,
                                       sft_response_key=args.sft_response_key, init=args.init, preset=args.preset,
                                       seq_len=args.seq_len, seed=args.seed)
    if args.stage == "ablation":
        from mathforge.synth.ablation import AblationConfig

        cfg = AblationConfig(steps=args.steps, seq_len=args.seq_len, preset=args.preset, init=args.init, lr=args.lr,
                             micro_batch_size=args.micro_batch_size, grad_accum=args.grad_accum, seed=args.seed,
                             n_heldout=args.n_heldout)
        return stages.ablation_stage(args.kept, args.out, cfg, sft_benchmark=args.benchmark)
    if args.stage == "compare":
        from mathforge.synth.ablation import compare_arms

        arms = tuple(a for a in args.arms.split(",") if a)
        if len(arms) != 2:
            raise ValueError(f"--arms {args.arms!r}: expected two names or groups, e.g. without,with")
        res = compare_arms(args.folder, arms=arms)
        return {"arms": res["arms_compared"], "bpb_difference": res["bpb_difference"]}
    raise ValueError(f"unknown stage {args.stage!r}")  # pragma: no cover
