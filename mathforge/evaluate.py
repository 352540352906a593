"""The evaluation harness: model + benchmark(s) + prompt style + decoding -> outputs.jsonl, metrics.json.

Implements the pipeline of docs/methods/evaluation.md §g.1 (math-evaluation-harness lineage): load the problems (a
shipped benchmark, a user file with a field mapping, or a task generator: `mathforge.data.sources`),
build the question (§g.6), wrap it in a prompt style (§g.2; through the model's chat template when it
has one, unless `chat=False`), generate `n` samples, run code for program/tool styles (§g.3),
extract the answer (§g.4), normalise, grade against the gold under a grading profile (§g.5; `default`
unless `profile=` says otherwise) and aggregate (§g.7). One JSON record per (problem, sample) is appended
and flushed as soon as a batch is graded, so a killed run resumes where it stopped: finished problems
are skipped, a half-written tail is dropped. `finalize` re-grades, before computing metrics, every
record graded under another grader version, profile or timeout, and every recorded grader timeout
(`mathforge.grading.jobs`). `manifest.json` beside the outputs holds the resolved config, package
versions and data hashes. The run folder is named by `mathforge.eval_runs` unless given, and checked
against its settings before any model is loaded; a run that fails before its first record leaves no
folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mathforge.data.files import ANSWER_RULES
from mathforge.data.prompts import build_prompt, get_style, stop_strings
from mathforge.data.sources import FileFields, load_demos, load_source, source_hash, source_label
from mathforge.eval_metrics import compute_metrics
from mathforge.eval_runs import (  # noqa: F401  (the run-folder helpers are part of this module's API)
    MANIFEST,
    METRICS,
    OUTPUTS,
    VOLATILE_KEYS,
    append_records,
    check_or_write_manifest,
    check_same_run,
    default_out_dir,
    load_records,
    package_versions,
    write_json,
)
from mathforge.grading.jobs import GradePool, check_profile, grade_key, program_result, stored_verdict
from mathforge.infer.tools import Trace, generate_traces

__all__ = ["VOLATILE_KEYS", "EvalConfig", "compute_metrics", "evaluate"]
# Choices this harness makes where the originals are silent or differ; recorded in every manifest.
NOTES = [
    "[library] tool/program styles: extract_program reads the generated text only, never the few-shot demos",
    "[library] HF engine: each sample draws from its own stream keyed by (seed, prompt, sample index), so batching "
    "and resuming do not change samples",
    "[library] generate_s per sample = wall time of its batched generate call / samples in the call",
]


@dataclass
class EvalConfig:
    """What to evaluate and how. `n` samples per problem (greedy when temperature == 0).

    `benchmarks` entries are sources (`mathforge.data.sources`): shipped benchmark names, user
    JSONL/JSON files (fields `question_field`, `answer_field`, optional `id_field`, `answer_rule`)
    or `task:NAME` generators (`task_seed`, `task_args`). `chat`: None applies a local model's chat
    template when its tokenizer has one; True or False force it. `shots_from`: None (the style's
    demos), `train` (the benchmark's train split) or a file; `shot_ids` picks exemplars by index.
    `out_dir` None: a folder of its own under runs/eval (`mathforge.eval_runs.default_out_dir`)."""

    model: str
    benchmarks: list[str]
    out_dir: str | None = None
    split: str = "test"
    style: str = "cot"
    shots: int = 0
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    limit: int | None = None
    batch_size: int = 16
    max_rounds: int | None = None
    exec_timeout: float = 5.0
    grade_timeout: float = 3.0
    profile: str = "default"  # grading profile (mathforge.grading.profiles)
    workers: int | None = None
    ks: list[int] = field(default_factory=list)
    chat: bool | None = None
    system: str | None = None  # a system turn before each prompt (chat only)
    question_field: str = "question"
    answer_field: str = "answer"
    id_field: str | None = None
    answer_rule: str | None = None
    task_seed: int = 0
    task_args: dict = field(default_factory=dict)
    shots_from: str | None = None
    shot_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        get_style(self.style)  # unknown style -> ValueError naming the known ones
        check_profile(self.profile)
        if not self.grade_timeout > 0:
            raise ValueError(f"EvalConfig.grade_timeout must be > 0, got {self.grade_timeout!r}")
        if not self.benchmarks:
            raise ValueError("EvalConfig.benchmarks: give at least one benchmark")
        for name, low in (("n", 1), ("batch_size", 1), ("max_new_tokens", 1), ("shots", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"EvalConfig.{name} must be an int >= {low}, got {value!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"EvalConfig.limit must be a positive int or None, got {self.limit!r}")
        from mathforge.infer.types import SamplingParams

        try:  # decoding settings are checked here, before anything loads
            SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                           seed=self.seed)
        except ValueError as exc:
            raise ValueError(str(exc).replace("SamplingParams.", "--").replace("_", "-")) from None
        if self.n > 1 and self.temperature == 0.0:
            raise ValueError("EvalConfig: n > 1 with temperature 0 gives n identical samples; set temperature")
        bad = [k for k in self.ks if not 1 <= k <= self.n]
        if bad:
            raise ValueError(f"EvalConfig.ks {bad} must lie in 1..n={self.n}")
        self.ks = sorted(set(self.ks)) or default_ks(self.n)
        if self.system is not None and self.chat is False:
            raise ValueError("--system needs the chat template: leave out --no-chat")
        if self.answer_rule is not None and self.answer_rule not in ANSWER_RULES:
            raise ValueError(f"unknown --answer-rule {self.answer_rule!r}; known: {', '.join(ANSWER_RULES)}")
        if self.shots_from is not None and self.shots == 0:
            raise ValueError("--shots-from needs --shots > 0")
        if self.shot_ids and len(self.shot_ids) != self.shots:
            raise ValueError(f"--shot-ids names {len(self.shot_ids)} exemplars but --shots is {self.shots}")
        if self.out_dir is None:
            self.out_dir = default_out_dir(self)

    @property
    def fields(self) -> FileFields:
        return FileFields(self.question_field, self.answer_field, self.id_field, self.answer_rule)

    def load_problems(self) -> dict[str, list]:
        """Every source's problems, by dataset label."""
        out = {}
        for spec in self.benchmarks:
            label = source_label(spec)
            if label in out:
                raise ValueError(f"two sources are both called {label!r}; rename one file")
            out[label] = load_source(spec, self.split, limit=self.limit, fields=self.fields,
                                     task_seed=self.task_seed, task_args=self.task_args)
        return out


def config_defaults() -> dict:
    """Every EvalConfig field that has a default, with it (for manifests older than a field)."""
    out = {}
    for f in dataclasses.fields(EvalConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


# ------------------------------------------------------------------ grading (parallel processes)


def grade_item_for(problem, trace: Trace, style, timeout: float, profile: str = "default") -> dict:
    """The grading job of one sample: program styles grade the program's result, others the text."""
    program = style.kind == "program"
    return {"text": trace.answer_text if program else trace.generation,
            "extract_style": "program" if program else (problem.extract_style or "auto"),
            "marker": style.answer_marker, "gold": problem.answer, "opts": dict(problem.grading),
            "profile": profile, "question": problem.question, "timeout": timeout}


def _trace_of(record: dict) -> Trace:
    """The parts of a trace grading reads, back from a stored record (a program style's result is
    its one program's output, as `generate_traces` set it)."""
    return Trace(generation=record["generation"], answer_text=program_result(record))


def _verdict_fields(v: dict) -> dict:
    """The record fields a grading outcome sets (the same for a first grading and a re-grading)."""
    return {"extracted": v["extracted"], "normalised": v["normalised"], "correct": v["correct"],
            "verdict": v["verdict"], "grade_rule": v["rule"], "grade_attempts": v["attempts"],
            "grade_key": v["grade_key"]}


def build_records(problems: list, prompts: list[str], traces: list[list[Trace]], *, style, pool: GradePool,
                  grade_timeout: float = 3.0, prompt_tokens: list[int | None] | None = None,
                  profile: str = "default") -> list[dict]:
    """Per-sample records (§g.1) for generated traces: extraction, normalisation and grading in `pool`."""
    jobs = [grade_item_for(p, tr, style, grade_timeout, profile)
            for p, row in zip(problems, traces, strict=True) for tr in row]
    verdicts = iter(pool.map(jobs))
    records = []
    for i, (p, prompt, row) in enumerate(zip(problems, prompts, traces, strict=True)):
        for j, tr in enumerate(row):
            v = next(verdicts)
            reports = tr.exec_reports
            flags = {"empty": not tr.generation.strip(),
                     "exec_error": any(not r["ok"] and not r["timed_out"] for r in reports),
                     "exec_timeout": any(r["timed_out"] for r in reports),
                     "grade_timeout": v["timed_out"],
                     "extraction_failed": not v["extracted"],
                     "call_limit": tr.hit_call_limit}
            records.append({
                "dataset": p.dataset, "idx": p.id, "question": p.question,
                "gold_raw": str(p.meta.get("gold_raw", p.answer)), "gold": p.answer,
                "prompt_style": style.name, "profile": profile, "sample_id": j, "prompt": prompt,
                "generation": tr.generation, "finish_reason": tr.finish_reason, "programs": tr.programs,
                "exec_reports": reports, **_verdict_fields(v), "grading_opts": dict(p.grading),
                "flags": flags, "score": None,
                "logprob": tr.logprob, "rounds": tr.rounds,
                "tokens": {"prompt": (prompt_tokens or [None] * len(prompts))[i], "generated": tr.n_tokens},
                "timing": {"generate_s": round(tr.generate_s, 5), "exec_s": round(tr.exec_s, 5),
                           "grade_s": v["grade_s"]},
                "meta": {k: p.meta[k] for k in ("level", "type", "subject") if p.meta.get(k) is not None},
            })
    return records


def data_hashes(cfg: EvalConfig, problems: dict[str, list]) -> dict[str, dict]:
    """Per source: its file and sha256 (or the task's draw), plus a hash of the loaded (id, question, gold)."""
    return {source_label(spec): source_hash(spec, cfg.split, problems[source_label(spec)], task_seed=cfg.task_seed,
                                            task_args=cfg.task_args)
            for spec in cfg.benchmarks}


# ------------------------------------------------------------------ the harness


def evaluate(cfg: EvalConfig, engine=None, *, progress: bool = False) -> dict:
    """Run (or resume) an evaluation; returns the metrics also written to `out_dir/metrics.json`.

    Everything that can be checked without the model is checked before it loads: the problems, the
    few-shot exemplars and prompts, and whether `out_dir` holds a run with other settings."""
    from mathforge.grading import GRADER_VERSION
    from mathforge.infer.types import SamplingParams

    out = Path(cfg.out_dir)
    style = get_style(cfg.style)
    problems = cfg.load_problems()
    demos = {name: load_demos(cfg.shots_from, spec, cfg.shots, cfg.shot_ids) if cfg.shots_from else None
             for name, spec in zip(problems, cfg.benchmarks, strict=True)}
    data = data_hashes(cfg, problems)
    config = dataclasses.asdict(cfg)
    check_same_run(out, MANIFEST, OUTPUTS, config, data, config_defaults())
    if not style.needs_eos:  # prompts are final without the tokenizer: build them all now (errors early)
        for name, probs in problems.items():
            for p in probs:
                build_prompt(p.question, style, shots=cfg.shots, benchmark=name, demos=demos[name])
    else:  # prompts need the tokenizer: check one per benchmark now (too many shots, no demos)
        for name, probs in problems.items():
            if probs:
                build_prompt(probs[0].question, style, shots=cfg.shots, benchmark=name, demos=demos[name])
    if engine is None:
        from mathforge.infer import load_engine

        engine = load_engine(cfg.model)
    tokenizer = getattr(engine, "tokenizer", None)
    _set_chat(engine, tokenizer, cfg.chat, cfg.system)
    eos = getattr(tokenizer, "eos_token", None) or ""
    stop = stop_strings(style, eos or None)
    unknown = _unknown_token_check(engine, tokenizer, problems, style, cfg, demos, eos)
    manifest = {"config": config, "style": dataclasses.asdict(style), "stop": stop, "unknown_tokens": unknown,
                "chat_template": bool(getattr(engine, "chat", False)), "demos": demos_record(demos),
                "profile": cfg.profile, "grader_version": GRADER_VERSION, "engine": type(engine).__name__,
                "notes": NOTES, "versions": package_versions(), "data": data,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    made_here = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    outputs = out / OUTPUTS
    try:
        check_or_write_manifest(out, manifest, config_defaults())
        done = {(r["dataset"], r["idx"]) for r in load_records(outputs, cfg.n, repair=True)}
        params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                seed=cfg.seed)
        with GradePool(cfg.workers) as pool:
            for name, probs in problems.items():
                todo = [p for p in probs if (name, p.id) not in done]
                for start in _progress(range(0, len(todo), cfg.batch_size), progress, f"{name} ({len(todo)} left)"):
                    batch = todo[start:start + cfg.batch_size]
                    prompts = [build_prompt(p.question, style, shots=cfg.shots, benchmark=name, eos=eos,
                                            demos=demos[name]) for p in batch]
                    traces = generate_traces(engine, prompts, style=style, n=cfg.n, params=params, stop=stop,
                                             max_rounds=cfg.max_rounds, exec_timeout=cfg.exec_timeout,
                                             workers=cfg.workers)
                    ptoks = _prompt_tokens(engine, tokenizer, prompts)
                    append_records(outputs, build_records(batch, prompts, traces, style=style, pool=pool,
                                                          grade_timeout=cfg.grade_timeout, prompt_tokens=ptoks,
                                                          profile=cfg.profile))
            return finalize(out, cfg, pool, problems)
    except BaseException:
        if made_here and not (outputs.exists() and outputs.stat().st_size):
            shutil.rmtree(out, ignore_errors=True)  # nothing was generated: leave no half-made folder
        raise


def _prompt_tokens(engine, tokenizer, prompts: list[str]) -> list[int | None]:
    """Prompt lengths in tokens as the engine encodes them (chat template included)."""
    if hasattr(engine, "encode"):
        return [len(ids) for ids in engine.encode(prompts)]
    return [len(tokenizer(p).input_ids) if tokenizer is not None else None for p in prompts]


def _unknown_token_check(engine, tokenizer, problems, style, cfg, demos, eos, sample: int = 20) -> dict:
    """Per source, how many of its first `sample` prompts hold tokens the model's tokenizer does not
    know (`<unk>`): a model fed text unlike its training text is warned about, not run silently."""
    import warnings

    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not hasattr(engine, "encode"):
        return {}
    out = {}
    for name, probs in problems.items():
        prompts = [build_prompt(p.question, style, shots=cfg.shots, benchmark=name, eos=eos, demos=demos[name])
                   for p in probs[:sample]]
        bad = sum(unk in ids for ids in engine.encode(prompts))
        out[name] = {"checked": len(prompts), "with_unknown_tokens": bad}
        if bad:
            warnings.warn(f"{name}: {bad} of the first {len(prompts)} prompts hold tokens unknown to the model's "
                          f"tokenizer ({tokenizer.unk_token}); is this the kind of text the model was trained on?",
                          stacklevel=3)
    return out


def _set_chat(engine, tokenizer, chat: bool | None, system: str | None = None) -> None:
    """A local model's prompts go through its chat template when it has one (chat=None), or as the
    user forces; a served model's endpoint (`openai:` or `openai-chat:`) decides for itself. A
    `system` turn goes before every prompt of a chat."""
    if hasattr(engine, "chat") and tokenizer is not None:
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if (chat or system) and not has_template:
            raise ValueError(f"--{'chat' if chat else 'system'}: this model's tokenizer has no chat template")
        engine.chat = has_template if chat is None else chat
    if system is not None:
        if not getattr(engine, "chat", False) or not hasattr(engine, "system"):
            raise ValueError("--system needs a chat: a local model with a chat template or openai-chat:URL#MODEL")
        engine.system = system


def demos_record(demos: dict[str, list | None]) -> dict[str, list[dict]] | None:
    """The few-shot exemplars a run used when they are not the style's own (for the manifest)."""
    if not any(demos.values()):
        return None
    return {name: [dataclasses.asdict(d) for d in ds] for name, ds in demos.items() if ds}


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, unit="batch")


def finalize(out: Path, cfg: EvalConfig, pool: GradePool | None = None, problems: dict | None = None) -> dict:
    """Metrics from the complete outputs file (never from memory, so resumed and fresh runs agree),
    after re-grading stale records and recorded timeouts (`regrade`); `problems` is
    `cfg.load_problems()` when the caller already has it."""
    from mathforge.grading import GRADER_VERSION

    pool = pool or GradePool(1)
    records, counts = regrade(out / OUTPUTS, cfg, pool, problems)
    metrics = compute_metrics(records, ks=cfg.ks, seed=cfg.seed, pool=pool, timeout=cfg.grade_timeout)
    metrics["run"] = {"model": cfg.model, "style": cfg.style, "shots": cfg.shots, "n": cfg.n,
                      "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
                      "max_new_tokens": cfg.max_new_tokens, "split": cfg.split, "limit": cfg.limit,
                      "profile": cfg.profile}
    metrics["grading"] = {"profile": cfg.profile, "grader_version": GRADER_VERSION, **counts}
    write_json(out / METRICS, metrics)
    return metrics


def regrade(path: Path, cfg: EvalConfig, pool: GradePool, problems: dict | None = None) -> tuple[list[dict], dict]:
    """Grade again every record whose grade key is not the current one (another grader version,
    profile, gold or response) and every recorded timeout (once per call); the file is rewritten
    atomically. Returns the records and `{"regraded_stale": n, "timeouts_retried": m}`."""
    records = load_records(path, cfg.n, repair=True)
    style = get_style(cfg.style)
    by_id = {(name, p.id): p for name, probs in (problems or cfg.load_problems()).items() for p in probs}
    todo, stale, timeouts = [], 0, 0
    for i, rec in enumerate(records):
        problem = by_id.get((rec["dataset"], rec["idx"]))
        if problem is None:
            raise ValueError(f"{path}: record {rec['dataset']}/{rec['idx']} is not a problem of this run")
        job = grade_item_for(problem, _trace_of(rec), style, cfg.grade_timeout, cfg.profile)
        if rec.get("grade_key") != grade_key(job):
            stale += 1
        elif stored_verdict(rec) == "timeout":
            timeouts += 1
        else:
            continue
        todo.append((i, job))
    for (i, _), v in zip(todo, pool.map([job for _, job in todo]), strict=True):
        rec = records[i]
        rec.update(_verdict_fields(v), profile=cfg.profile, gold=by_id[(rec["dataset"], rec["idx"])].answer)
        rec["flags"] = {**rec["flags"], "grade_timeout": v["timed_out"], "extraction_failed": not v["extracted"]}
        rec["timing"] = {**rec["timing"], "grade_s": v["grade_s"]}
    if todo:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
    return records, {"regraded_stale": stale, "timeouts_retried": timeouts}
