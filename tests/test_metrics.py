"""Metrics (docs/methods/evaluation.md §g.7): each estimator against the slow, obvious computation."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import pytest

from mathforge.grading.metrics import (
    accuracy_ci,
    best_of_n,
    bootstrap_ci,
    breakdown,
    cluster_answers,
    maj_at_k,
    majority_vote,
    pass_at_k,
    weighted_vote,
    wilson_interval,
)


def toy_equal(*, pred: str, gold: str) -> bool:
    """A stand-in grader that knows 0.5 == \\frac{1}{2} == 1/2 (the real one is tested elsewhere)."""
    canon = {"0.5": "1/2", "\\frac{1}{2}": "1/2", "1/2": "1/2", "\\frac12": "1/2"}
    return canon.get(pred.strip(), pred.strip()) == canon.get(gold.strip(), gold.strip())


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_closed_form_and_subset_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1 - math.comb(n - c, k) / math.comb(n, k)
            samples = [True] * c + [False] * (n - c)
            subsets = list(itertools.combinations(samples, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            got = pass_at_k(n, c, k)
            assert got == pytest.approx(closed, abs=1e-12)
            assert got == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_large_n_is_stable_and_validates():
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    assert 0.0 < pass_at_k(10_000, 3, 100) < 1.0
    assert pass_at_k(10, 10, 3) == 1.0 and pass_at_k(10, 0, 3) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_clustering_uses_equivalence_not_strings():
    answers = ["0.5", "3", "\\frac{1}{2}", None, "", "1/2", "3", "7"]
    labels = cluster_answers(answers, equal=toy_equal)
    assert labels == [0, 1, 0, None, None, 0, 1, 2]
    # 0.5 and \frac{1}{2} vote together: three votes beat two for "3".
    assert answers[majority_vote(answers, equal=toy_equal)] == "0.5"
    # Voting on raw strings splits them and "3" wins instead.
    assert answers[majority_vote(answers, equal="string")] == "3"


def test_clustering_is_first_match_when_equivalence_is_not_transitive():
    # "a"~"b", "b"~"c", but "a"!~"c": c must start its own cluster, compared with first members only.
    pairs = {frozenset("ab"), frozenset("bc")}

    def eq(*, pred, gold):
        return frozenset((pred, gold)) in pairs

    assert cluster_answers(["a", "b", "c"], equal=eq) == [0, 0, 1]
    assert cluster_answers(["b", "a", "c"], equal=eq) == [0, 0, 0]


def test_vote_tie_breaks():
    # Tie on count: earliest first member wins; with scores, the larger total score wins.
    assert majority_vote(["1", "2", "2", "1"], equal="string") == 0
    assert majority_vote(["1", "2", "2", "1"], scores=[0.1, 0.5, 0.5, 0.1], equal="string") == 1
    # Weighted vote: summed weight beats count; equal weights fall back to count.
    assert weighted_vote(["1", "1", "2"], [0.2, 0.2, 0.9], equal="string") == 2
    assert weighted_vote(["1", "2", "2"], [1.0, 0.5, 0.5], equal="string") == 1
    assert majority_vote([None, ""], equal="string") is None


def _brute_maj(answers, correct, k):
    """Mean over all k-subsets of the plurality answer (ties: earliest in the subset)."""
    hits = []
    for sub in itertools.combinations(range(len(answers)), k):
        counts = Counter(answers[i] for i in sub)
        top = max(counts.values())
        winner = next(i for i in sub if counts[answers[i]] == top)
        hits.append(correct[winner])
    return sum(hits) / len(hits)


def test_maj_at_k_exact_when_k_is_n_and_matches_enumeration():
    rng = random.Random(3)
    for _ in range(30):
        n = rng.randint(1, 7)
        answers = [rng.choice("abc") for _ in range(n)]
        correct = [a == "a" for a in answers]
        vote = majority_vote(answers, equal="string")
        assert maj_at_k(answers, correct, n, equal="string") == float(correct[vote])
        for k in range(1, n + 1):
            # n_trials >= C(n, k) makes the subsample estimator enumerate every subset: exact.
            got = maj_at_k(answers, correct, k, equal="string", n_trials=100)
            assert got == pytest.approx(_brute_maj(answers, correct, k))
            labels = cluster_answers(answers, equal="string")  # the vectorised fixed-label path
            assert maj_at_k(answers, correct, k, labels=labels) == pytest.approx(got)


def test_maj_at_k_subsample_is_seeded_and_first_k_uses_prefix():
    answers = [str(i % 5) for i in range(40)]
    correct = [a == "0" for a in answers]
    a = maj_at_k(answers, correct, 4, n_trials=50, seed=1, equal="string")
    b = maj_at_k(answers, correct, 4, n_trials=50, seed=1, equal="string")
    assert a == b and 0.0 < a < 1.0
    assert maj_at_k(answers, correct, 3, estimator="first_k", equal="string") == 1.0  # 0,1,2 -> tie -> "0"
    assert maj_at_k(["7", "x", "x"], [True, False, False], 1, estimator="first_k", equal="string") == 1.0


def test_maj_at_k_with_labels_equals_reclustering_for_transitive_grader():
    answers = ["0.5", "\\frac12", "2", "1/2", "2", "2", None, "0.5"]
    correct = [toy_equal(pred=a, gold="1/2") if a else False for a in answers]
    labels = cluster_answers(answers, equal=toy_equal)
    for k in range(1, 9):
        exact = maj_at_k(answers, correct, k, equal=toy_equal, n_trials=1000)
        assert maj_at_k(answers, correct, k, labels=labels, n_trials=1000) == pytest.approx(exact)


def test_best_of_n():
    scores, correct = [0.1, 0.9, 0.9, 0.3], [False, True, False, False]
    assert best_of_n(scores, correct) == 1.0  # ties go to the earliest
    # Over all 2-subsets: correct whenever sample 1 is in it (3 of 6 subsets).
    assert best_of_n(scores, correct, 2, n_trials=100) == pytest.approx(3 / 6)
    assert best_of_n(scores, correct, 2, estimator="first_k") == 1.0


def test_wilson_interval_known_values_and_bounds():
    lo, hi = wilson_interval(81, 263)  # Wilson (1927) style textbook example: 0.2553 .. 0.3662
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)
    assert wilson_interval(0, 30)[0] == 0.0 and 0.0 < wilson_interval(0, 30)[1] < 0.15
    assert wilson_interval(30, 30)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)  # no trials: nothing is known


def test_one_wilson_interval_and_one_key_set_everywhere():
    """Issue 10 item 6: eval, grade, in-training evaluation and search all report accuracy as a
    fraction with the same Wilson interval under the key `ci95_wilson`; 0/10 is not [0, 0]."""
    import mathforge.search_eval as search_eval
    import mathforge.train.evaluation as train_eval
    from mathforge.evaluate import compute_metrics
    from mathforge.grading.metrics import summarize_matrix

    assert not hasattr(train_eval, "wilson_ci") and not hasattr(search_eval, "wilson")  # no second copy
    zero = summarize_matrix([[False]] * 10)
    assert zero["accuracy"] == 0.0 and zero["ci95_wilson"] == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert "ci95_bootstrap" not in zero  # one interval per metric kind
    rec = {"dataset": "d", "sample_id": 0, "extracted": "1", "correct": False, "verdict": "wrong", "flags": {},
           "timing": {"generate_s": 1.0}, "tokens": {"generated": 3}, "meta": {}}
    m = compute_metrics([{**rec, "idx": str(i)} for i in range(10)], ks=[1])
    assert m["unit"] == "fraction"
    b = m["benchmarks"]["d"]
    assert (b["accuracy"], b["n_problems"]) == (0.0, 10) and b["ci95_wilson"] == zero["ci95_wilson"]
    assert set(zero) - {"maj_at_k"} <= set(b)  # grade's summary keys are eval's keys


def test_accuracy_ci_wilson_and_bootstrap_agree_roughly():
    rng = np.random.default_rng(0)
    correct = list(rng.random(500) < 0.6)
    w = accuracy_ci(correct)
    b = accuracy_ci(correct, method="bootstrap", seed=5)
    assert w.accuracy == b.accuracy == sum(correct) / 500
    assert w.low < w.accuracy < w.high
    assert abs(w.low - b.low) < 0.015 and abs(w.high - b.high) < 0.015
    assert accuracy_ci(correct, method="bootstrap", seed=5) == b  # seeded
    with pytest.raises(ValueError):
        accuracy_ci(correct, method="normal")


def test_bootstrap_custom_statistic_matches_vectorised_mean():
    vals = np.arange(50, dtype=float)
    assert bootstrap_ci(vals, seed=2) == pytest.approx(bootstrap_ci(vals, np.mean, seed=2))


def test_breakdown_by_any_field():
    recs = [{"correct": True, "meta": {"level": 1}}, {"correct": False, "meta": {"level": 1}},
            {"correct": True, "meta": {"level": 3}}, {"correct": True, "meta": {}}]
    out = breakdown(recs, "meta.level")
    assert list(out) == [1, 3, None]
    assert out[1] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert out[3]["accuracy"] == 1.0


def test_summary_counts_timeouts_apart_from_wrong():
    from mathforge.grading.metrics import summarize_matrix, verdict_counts

    correct = [[True, False], [False, False], [False, True]]
    timed_out = [[False, True], [True, False], [False, False]]
    s = summarize_matrix(correct, timed_out=timed_out)
    assert s["verdicts"] == {"correct": 1, "wrong": 1, "timeout": 1}          # first samples
    assert s["sample_verdicts"] == {"correct": 2, "wrong": 2, "timeout": 2}
    assert s["accuracy"] == pytest.approx(1 / 3)  # a timeout is not counted correct either
    assert summarize_matrix(correct)["verdicts"] == {"correct": 1, "wrong": 2, "timeout": 0}
    assert verdict_counts([True], [True]) == {"correct": 1, "wrong": 0, "timeout": 0}
    with pytest.raises(ValueError, match="shape"):
        summarize_matrix(correct, timed_out=[[False]] * 3)
