"""Evaluation of inference-time search strategies (docs/methods/tsmc.md §e.9): a generator, optionally a value
model, a strategy (`sample`, `bon`, `wvote`, `beam`, `tsmc`; `mathforge.infer.search`) and N samples
per problem -> `outputs.jsonl` (one record per problem with all its samples, their grades, values,
TSMC weights and lineage, and the cost), `metrics.json`, `manifest.json`.

Problems come from a shipped benchmark (in the `prm800k` step layout of §e.3) or from a step-formatted
synthetic task (`arith_steps`, held-out seed). Every check that can fail is done before generation: the
value model's tokenizer against the generator's, N against the TSMC group size, the task's solutions
against the step delimiter. Records are appended per batch, so a killed run resumes.

Budget curves follow §e.9: for n in the budgets, `n_trials` seeded random subsets of size n of each
problem's N samples (whole TSMC groups for TSMC), the strategy's rule re-applied on the subset,
accuracy averaged; reported with the 2.5/97.5 percentiles over trials. maj@n, best-of-n and weighted
vote are all read off one run that scored every sample with the value model (`wvote`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathforge.eval_runs import SEARCH_VOLATILE
from mathforge.grading.jobs import differing_settings
from mathforge.grading.metrics import wilson_interval
from mathforge.infer.search import STRATEGIES, SearchConfig

OUTPUTS, METRICS, MANIFEST = "outputs.jsonl", "metrics.json", "manifest.json"


@dataclass
class SearchEvalConfig:
    model: str
    out_dir: str
    strategy: str = "sample"
    value_model: str | None = None
    benchmark: str | None = None
    split: str = "test"
    task: str | None = None
    task_seed: int = 2
    task_args: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    n: int = 4
    m: int = 4
    stop_steps: int = 5
    beta: float = 1.0
    resampler: str = "ordered_stratified"
    ess_threshold: float = 1.0
    final: str = "weighted_vote"
    warmup: int = 0
    temperature: float = 0.8
    top_k: int = 200
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 1234
    batch_size: int = 8
    threads: int = 0

    def __post_init__(self) -> None:
        if (self.benchmark is None) == (self.task is None):
            raise ValueError("SearchEvalConfig: give exactly one of benchmark or task")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} unknown; known: {', '.join(STRATEGIES)}")
        if not self.temperature > 0:
            raise ValueError("search strategies sample: temperature must be > 0")
        self.search()  # validates n, m and the TSMC fields

    def search(self) -> SearchConfig:
        return SearchConfig(strategy=self.strategy, n=self.n, m=self.m, stop_steps=self.stop_steps, beta=self.beta,
                            resampler=self.resampler, ess_threshold=self.ess_threshold, final=self.final,
                            warmup=self.warmup, seed=self.seed)


def load_problems(cfg: SearchEvalConfig) -> list[dict[str, Any]]:
    """[{id, question, gold, prompt}] in the step layout; errors before any generation."""
    from mathforge.data.steps import PROMPT, check_step_format

    if cfg.task:
        from mathforge.data.tasks import get_task

        n = cfg.limit or 500
        examples = get_task(cfg.task)(n, seed=cfg.task_seed, **cfg.task_args)
        check_step_format(examples, where=f"task {cfg.task!r}")
        return [{"id": e.meta.get("id", str(i)), "question": e.prompt, "gold": e.answer, "prompt": e.prompt}
                for i, e in enumerate(examples)]
    from mathforge.data import load_benchmark

    probs = load_benchmark(cfg.benchmark, cfg.split, limit=cfg.limit)
    return [{"id": str(p.id), "question": p.question, "gold": p.answer, "prompt": PROMPT.format(question=p.question),
             "grading": dict(p.grading)} for p in probs]


def _load(cfg: SearchEvalConfig):
    import torch

    from mathforge.models.loading import load_model
    from mathforge.models.value import check_same_tokenizer, load_value_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, tok = load_model(cfg.model)
    value = None
    if cfg.value_model:
        value, vtok = load_value_model(cfg.value_model)
        check_same_tokenizer(tok, vtok, where=f"value model {cfg.value_model}")
    elif cfg.strategy not in ("sample",):
        raise ValueError(f"strategy {cfg.strategy!r} needs --value-model PATH")
    return model, tok, value


def evaluate_search(cfg: SearchEvalConfig, *, progress: bool = False) -> dict[str, Any]:
    """Run (or resume) one strategy on the problems; returns the metrics also written to metrics.json."""
    from mathforge.infer.search import Searcher
    from mathforge.infer.types import SamplingParams

    problems = load_problems(cfg)
    model, tok, value = _load(cfg)  # tokenizer mismatch: an error before generation
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"config": dataclasses.asdict(cfg), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "notes": ["[library] step boundaries by the text rule of §e.3; rounds synchronised across the batch",
                          "[reconstructed] final answer by weighted vote over grader-equivalence classes (§e.8.5)"]}
    path = out / MANIFEST
    if path.exists() and (out / OUTPUTS).exists():
        old = json.loads(path.read_text())["config"]
        diff = differing_settings(old, manifest["config"], SEARCH_VOLATILE)
        if diff:
            raise ValueError(f"{path}: this run folder was made with different settings ({', '.join(diff)})")
    else:
        path.write_text(json.dumps(manifest, indent=1))
    done = {r["problem_id"] for r in read_outputs(out / OUTPUTS, repair=True)}
    todo = [p for p in problems if p["id"] not in done]
    params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                            top_p=cfg.top_p, seed=cfg.seed)
    searcher = Searcher(model, tok, cfg.search(), value_model=value, params=params)
    batches = range(0, len(todo), cfg.batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"{cfg.strategy} n={cfg.n} ({len(todo)} left)", unit="batch")
    for start in batches:
        batch = todo[start:start + cfg.batch_size]
        results = searcher.run([tok(p["prompt"])["input_ids"] for p in batch], keys=[p["id"] for p in batch])
        _append(out / OUTPUTS, [_record(p, r, cfg) for p, r in zip(batch, results, strict=True)])
    records = read_outputs(out / OUTPUTS)
    metrics = summarize(records, cfg)
    (out / METRICS).write_text(json.dumps(metrics, indent=1))
    return metrics


def _record(problem: dict, result, cfg: SearchEvalConfig) -> dict[str, Any]:
    from mathforge.grading import grade

    opts = problem.get("grading", {})
    for s in result.samples:
        s["correct"] = bool(s["answer"] is not None and grade(pred=s["answer"], gold=problem["gold"], **opts).correct)
    chosen_ok = result.chosen is not None and result.samples[result.chosen]["correct"]
    return {"problem_id": problem["id"], "question": problem["question"], "gold": problem["gold"],
            "strategy": cfg.strategy, "n": cfg.n, "answer": result.answer, "correct": bool(chosen_ok),
            "chosen": result.chosen, "cost": result.cost, "samples": result.samples, **result.extra}


def _append(path: Path, records: list[dict]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def read_outputs(path: Path, *, repair: bool = False) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for lineno, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                if repair:
                    path.write_text("".join(lines[:-1]), encoding="utf-8")
                break
            raise ValueError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
    return out


# ------------------------------------------------------------------------------------------ metrics
def summarize(records: list[dict], cfg: SearchEvalConfig) -> dict[str, Any]:
    n = len(records)
    k = sum(r["correct"] for r in records)
    samples = [s for r in records for s in r["samples"]]
    lo, hi = wilson_interval(k, n)
    out: dict[str, Any] = {
        "strategy": cfg.strategy, "n": cfg.n, "n_problems": n,
        "accuracy": k / n if n else 0.0, "ci95_wilson": [lo, hi],
        "pass_at_n": sum(any(s["correct"] for s in r["samples"]) for r in records) / max(n, 1),
        "sample_accuracy": sum(s["correct"] for s in samples) / max(len(samples), 1),
        "truncation_rate": sum(s["finish"] == "length" for s in samples) / max(len(samples), 1),
        "generated_tokens_per_problem": sum(r["cost"]["generated_tokens"] for r in records) / max(n, 1),
        "value_tokens_per_problem": sum(r["cost"]["value_tokens"] for r in records) / max(n, 1),
        "wall_s": sum(r["cost"]["wall_s"] for r in records),
    }
    if cfg.strategy == "tsmc":
        groups = [g for r in records for g in r.get("groups", [])]
        out["dead_groups"] = sum(g["all_truncated"] for g in groups)
        out["mean_resamplings"] = sum(g["resamplings"] for g in groups) / max(len(groups), 1)
    return out


def subset_accuracy(records: list[dict], rule: str, n: int, *, group: int = 1, trials: int = 100,
                    seed: int = 0) -> dict[str, float]:
    """§e.9 budget curve point: accuracy of `rule` on random size-n subsets of each problem's samples
    (subsets of whole groups of `group` samples), mean and 2.5/97.5 percentiles over trials."""
    from mathforge.infer.search import vote

    rng = random.Random(seed)
    accs = []
    for _ in range(trials):
        right = 0
        for r in records:
            s = r["samples"]
            units = [list(range(i, i + group)) for i in range(0, len(s), group)]
            pick = sorted(j for u in rng.sample(units, n // group) for j in u)  # ties: the earliest sample
            sub = [s[j] for j in pick]
            answers = [x["answer"] for x in sub]
            if rule == "bon":
                scored = [j for j, x in enumerate(sub) if x["answer"] is not None and x.get("value") is not None]
                best = max(scored, key=lambda j: (sub[j]["value"], -j)) if scored else None
            else:
                weights = {"maj": [1.0] * len(sub), "wvote": [x.get("value") or 0.0 for x in sub],
                           "tsmc": [x.get("vote_weight", 0.0) for x in sub]}[rule]
                best, _ = vote(answers, weights, equivalent=_cached_equivalence(r))
            right += bool(best is not None and sub[best]["correct"])
        accs.append(right / len(records))
    accs.sort()
    return {"n": n, "accuracy": sum(accs) / len(accs), "p2_5": accs[int(0.025 * (len(accs) - 1))],
            "p97_5": accs[int(0.975 * (len(accs) - 1))], "std": _std(accs)}


def _cached_equivalence(record: dict):
    """Grader equivalence of two answers of one problem, memoised (subsets re-ask the same pairs)."""
    from mathforge.grading import is_equivalent

    cache = record.setdefault("_equiv", {})

    def eq(a: str, b: str) -> bool:
        if a == b:
            return True
        key = (a, b) if a < b else (b, a)
        if key not in cache:
            cache[key] = bool(is_equivalent(pred=a, gold=b))
        return cache[key]

    return eq


def _std(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1))


def rescore(src: str | Path, out_dir: str | Path, value_model: str, *, batch_rows: int = 64) -> dict[str, Any]:
    """A `wvote` run's samples re-scored by another value model (no generation): the same N samples
    per problem, their V_EOS under `value_model`, best-of-N and weighted-vote answers recomputed."""
    import torch

    from mathforge.infer.search import vote
    from mathforge.models.value import check_same_tokenizer, load_value_model

    src, out = Path(src), Path(out_dir)
    manifest = json.loads((src / MANIFEST).read_text())
    cfg = SearchEvalConfig(**{**manifest["config"], "value_model": value_model, "out_dir": str(out)})
    from mathforge.models.loading import load_model

    _, tok = load_model(cfg.model)
    value, vtok = load_value_model(value_model)
    check_same_tokenizer(tok, vtok, where=f"value model {value_model}")
    records = read_outputs(src / OUTPUTS)
    jobs = [(r, s) for r in records for s in r["samples"] if s["finish"] == "stop"]
    for i in range(0, len(jobs), batch_rows):
        chunk = jobs[i:i + batch_rows]
        seqs = [tok(r["question"])["input_ids"] + tok(s["text"], add_special_tokens=False)["input_ids"]
                + [tok.eos_token_id] for r, s in chunk]
        width = max(len(x) for x in seqs)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(x)) + x for x in seqs])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in seqs])
        with torch.inference_mode():
            h = value(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
        for (_, s), v in zip(chunk, torch.sigmoid(h).tolist(), strict=True):
            s["value"] = v
    for r in records:
        answers = [s["answer"] for s in r["samples"]]
        chosen, _ = vote(answers, [s.get("value") or 0.0 for s in r["samples"]])
        r.update(strategy="wvote", chosen=chosen, answer=answers[chosen] if chosen is not None else None,
                 correct=bool(chosen is not None and r["samples"][chosen]["correct"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps({**manifest, "config": dataclasses.asdict(cfg), "rescored_from": str(src)},
                                           indent=1))
    (out / OUTPUTS).write_text("".join(json.dumps(r) + "\n" for r in records))
    metrics = summarize(records, cfg)
    (out / METRICS).write_text(json.dumps(metrics, indent=1))
    return metrics
