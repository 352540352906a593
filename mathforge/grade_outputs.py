"""`mathforge grade`: grade a JSONL file of model outputs, resumably, in parallel (docs/methods/evaluation.md §g.1, §g.7).

Accepted shapes of OUTPUTS.jsonl (one JSON object a line; any other fields are ignored):

- one line per problem, several samples: `{"id": 7, "responses": ["...", "..."]}`;
- one line per problem, one sample:      `{"id": 7, "response": "..."}`;
- one line per sample: several lines with the same id, each with `response`, optionally
  `sample` / `sample_id` (the sample index; else file order within the id).

The id key is `id_field=` (dotted path), else `id` or `idx`, else the line number (each line its own
problem); the text key is `response_field=`, else `response(s)`, `generation(s)` or `completion(s)`
(list entries may be strings or objects with a `text` field). A line with a `dataset` field (as
`mathforge eval` writes) belongs to that dataset: ids of different datasets never clash. The gold
comes from a shipped benchmark (`benchmark=`: the id is the 0-based record index `Problem.id`), from
each line's `dataset` when it names a shipped benchmark and neither option is given (so a
multi-benchmark `outputs.jsonl` of `mathforge eval` re-grades as it is; its records, which carry
`prompt_style` and `exec_reports`, are read as eval read them: a program style's printed result,
a style's answer marker), or from a field of
each line (`gold_field=`, dotted path, with an optional `answer_rule` as in `load_file`); lines
may then carry `level` / `type` for the breakdown and `question` (or `problem`), the problem text
the grader reads to see whether a percentage is asked for (a benchmark supplies its own).

Output folder: `verdicts.jsonl` (one line per sample: id, sample, extracted, gold, correct,
verdict (`correct`, `wrong` or `timeout`), rule, timed_out, attempts, grade_key, cluster),
appended and flushed per problem, so a killed run loses nothing it wrote. A re-run with the same
folder grades again every problem with a missing sample, a stale verdict (its `grade_key`, a hash
of response, gold, grader version, profile and extraction settings, differs: the file or the
grader changed) or a recorded timeout, and then keeps one line per current sample;
`summary.json` (accuracy with 95 % CIs, maj@k, pass@k, verdict counts with timeouts apart from
wrong answers, extraction failures, breakdowns, the profile, and how many verdicts were
re-graded); `run.json` (what was graded against what). Grading itself is
`mathforge.grading.jobs`, shared with `mathforge eval`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mathforge import faults
from mathforge.data.files import ANSWER_RULES, get_path, iter_jsonl, read_appended_jsonl, sha256_file
from mathforge.grading.jobs import (
    GradePool,
    check_profile,
    differing_settings,
    grade_key,
    grade_problems,
    program_result,
    sample_jobs,
    stored_verdict,
)

TEXT_KEYS = ("responses", "response", "generations", "generation", "completions", "completion")
BREAKDOWN_FIELDS = ("level", "type")
QUESTION_KEYS = ("question", "problem")


@dataclass
class GradeConfig:
    outputs: Path
    out_dir: Path
    benchmark: str | None = None
    split: str = "test"
    gold_field: str | None = None
    response_field: str | None = None  # dotted path of the response text (or list of them)
    id_field: str | None = None  # dotted path of the problem id; none: `id`/`idx`, else the line number
    answer_rule: str | None = None  # how to read `gold_field` (see mathforge.data.files.ANSWER_RULES)
    style: str | None = None  # extraction style; default: the benchmark's, else "auto"
    workers: int = 1  # processes; 0 or 1 grades in this process
    chunk_size: int = 16  # problems per task sent to a worker
    timeout: float = 3.0  # per (pred, gold) comparison
    profile: str = "default"  # grading profile (mathforge.grading.profiles)
    restart: bool = False  # discard verdicts of an earlier run in out_dir
    progress: bool = True
    n_trials: int = 100  # subsets for the maj@k subsample estimator
    seed: int = 0

    def __post_init__(self) -> None:
        self.outputs, self.out_dir = Path(self.outputs), Path(self.out_dir)
        if self.benchmark is not None and self.gold_field is not None:
            raise ValueError("give one of --benchmark (a shipped benchmark) or --gold-field (a field), not both")
        if self.answer_rule is not None and self.answer_rule not in ANSWER_RULES:
            raise ValueError(f"unknown answer_rule {self.answer_rule!r}; known: {', '.join(ANSWER_RULES)}")
        if self.workers < 0 or self.chunk_size < 1 or self.timeout <= 0:
            raise ValueError("workers must be >= 0, chunk_size >= 1 and timeout > 0")
        check_profile(self.profile)


# ---------------------------------------------------------------------------- reading outputs
def eval_record_style(line: dict):
    """The prompt style of a record `mathforge eval` wrote (it has `prompt_style` and `exec_reports`),
    else None: such a record is graded as eval graded it."""
    if not isinstance(line.get("prompt_style"), str) or "exec_reports" not in line:
        return None
    from mathforge.data.prompts import get_style

    try:
        return get_style(line["prompt_style"])
    except ValueError:
        return None


def _texts(line: dict, where: str, field: str | None, style: Any) -> list[tuple[int | None, str | None]]:
    """The (sample, text) pairs of one line; `style` is `eval_record_style(line)`."""
    if field is None and style is not None and style.kind == "program":  # eval grades the program's result
        return [(line.get("sample_id"), program_result(line))]
    key = field if field is not None else next((k for k in TEXT_KEYS if k in line), None)
    if key is None:
        raise ValueError(f"{where}: missing field 'response' (or one of {', '.join(TEXT_KEYS)}; "
                         "name yours with --response-field)")
    value = get_path(line, key)
    if value is None:
        raise ValueError(f"{where}: missing field {key!r} (the response)")
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where}: field {key!r}: empty list, no response to grade")
    texts = []
    for v in values:
        text = v.get("text") if isinstance(v, dict) else v
        if not isinstance(text, str):
            raise ValueError(f"{where}: field {key!r}: expected text, got {type(text).__name__}")
        texts.append(text)
    sample = line.get("sample", line.get("sample_id"))
    if sample is not None and (not isinstance(sample, int) or len(texts) != 1):
        raise ValueError(f"{where}: field 'sample' must be an integer on a one-response line")
    return [(sample, t) for t in texts]


def read_outputs(path: Path, *, response_field: str | None = None,
                 id_field: str | None = None) -> dict[str, dict[str, Any]]:
    """id -> {"line": first line, "samples": [(sample index | None, text)], "fields": first line's object,
    "raw_id": the id as written, "dataset": the line's dataset or None}; the id of a line with a
    `dataset` is `dataset/id`.

    Every line is checked before any grading starts, so bad input costs nothing and leaves an
    earlier run's verdicts untouched.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no such outputs file: {path}")
    groups: dict[str, dict[str, Any]] = {}
    for lineno, line in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(line, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(line).__name__}")
        key = id_field or ("id" if "id" in line else "idx" if "idx" in line else None)
        raw = get_path(line, key) if key is not None else lineno
        if raw is None or isinstance(raw, dict | list):
            raise ValueError(f"{where}: missing field {key!r} naming the problem")
        dataset = line.get("dataset") if isinstance(line.get("dataset"), str) else None
        pid = f"{dataset}/{raw}" if dataset else str(raw)
        style = eval_record_style(line)
        group = groups.setdefault(pid, {"line": lineno, "samples": [], "fields": line, "raw_id": str(raw),
                                        "dataset": dataset, "style": style})
        group["samples"].extend(_texts(line, where, response_field, style))
    if not groups:
        raise ValueError(f"{path}: no records (the file is empty or holds only blank lines)")
    for pid, group in groups.items():
        indices = [s for s, _ in group["samples"]]
        if all(s is not None for s in indices):
            if sorted(indices) != list(range(len(indices))):
                raise ValueError(f"{path}:{group['line']}: field 'sample': id {pid} has samples {sorted(indices)}, "
                                 f"expected 0..{len(indices) - 1}")
            group["samples"].sort(key=lambda st: st[0])
        group["texts"] = [t for _, t in group["samples"]]
    return groups


def build_items(cfg: GradeConfig, groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One grading job per problem (`mathforge.grading.jobs`): responses, gold, extraction style,
    grader options, profile, problem text, plus its id and breakdown keys."""
    from mathforge.data.benchmarks import list_benchmarks, load_benchmark

    problems: dict[str, dict[str, Any]] = {}  # benchmark -> id -> Problem, loaded when first needed
    items = []
    for pid, group in groups.items():
        where = f"{cfg.outputs}:{group['line']}"
        bench = cfg.benchmark
        if bench is None and cfg.gold_field is None:
            bench = group["dataset"]
            if bench not in list_benchmarks():
                raise ValueError(f"{where}: no gold: give --benchmark or --gold-field (or lines whose 'dataset' "
                                 f"names a shipped benchmark; this one has {bench!r})")
        if bench is not None:
            if bench not in problems:
                problems[bench] = {p.id: p for p in load_benchmark(bench, cfg.split)}
            prob = problems[bench].get(group["raw_id"])
            if prob is None:
                raise ValueError(f"{where}: id {group['raw_id']!r} is not a problem of {bench}[{cfg.split}] "
                                 f"(ids are 0..{len(problems[bench]) - 1})")
            gold, style, opts, meta, question = prob.answer, prob.extract_style, prob.grading, prob.meta, prob.question
        else:
            fields = group["fields"]
            gold, style, opts, meta = _line_gold(cfg, group, where), "auto", {}, fields
            question = next((fields[k] for k in QUESTION_KEYS if isinstance(fields.get(k), str)), None)
        marker, st = None, group["style"]
        if st is not None:  # a record of `mathforge eval`: its style decides extraction, as in eval
            style = "program" if st.kind == "program" else style
            marker = st.answer_marker
        items.append({"id": pid, "texts": group["texts"], "gold": gold, "extract_style": cfg.style or style,
                      "marker": marker, "opts": dict(opts), "profile": cfg.profile, "question": question,
                      "timeout": cfg.timeout,
                      "meta": {f: meta.get(f) for f in BREAKDOWN_FIELDS if meta.get(f) is not None}})
    return items


def _line_gold(cfg: GradeConfig, group: dict[str, Any], where: str) -> str:
    raw = get_path(group["fields"], cfg.gold_field)
    if raw is None or not isinstance(raw, str | int | float):
        raise ValueError(f"{where}: missing field {cfg.gold_field!r} (the gold answer)")
    try:
        gold = ANSWER_RULES[cfg.answer_rule or "raw"](raw)
    except ValueError as exc:
        raise ValueError(f"{where}: field {cfg.gold_field!r}: {exc}") from exc
    if not gold:
        raise ValueError(f"{where}: field {cfg.gold_field!r}: empty gold answer")
    return gold


# ---------------------------------------------------------------------------- grading (in workers)
def grade_chunk(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Verdict rows of a chunk of problems (runs in a pool worker)."""
    jobs = [{k: v for k, v in it.items() if k not in ("id", "meta")} for it in items]
    return [[{"id": it["id"], "sample": j, "extracted": o["extracted"], "gold": it["gold"], "correct": o["correct"],
              "verdict": o["verdict"], "rule": o["rule"], "timed_out": o["timed_out"], "attempts": o["attempts"],
              "grade_key": o["grade_key"], "cluster": o["cluster"]} for j, o in enumerate(outcomes)]
            for it, outcomes in zip(items, grade_problems(jobs), strict=True)]


# ---------------------------------------------------------------------------- resumable verdicts
def read_verdicts(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(id, sample) -> verdict row; a partial last line (the process was killed mid-write) is cut off
    (the reader eval's outputs.jsonl goes through too)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for lineno, row in read_appended_jsonl(path, cut=True):
        if not isinstance(row, dict) or "id" not in row or "sample" not in row:
            raise ValueError(f"{path}:{lineno}: not a verdict row (fields 'id', 'sample')")
        rows[(str(row["id"]), int(row["sample"]))] = row
    return rows


def _check_run(cfg: GradeConfig) -> None:
    """Refuse to mix verdicts graded against another gold source; a changed file, grader version
    or profile is not refused: its stale verdicts are graded again (their grade keys differ)."""
    from mathforge.grading import GRADER_VERSION

    meta_path, verdicts = cfg.out_dir / "run.json", cfg.out_dir / "verdicts.jsonl"
    run = {"outputs": str(cfg.outputs.resolve()), "benchmark": cfg.benchmark, "split": cfg.split,
           "gold_field": cfg.gold_field, "response_field": cfg.response_field, "id_field": cfg.id_field,
           "answer_rule": cfg.answer_rule, "style": cfg.style,
           "grader_version": GRADER_VERSION, "profile": cfg.profile}
    if cfg.restart:
        verdicts.unlink(missing_ok=True)
    elif verdicts.exists() and meta_path.exists():
        old = json.loads(meta_path.read_text())
        diff = differing_settings(old, run, {"grader_version", "profile"})
        if diff:
            raise ValueError(f"{cfg.out_dir} holds verdicts of another run (differs in {', '.join(diff)}); "
                             "use another --out or --restart")
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(run, indent=2) + "\n")


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _run_pending(cfg: GradeConfig, pending: list[dict[str, Any]], fh: Any) -> None:
    """Grade `pending`, appending each problem's rows in one write and flushing at once."""
    from tqdm import tqdm

    bar = tqdm(total=len(pending), desc="grading", unit="problem", disable=not cfg.progress)
    written = 0
    with GradePool(max(1, cfg.workers)) as pool:
        for results in pool.as_completed(grade_chunk, _chunks(pending, cfg.chunk_size)):
            for rows in results:
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                fh.flush()
                bar.update(1)
                written += 1
                faults.kill_at(faults.GRADE, written)       # the kill-and-resume test's exact point
    bar.close()


def _stale(items: list[dict[str, Any]], done: dict[tuple[str, int], dict[str, Any]]) -> tuple[list, int, int]:
    """Problems to grade now (a sample missing, stale or timed out), stale rows, timed-out rows."""
    pending, stale, timeouts = [], 0, 0
    for it in items:
        rows = [done.get((it["id"], j)) for j in range(len(it["texts"]))]
        keys = [grade_key(job) for job in sample_jobs({k: v for k, v in it.items() if k not in ("id", "meta")})]
        n_stale = sum(r is not None and r.get("grade_key") != k for r, k in zip(rows, keys, strict=True))
        n_timeout = sum(r is not None and r.get("grade_key") == k and stored_verdict(r) == "timeout"
                        for r, k in zip(rows, keys, strict=True))
        if n_stale or n_timeout or any(r is None for r in rows):
            pending.append(it)
        stale, timeouts = stale + n_stale, timeouts + n_timeout
    return pending, stale, timeouts


def _keep_current(path: Path, items: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Rewrite verdicts.jsonl (atomically) with one line per current sample, in outputs order."""
    rows = read_verdicts(path)
    current = [rows[(it["id"], j)] for it in items for j in range(len(it["texts"]))]
    if len(current) != path.read_bytes().count(b"\n"):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in current), encoding="utf-8")
        os.replace(tmp, path)
    return rows


def grade_outputs(cfg: GradeConfig) -> dict[str, Any]:
    """Grade `cfg.outputs`, resuming any earlier run in `cfg.out_dir`; returns (and writes) the summary."""
    start = time.time()
    groups = read_outputs(cfg.outputs, response_field=cfg.response_field, id_field=cfg.id_field)
    items = build_items(cfg, groups)
    _check_run(cfg)
    path = cfg.out_dir / "verdicts.jsonl"
    pending, stale, timeouts = _stale(items, read_verdicts(path))
    with path.open("a", encoding="utf-8") as fh:
        _run_pending(cfg, pending, fh)
    rows = _keep_current(path, items)
    summary = summarise(items, rows, n_trials=cfg.n_trials, seed=cfg.seed)
    summary["profile"] = cfg.profile
    summary["run"] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                      "outputs_sha256": sha256_file(cfg.outputs), "graded_now": len(pending),
                      "resumed": len(items) - len(pending), "regraded_stale": stale, "timeouts_retried": timeouts,
                      "seconds": round(time.time() - start, 3)}
    tmp = cfg.out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, cfg.out_dir / "summary.json")
    return summary


def summarise(items: list[dict[str, Any]], rows: dict[tuple[str, int], dict[str, Any]], *,
              n_trials: int = 100, seed: int = 0) -> dict[str, Any]:
    """The summary of §g.7 from the verdict rows of `items` (in outputs order)."""
    from mathforge.grading import GRADER_VERSION
    from mathforge.grading.metrics import breakdown, summarize_matrix

    matrix = [[rows[(it["id"], j)] for j in range(len(it["texts"]))] for it in items]
    flat = [r for row in matrix for r in row]
    summary = summarize_matrix([[r["correct"] for r in row] for row in matrix],
                               [[r["cluster"] for r in row] for row in matrix], n_trials=n_trials, seed=seed,
                               timed_out=[[stored_verdict(r) == "timeout" for r in row] for row in matrix])
    failed = sum(r["extracted"] is None for r in flat)
    summary |= {
        "n_samples": len(flat),
        "samples_per_problem": [min(map(len, matrix)), max(map(len, matrix))],
        "extraction_failed": failed,
        "extraction_failure_rate": failed / len(flat),
        "grade_timeout": sum(stored_verdict(r) == "timeout" for r in flat),
        "grader_version": GRADER_VERSION,
    }
    firsts = [{"correct": row[0]["correct"], **it["meta"]} for it, row in zip(items, matrix, strict=True)]
    summary["breakdown"] = {f: {str(k): v for k, v in breakdown(firsts, f).items()}
                            for f in BREAKDOWN_FIELDS if any(f in it["meta"] for it in items)}
    return summary


