"""Grading jobs shared by `mathforge eval` and `mathforge grade` (docs/methods/evaluation.md §g.1, §g.5, §g.7):
one per-sample function, one per-problem function (samples plus answer clusters) and one pool.

A job is a plain dict, picklable for spawned processes: `text` (or `texts`), `extract_style`,
`marker` (PRM800K's `# Answer`), `gold`, `opts` (the benchmark's grader options), `profile`,
`question` (the problem text, so the grader knows whether a percentage is asked) and `timeout`.

Every sample ends in one of three verdicts: `correct`, `wrong`, or `timeout` (the grader ran out
of time: not a wrong answer, and counted apart from wrong in every summary). A comparison that
times out is retried once on a warm worker (started outside any deadline) before it is recorded.
Each outcome carries `grade_key`, a hash of everything its verdict depends on (response, gold,
grader version, profile, extraction style, marker, options, question): a stored verdict whose
key differs from the current one is stale, and re-grading grades it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

VERDICTS = ("correct", "wrong", "timeout")


def program_result(record: dict) -> str | None:
    """What a program-style record is graded on: its last program's output when that program ran
    cleanly, else None (as `mathforge eval` stores `exec_reports`)."""
    reports = record.get("exec_reports") or []
    return reports[-1].get("result") if reports and reports[-1].get("ok") else None


def check_profile(name: str) -> str:
    """`name` if it is a grading profile, else a ValueError naming the known ones."""
    from mathforge.grading.profiles import get_profile

    get_profile(name)
    return name


def verdict_of(correct: bool, timed_out: bool) -> str:
    """`correct`, `wrong` or `timeout` (a comparison that ran out of time is not a wrong answer)."""
    return "correct" if correct else "timeout" if timed_out else "wrong"


def stored_verdict(row: dict) -> str:
    """The verdict of a stored row, also for rows written before verdicts were recorded."""
    timed_out = row.get("timed_out", row.get("flags", {}).get("grade_timeout", False))
    return row.get("verdict") or verdict_of(bool(row.get("correct")), bool(timed_out))


def grade_key(job: dict) -> str:
    """Hash of what a sample's verdict depends on; it changes with the grader version too."""
    from mathforge.grading import equivalence

    payload = [equivalence.GRADER_VERSION, job.get("profile"), job.get("text"), str(job["gold"]), job.get("extract_style"),
               job.get("marker"), job.get("opts") or {}, job.get("question")]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def differing_settings(old: dict, new: dict, ignore: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The settings (keys) in which a stored run and the current one differ, `ignore`d keys aside:
    the one "same run?" test of `mathforge eval` (manifest.json) and `mathforge grade` (run.json)."""
    return sorted(k for k in old.keys() | new.keys() if k not in ignore and old.get(k) != new.get(k))


def warm_worker() -> None:
    """Start this process's SymPy worker and wait until it is ready (a pool initializer). A
    failure here is not fatal: a comparison that needs the worker then reports a timeout."""
    from mathforge.grading import worker

    try:
        worker.get_pool().warm()
    except Exception:  # noqa: BLE001 - e.g. no process can be started: grading still runs
        pass


def grade_retrying(pred: str | None, gold: str, *, timeout: float, profile: str, question: str | None,
                   opts: dict) -> tuple[Any, int]:
    """`grade(...)` and the number of attempts: a timed-out comparison runs once more, on a warm
    worker, before its verdict is kept (timeouts are never memoised, so the retry recomputes)."""
    from mathforge.grading import grade

    kw = dict(pred=pred, gold=gold, timeout=timeout, profile=profile, question=question, **opts)
    verdict = grade(**kw)
    if verdict.correct or not verdict.timed_out:
        return verdict, 1
    warm_worker()
    return grade(**kw), 2


def extract(job: dict) -> str | None:
    """The answer of one sample: the text after the last marker if the style has one, else the
    extraction style's answer."""
    from mathforge.grading import extract_answer

    text, marker = job["text"], job.get("marker")
    if text is None:
        return None
    if marker and marker in text:
        return text.rsplit(marker, 1)[1].strip() or None  # prm800k: text after the last `# Answer`
    return extract_answer(text, style=job["extract_style"])


def grade_sample(job: dict) -> dict:
    """Extract, normalise and grade one sample. Never raises."""
    from mathforge.grading import strip_string

    t0 = time.perf_counter()
    extracted = extract(job)
    try:
        normalised = strip_string(extracted) if extracted is not None else None
    except Exception:  # a normaliser bug must not lose the sample; grading still sees `extracted`
        normalised = None
    try:
        v, attempts = grade_retrying(extracted, job["gold"], timeout=job["timeout"], profile=job["profile"],
                                     question=job.get("question"), opts=job.get("opts") or {})
        correct, rule, timed_out = bool(v.correct), str(v.rule), bool(v.timed_out)
    except Exception as exc:  # pragma: no cover - the grader promises not to raise
        correct, rule, timed_out, attempts = False, f"error: {type(exc).__name__}", False, 1
    return {"extracted": extracted, "normalised": normalised, "correct": correct, "rule": rule,
            "timed_out": timed_out and not correct, "verdict": verdict_of(correct, timed_out),
            "attempts": attempts, "grade_key": grade_key(job), "grade_s": round(time.perf_counter() - t0, 5)}


def cluster_job(job: dict) -> list[int | None]:
    """Cluster one problem's `answers` by grader equivalence (the same retrying comparison)."""
    from mathforge.grading.metrics import cluster_answers

    def equal(*, pred: str, gold: str) -> bool:
        return grade_retrying(pred, gold, timeout=job["timeout"], profile=job["profile"],
                              question=job.get("question"), opts=job.get("opts") or {})[0].correct

    answers = job["answers"]
    if len(answers) == 1:
        return [0 if answers[0] else None]
    return cluster_answers(answers, equal)


def sample_jobs(problem: dict) -> list[dict]:
    """The per-sample jobs of a problem job (one with `texts` instead of `text`)."""
    common = {k: v for k, v in problem.items() if k != "texts"}
    return [{**common, "text": t} for t in problem["texts"]]


def grade_problem(problem: dict) -> list[dict]:
    """`grade_sample` for every sample of one problem, each with its answer `cluster` label."""
    outcomes = [grade_sample(job) for job in sample_jobs(problem)]
    labels = cluster_job({**problem, "answers": [o["extracted"] for o in outcomes]})
    return [{**o, "cluster": lab} for o, lab in zip(outcomes, labels, strict=True)]


def grade_problems(problems: list[dict]) -> list[list[dict]]:
    """`grade_problem` over a chunk (one task for a pool worker)."""
    return [grade_problem(p) for p in problems]


class GradePool:
    """Runs grading jobs in `workers` spawned processes (spawned, not forked: the parent may hold
    torch threads or grader pipes), each warmed at start (its SymPy worker imported before any
    deadline runs); small jobs run in this process, where a pool's start-up costs more than it saves."""

    def __init__(self, workers: int | None = None, min_parallel: int = 64) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.min_parallel = min_parallel
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=warm_worker)
        return self._pool

    def map(self, jobs: list[dict]) -> list[dict]:
        """`grade_sample` over per-sample jobs, in order."""
        return self.map_fn(grade_sample, jobs)

    def map_fn(self, fn: Callable, items: list) -> list:
        """`[fn(x) for x in items]`, in worker processes when there are enough items to pay for them."""
        if self.workers == 1 or len(items) < self.min_parallel:
            return [fn(it) for it in items]
        chunk = max(1, len(items) // (self.workers * 8))
        return list(self._executor().map(fn, items, chunksize=chunk))

    def as_completed(self, fn: Callable, items: Iterable) -> Iterator:
        """`fn(x)` for every item, yielded as each finishes (in order when in-process); at most
        4 tasks per worker are in flight, so results are written while the rest still run."""
        it = iter(items)
        if self.workers == 1:
            yield from map(fn, it)
            return
        pool = self._executor()
        running = {pool.submit(fn, x) for _, x in zip(range(4 * self.workers), it, strict=False)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
            running |= {pool.submit(fn, x) for _, x in zip(range(len(done)), it, strict=False)}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> GradePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
