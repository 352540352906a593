"""Metrics of an evaluation run (docs/methods/evaluation.md §g.7) from its stored records: per benchmark, accuracy
of the first sample with its Wilson 95% CI, mean sample accuracy, maj@k over grader-equivalence
clusters and unbiased pass@k, flags, breakdowns, verdicts and throughput, as fractions under the
key names `mathforge grade` uses (both go through `mathforge.grading.metrics.summarize_matrix`).
"""

from __future__ import annotations

from typing import Any

from mathforge.grading.jobs import GradePool, cluster_job, stored_verdict

FLAG_NAMES = ("empty", "exec_error", "exec_timeout", "grade_timeout", "extraction_failed")



def compute_metrics(records: list[dict], *, ks: list[int], seed: int = 0, pool: GradePool | None = None,
                    timeout: float = 3.0) -> dict:
    """Per benchmark, as fractions (the unit of every mathforge JSON): accuracy of the first sample
    with its Wilson 95% CI, mean sample accuracy, maj@k and unbiased pass@k for every k, flag counts
    and rates, breakdowns by level and type (same first-sample column), verdict counts with grader
    timeouts apart from wrong answers, token counts and generation throughput; plus the unweighted
    average. Key names are those of `mathforge grade`'s summary (`summarize_matrix`)."""
    from mathforge.grading import breakdown
    from mathforge.grading.metrics import summarize_matrix

    grouped: dict[str, dict[Any, list[dict]]] = {}
    for r in records:
        grouped.setdefault(r["dataset"], {}).setdefault(r["idx"], []).append(r)
    pool = pool or GradePool(1)
    result: dict[str, Any] = {"unit": "fraction", "benchmarks": {}}
    for name, by_problem in grouped.items():
        rows = [sorted(v, key=lambda r: r["sample_id"]) for v in by_problem.values()]
        n = min(len(row) for row in rows)
        answers = [[r["extracted"] for r in row] for row in rows]
        correct = [[bool(r["correct"]) for r in row][:n] for row in rows]
        timed_out = [[stored_verdict(r) == "timeout" for r in row][:n] for row in rows]
        first = [row[0] for row in rows]
        labels = (pool.map_fn(cluster_job, [{"answers": a[:n], "opts": row[0].get("grading_opts", {}),
                                             "profile": row[0].get("profile", "default"),
                                             "question": row[0].get("question"), "timeout": timeout}
                                            for a, row in zip(answers, rows, strict=True)])
                  if n > 1 else [[0 if a[0] else None] for a in answers])
        summary = summarize_matrix(correct, labels, seed=seed, ks=ks, timed_out=timed_out)
        samples = [r for row in rows for r in row]
        gen_s = sum(r["timing"]["generate_s"] for r in samples)
        toks = sum(r["tokens"]["generated"] for r in samples)
        result["benchmarks"][name] = {
            "n_problems": len(rows), "n_samples": len(samples), "n": n,
            "accuracy": summary["accuracy"], "ci95_wilson": summary["ci95_wilson"],
            "sample_accuracy": summary["sample_accuracy"],
            "verdicts": summary["verdicts"], "sample_verdicts": summary["sample_verdicts"],
            "maj_at_k": {str(k): v for k, v in summary["maj_at_k"].items()},
            "pass_at_k": {str(k): v for k, v in summary["pass_at_k"].items()},
            "flags": {f: {"count": sum(bool(r["flags"].get(f)) for r in samples),
                          "rate": sum(bool(r["flags"].get(f)) for r in samples) / len(samples)}
                      for f in (*FLAG_NAMES, "call_limit")},
            "by_level": _breakdown_table(breakdown(first, "meta.level")),
            "by_type": _breakdown_table(breakdown(first, "meta.type")),
            "tokens_generated": toks, "mean_generated_tokens": round(toks / len(samples), 1),
            "generate_seconds": round(gen_s, 3), "tokens_per_second": round(toks / gen_s, 2) if gen_s else 0.0,
        }
    accs = [m["accuracy"] for m in result["benchmarks"].values()]
    result["average_accuracy"] = sum(accs) / len(accs) if accs else None
    return result


def _breakdown_table(table: dict) -> dict:
    """breakdown() output as {str(key): {n, correct, accuracy}}; no table when nobody has the field."""
    if list(table) == [None]:
        return {}
    return {str(k): {"n": v["n"], "correct": v["correct"], "accuracy": v["accuracy"]} for k, v in table.items()}
