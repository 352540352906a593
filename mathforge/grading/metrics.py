"""Metrics over the sample matrix `correct[i][j]` / `answers[i][j]` / `scores[i][j]` (docs/methods/evaluation.md §g.7).

- accuracy with a 95 % confidence interval: Wilson score interval (Wilson 1927) or a seeded
  bootstrap over problems;
- answer clusters by grader equivalence (first match, deterministic even when equivalence is not
  transitive), majority vote / weighted vote / best-of-N, and their `@k` estimators
  (`subsample`: mean over seeded random k-subsets, exact when k = n; `first_k`);
- the unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
  Code"), in its numerically stable product form;
- breakdowns by any record field;
- verdict counts that keep grader timeouts apart from wrong answers: a timeout is not correct
  (accuracy does not count it) but it is not a wrong answer either, so every summary shows it.

Standard library and numpy only: no torch, no sympy (the grader is passed in as `equal`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

Equal = Callable[..., bool]


# ---------------------------------------------------------------------------- accuracy and CIs
@dataclass(frozen=True)
class AccuracyCI:
    """Accuracy as a fraction in [0, 1] with its confidence interval."""

    accuracy: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: unlike the normal approximation it stays
    inside [0, 1] and is not degenerate at 0 % or 100 %, which small benchmarks (AIME: 30) hit.
    The one Wilson interval of mathforge (eval, grade, in-training evaluation, search); with no
    trials nothing is known, so the interval is the whole of [0, 1]."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_ci(values: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float] | None = None,
                 *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap over problems: resample the rows of `values` with replacement
    `n_boot` times (seeded) and return the (lo, hi) percentiles of `statistic` (default: mean)."""
    arr = np.asarray(values, dtype=float)
    if arr.shape[0] == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.shape[0], size=(n_boot, arr.shape[0]))  # [B, N] resampled problem ids
    if statistic is None:
        stats = arr[idx].reshape(n_boot, -1).mean(axis=1)  # [B]; vectorised mean is the common case
    else:
        stats = np.array([statistic(arr[row]) for row in idx])
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return (float(lo), float(hi))


def accuracy_ci(correct: Sequence[bool], *, confidence: float = 0.95, method: str = "wilson",
                n_boot: int = 1000, seed: int = 0) -> AccuracyCI:
    """Accuracy of one column of verdicts with a `wilson` or `bootstrap` interval."""
    n, hits = len(correct), sum(bool(c) for c in correct)
    acc = hits / n if n else 0.0
    if method == "wilson":
        lo, hi = wilson_interval(hits, n, confidence)
    elif method == "bootstrap":
        lo, hi = bootstrap_ci([float(bool(c)) for c in correct], n_boot=n_boot, confidence=confidence, seed=seed)
    else:
        raise ValueError(f"method must be 'wilson' or 'bootstrap', got {method!r}")
    return AccuracyCI(acc, lo, hi, n, method, confidence)


# ---------------------------------------------------------------------------- pass@k
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i)
    so no huge binomials are formed (n = 1000 samples is routine)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


# ---------------------------------------------------------------------------- clusters and votes
def _is_empty(answer: Any) -> bool:
    return answer is None or (isinstance(answer, str) and not answer.strip())


def _default_equal() -> Equal:
    from mathforge.grading import is_equivalent

    return is_equivalent


class _Memo:
    """`equal(pred=a, gold=b)` memoised on the string pair; identical strings are equal without a
    grader call (the grader is the slow part of every vote)."""

    def __init__(self, equal: Equal | str | None):
        if equal == "string":
            self.equal: Equal = lambda *, pred, gold: pred.strip() == gold.strip()
        else:
            self.equal = equal or _default_equal()
        self.cache: dict[tuple[str, str], bool] = {}

    def __call__(self, pred: str, gold: str) -> bool:
        if pred == gold:
            return True
        key = (pred, gold)
        if key not in self.cache:
            self.cache[key] = bool(self.equal(pred=pred, gold=gold))
        return self.cache[key]


def cluster_answers(answers: Sequence[str | None], equal: Equal | str | None = None) -> list[int | None]:
    """Cluster label per answer (0, 1, ... in order of first appearance; None for None/empty).

    Walking in sample order, each answer joins the first cluster whose *first member* it equals
    under `equal(pred=answer, gold=first_member)` (default `mathforge.grading.is_equivalent`;
    `"string"` for exact-string voting), else starts a new cluster (§g.7).
    """
    memo = equal if isinstance(equal, _Memo) else _Memo(equal)
    reps: list[str] = []
    labels: list[int | None] = []
    for ans in answers:
        if _is_empty(ans):
            labels.append(None)
            continue
        label = next((c for c, rep in enumerate(reps) if memo(ans, rep)), None)
        if label is None:
            label = len(reps)
            reps.append(ans)
        labels.append(label)
    return labels


def _winner(labels: Sequence[int | None], primary: dict[int, float], secondary: dict[int, float]) -> int | None:
    """Index of the first member of the best cluster: max primary, then secondary, then earliest."""
    first: dict[int, int] = {}
    for i, lab in enumerate(labels):
        if lab is not None and lab not in first:
            first[lab] = i
    if not first:
        return None
    best = max(first, key=lambda lab: (primary[lab], secondary[lab], -first[lab]))
    return first[best]


def majority_vote(answers: Sequence[str | None], weights: Sequence[float] | None = None, *,
                  scores: Sequence[float] | None = None, equal: Equal | str | None = None,
                  labels: Sequence[int | None] | None = None) -> int | None:
    """Index of the voted sample (the first member of the winning cluster), None if all are empty.

    Without `weights`: the largest cluster wins; ties go to the larger total `scores`, then to the
    earliest first member. With `weights` (weighted vote@k): the largest summed weight wins; ties
    go to the larger count, then the earliest. `labels` (from `cluster_answers`) skips clustering.
    """
    labels = list(labels) if labels is not None else cluster_answers(answers, equal)
    count: dict[int, float] = defaultdict(float)
    total: dict[int, float] = defaultdict(float)
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        count[lab] += 1
        total[lab] += float(weights[i]) if weights is not None else float(scores[i]) if scores is not None else 0.0
    if weights is not None:
        return _winner(labels, total, count)
    return _winner(labels, count, total)


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float], **kw: Any) -> int | None:
    """Weighted vote: clusters score the sum of their members' weights (ORM / value / SMC weights)."""
    return majority_vote(answers, weights, **kw)


def _subsets(n: int, k: int, estimator: str, n_trials: int, seed: int) -> np.ndarray:
    """The index subsets an @k estimator averages over: [T, k], each row in sample order."""
    if not 1 <= k <= n:
        raise ValueError(f"@k needs 1 <= k <= n, got k={k}, n={n}")
    if estimator == "first_k" or k == n:
        return np.arange(k)[None, :]
    if estimator != "subsample":
        raise ValueError(f"estimator must be 'subsample' or 'first_k', got {estimator!r}")
    if math.comb(n, k) <= n_trials:  # few enough subsets: average over all of them, exactly
        return np.array(list(itertools.combinations(range(n), k)))
    # k-subsets uniformly at random: the first k of a random permutation per trial, in sample order.
    keys = np.random.default_rng(seed).random((n_trials, n))  # [T, n]
    return np.sort(np.argsort(keys, axis=1)[:, :k], axis=1)  # [T, k]


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int, *, estimator: str = "subsample",
             n_trials: int = 100, seed: int = 0, scores: Sequence[float] | None = None,
             weights: Sequence[float] | None = None, equal: Equal | str | None = None,
             labels: Sequence[int | None] | None = None) -> float:
    """Expected correctness of the vote among k of the n samples of one problem.

    Each subset is re-clustered from its own answers (first match within the subset, memoised
    grader calls); with precomputed `labels` the full clustering is restricted instead, which is
    the same whenever the grader's equivalence is transitive.
    """
    if len(correct) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(correct)} verdicts")
    subsets = _subsets(len(answers), k, estimator, n_trials, seed)
    if labels is not None and scores is None and weights is None:
        return _maj_from_labels(labels, correct, subsets)
    memo = _Memo(equal)
    total = 0.0
    for sub in subsets:
        sub_labels = [labels[i] for i in sub] if labels is not None else cluster_answers([answers[i] for i in sub], memo)
        pick = majority_vote([answers[i] for i in sub], None if weights is None else [weights[i] for i in sub],
                             scores=None if scores is None else [scores[i] for i in sub], labels=sub_labels)
        total += bool(correct[sub[pick]]) if pick is not None else 0.0
    return total / len(subsets)


def _maj_from_labels(labels: Sequence[int | None], correct: Sequence[bool], subsets: np.ndarray) -> float:
    """Plurality vote on fixed cluster labels for all subsets at once (the same rule as
    `majority_vote`: most members, then earliest first member); 10x+ faster for n = 64."""
    lab = np.array([-1 if x is None else x for x in labels])  # [n], -1 = no answer
    ok = np.asarray(correct, dtype=bool)  # [n]
    sub = subsets  # [T, k] sample ids, each row in sample order
    n_lab = int(lab.max()) + 1
    if n_lab == 0:
        return 0.0
    hit = lab[sub][:, :, None] == np.arange(n_lab)  # [T, k, m] sample j of trial t is in cluster c
    counts = hit.sum(axis=1)  # [T, m]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), sub.shape[1])  # [T, m] first position in subset
    key = counts * (sub.shape[1] + 1) - first  # more members first, then the earlier first member
    win = key.argmax(axis=1)  # [T]
    rows = np.arange(sub.shape[0])
    valid = counts[rows, win] > 0  # [T] some answer in the subset at all
    rep = sub[rows, np.minimum(first[rows, win], sub.shape[1] - 1)]  # [T] representative sample id
    return float(np.mean(valid & ok[rep]))


def best_of_n(scores: Sequence[float], correct: Sequence[bool], k: int | None = None, *,
              estimator: str = "subsample", n_trials: int = 100, seed: int = 0) -> float:
    """best-of-N@k: correctness of the highest-scoring sample among k (ties: earliest sample)."""
    n = len(scores)
    if len(correct) != n:
        raise ValueError(f"{n} scores but {len(correct)} verdicts")
    subsets = _subsets(n, k or n, estimator, n_trials, seed)
    hits = sum(bool(correct[max(sub, key=lambda i: (scores[i], -i))]) for sub in subsets)
    return hits / len(subsets)


# ---------------------------------------------------------------------------- breakdowns
def _lookup(record: Any, path: str) -> Any:
    node = record
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node


def breakdown(records: Sequence[Any], field: str, *, value: str = "correct") -> dict[Any, dict[str, float]]:
    """Accuracy per value of `field` (a dotted path into dict records or attributes, e.g.
    `"meta.level"`): `{field_value: {"n", "correct", "accuracy"}}`, keys sorted; records lacking
    the field are grouped under None."""
    groups: dict[Any, list[bool]] = defaultdict(list)
    for rec in records:
        key = _lookup(rec, field)
        groups[key if isinstance(key, int | float | str | bool) or key is None else str(key)].append(
            bool(_lookup(rec, value)))
    order = sorted(groups, key=lambda k: (k is None, type(k).__name__, k if k is not None else 0))
    return {k: {"n": len(groups[k]), "correct": sum(groups[k]), "accuracy": sum(groups[k]) / len(groups[k])}
            for k in order}


# ---------------------------------------------------------------------------- the whole matrix
def budgets(n: int) -> list[int]:
    """Sample budgets k reported for n samples: 1, 2, 4, ... up to n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks + ([n] if n not in ks else [])


def verdict_counts(correct: Sequence[bool], timed_out: Sequence[bool] | None = None) -> dict[str, int]:
    """`{"correct", "wrong", "timeout"}` counts; a sample that is correct is never a timeout."""
    timed_out = timed_out if timed_out is not None else [False] * len(correct)
    if len(timed_out) != len(correct):
        raise ValueError(f"{len(correct)} verdicts but {len(timed_out)} timeout flags")
    hits = sum(bool(c) for c in correct)
    timeouts = sum(bool(t) and not bool(c) for c, t in zip(correct, timed_out, strict=True))
    return {"correct": hits, "wrong": len(correct) - hits - timeouts, "timeout": timeouts}


def summarize_matrix(correct: Sequence[Sequence[bool]], labels: Sequence[Sequence[int | None]] | None = None,
                     *, n_trials: int = 100, seed: int = 0, ks: Sequence[int] | None = None,
                     timed_out: Sequence[Sequence[bool]] | None = None) -> dict[str, Any]:
    """Accuracy (first sample column) with its Wilson 95 % CI, mean sample accuracy,
    pass@k and, given cluster `labels`, maj@k (subsample estimator) for k in `ks` (default
    `budgets(min n)`; budgets above the smallest n are dropped); verdict counts (correct, wrong,
    timeout) of the first sample column and of all samples, from the `timed_out` flags. The one
    place both `mathforge grade` and `mathforge eval` compute these."""
    if not correct or any(len(row) == 0 for row in correct):
        raise ValueError("every problem needs at least one graded sample")
    if timed_out is not None and [len(r) for r in timed_out] != [len(r) for r in correct]:
        raise ValueError("timed_out must have the shape of correct")
    flags = timed_out if timed_out is not None else [[False] * len(row) for row in correct]
    first = [bool(row[0]) for row in correct]
    wilson = accuracy_ci(first)
    n_min = min(len(row) for row in correct)
    ks = budgets(n_min) if ks is None else [k for k in ks if k <= n_min]
    out: dict[str, Any] = {
        "n_problems": len(correct),
        "accuracy": wilson.accuracy,
        "ci95_wilson": [wilson.low, wilson.high],
        "sample_accuracy": float(np.mean([np.mean(row) for row in correct])),
        "pass_at_k": {k: float(np.mean([pass_at_k(len(r), sum(map(bool, r)), k) for r in correct])) for k in ks},
        "verdicts": verdict_counts(first, [bool(row[0]) for row in flags]),
        "sample_verdicts": verdict_counts([c for row in correct for c in row], [t for row in flags for t in row]),
    }
    if labels is not None:
        out["maj_at_k"] = {k: float(np.mean([maj_at_k(lab, r, k, labels=lab, n_trials=n_trials, seed=seed)
                                             for r, lab in zip(correct, labels, strict=True)])) for k in ks}
    return out
