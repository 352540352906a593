"""Grading bench: mathforge's `is_equivalent` against Math-Verify on labelled corpora.

It compares mathforge with the grader other projects trust. Both graders see the same pairs in one
process: mathforge as `is_equivalent(pred=..., gold=..., profile=...)`, Math-Verify as
`verify(parse(gold), parse(pred))` with each side wrapped in `$...$` unless it already contains
math delimiters or is a sentence.

The corpora (`grading_corpora.py`, `bench/data/README.md`) each say where their labels come from:

- `classes`: ~540 hand-written cases in the classes of issue 7 (the grader's dev set).
- `real`: ~680 real outputs of published models, labelled by hand and reported apart for GSM8K
  (GPT-3, ToRA) and MATH level 5 (38 chat models, via ZeroEval). They are graded as the source
  extracted the answer, and end to end from the response text. mathforge's end-to-end path
  is `extract_answer(response, style="auto")`; Math-Verify's is `parse(response)`.
- `synthetic`: ~33k rewrites of GSM8K and MATH golds, labelled by construction. This measures
  consistency, not correctness.

For each grader and corpus the bench prints agreement, false positives (wrong answers accepted)
and false negatives (right answers rejected). Speed is measured on `mixed`, a stated mix of
numerals, LaTeX numbers and symbolic answers. The graders are timed in alternating rounds, so a
load change on a shared machine hits both. mathforge is timed with its memo and without it
(caches cleared before every pair). The last line printed is one JSON object with every figure.

    python bench/grading.py [--corpus all|classes|real|synthetic|mixed] [--show-misses]
                            [--profile default] [--limit N] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import grading_corpora as corpora  # noqa: E402

from mathforge.grading import equivalence, extract_answer, is_equivalent, worker  # noqa: E402

_TEXT_MACRO = re.compile(r"\\(?:text|mbox|textbf|textnormal|mathrm)\{[^}]*\}")
_DELIMITED = ("$", "\\(", "\\[")
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}\s+[a-zA-Z]{2,}\s+[a-zA-Z]{2,}")


def _wrap(s: str) -> str:
    """An answer as Math-Verify reads it best: in `$...$`, unless it already has math delimiters
    or is a sentence (then Math-Verify extracts from it as from a response)."""
    if any(d in s.replace("\\$", "") for d in _DELIMITED) or _PROSE.search(_TEXT_MACRO.sub("", s)):
        return s
    return f"${s}$"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(version unknown)"


def mathforge_verdict(case: corpora.Case, profile: str, end_to_end: bool = False) -> bool:
    pred = extract_answer(case.response or "", style="auto") if end_to_end else case.pred
    if pred is None:
        return False
    return is_equivalent(pred=pred, gold=case.gold, profile=profile, question=case.question)


def math_verify_verdict(case: corpora.Case, end_to_end: bool = False) -> bool:
    from math_verify import parse, verify

    text = case.response if end_to_end else case.pred
    if text is None:
        return False
    try:
        return bool(verify(parse(_wrap(case.gold)), parse(text if end_to_end else _wrap(text))))
    except Exception:  # noqa: BLE001 -- a Math-Verify crash is its rejection, as in its own metric
        return False


def score(cases: list[corpora.Case], verdicts: list[bool]) -> dict:
    """Agreement with the labels, false positives and false negatives (counts and rates)."""
    pos = sum(c.expected for c in cases)
    fp = sum(v and not c.expected for c, v in zip(cases, verdicts, strict=True))
    fn = sum(c.expected and not v for c, v in zip(cases, verdicts, strict=True))
    return {"n": len(cases), "positives": pos, "agreement": round(1 - (fp + fn) / max(1, len(cases)), 4),
            "false_positives": fp, "false_negatives": fn,
            "fp_rate": round(fp / max(1, len(cases) - pos), 4), "fn_rate": round(fn / max(1, pos), 4)}


def run_labelled(name: str, labels: str, cases: list[corpora.Case], profile: str, *,
                 end_to_end: bool = False, show_misses: bool = False, by_group: bool = False) -> dict:
    """Both graders on one labelled corpus; prints a block and returns its figures."""
    mf = [mathforge_verdict(c, profile, end_to_end) for c in cases]
    mv = [math_verify_verdict(c, end_to_end) for c in cases]
    out = {"labels": labels, "mathforge": score(cases, mf), "math_verify": score(cases, mv)}
    pos = out["mathforge"]["positives"]
    print(f"\ncorpus {name}: {len(cases)} pairs ({pos} equivalent, {len(cases) - pos} wrong)")
    print(f"  labels: {labels}")
    for grader in ("mathforge", "math_verify"):
        s = out[grader]
        print(f"  {grader:12s} agreement {s['agreement']:.4f}   false positives {s['false_positives']:4d}"
              f" / {len(cases) - pos:<4d}  false negatives {s['false_negatives']:4d} / {pos}")
    if by_group:
        print(f"  {'class':16s} {'rows':>5s} {'mathforge misses (fp/fn)':>26s} {'math_verify misses (fp/fn)':>28s}")
        for group in sorted({c.group for c in cases}):
            idx = [k for k, c in enumerate(cases) if c.group == group]

            def misses(vs: list[bool], idx: list[int] = idx) -> str:
                fp = sum(vs[k] and not cases[k].expected for k in idx)
                fn = sum(cases[k].expected and not vs[k] for k in idx)
                return f"{fp + fn} ({fp}/{fn})"
            print(f"  {group:16s} {len(idx):5d} {misses(mf):>26s} {misses(mv):>28s}")
    if show_misses:
        wrong = [(c, v) for c, v in zip(cases, mf, strict=True) if v != c.expected]
        print(f"  mathforge ({profile}) disagrees with the label on {len(wrong)} pairs:")
        for c, v in wrong:
            kind = "FALSE POSITIVE" if v else "false negative"
            shown = c.response[-160:] if end_to_end else c.pred
            print(f"    {kind:14s} [{c.group}] gold={c.gold!r} pred={shown!r}"
                  + (f" question={c.question!r}" if c.question else "") + (f"  # {c.note}" if c.note else ""))
    return out


GRADERS = ("mathforge", "mathforge_no_memo", "math_verify")


def timed_rounds(cases: list[corpora.Case], profile: str, rounds: int = 4) -> tuple[dict, dict]:
    """Verdicts and seconds of the three graders, timed in alternating rounds over chunks of
    `cases` so that a change of machine load hits all three. `mathforge_no_memo` clears every
    mathforge cache before each pair; `mathforge` clears them once per chunk."""
    verdicts: dict[str, list[bool]] = {g: [] for g in GRADERS}
    seconds: Counter = Counter()
    size = max(1, -(-len(cases) // rounds))
    for start in range(0, len(cases), size):
        chunk = cases[start:start + size]
        t0 = time.perf_counter()
        for c in chunk:
            equivalence.clear_caches()
            verdicts["mathforge_no_memo"].append(mathforge_verdict(c, profile))
        seconds["mathforge_no_memo"] += time.perf_counter() - t0
        equivalence.clear_caches()
        t0 = time.perf_counter()
        verdicts["mathforge"] += [mathforge_verdict(c, profile) for c in chunk]
        seconds["mathforge"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        verdicts["math_verify"] += [math_verify_verdict(c) for c in chunk]
        seconds["math_verify"] += time.perf_counter() - t0
    return verdicts, dict(seconds)


def run_synthetic(cases: list[corpora.Case], profile: str, show_errors: int) -> dict:
    """The synthetic rewrites: agreement and throughput, as the bench has always reported them."""
    n_pos = sum(c.expected for c in cases)
    print(f"\ncorpus synthetic: {len(cases)} pairs ({n_pos} equivalent, {len(cases) - n_pos} wrong)")
    print(f"  labels: {corpora.SYNTHETIC_LABELS}")
    figures: dict = {"pairs": len(cases), "positives": n_pos}
    verdicts, seconds = timed_rounds(cases, profile)
    for name in GRADERS:
        s = score(cases, verdicts[name])
        rate = len(cases) / seconds[name]
        print(f"  {name:17s} agreement {s['agreement']:.4f}  false positives {s['false_positives']}"
              f"  false negatives {s['false_negatives']}  {rate:,.0f} pairs/s ({seconds[name]:.2f} s)")
        figures[name] = {"agreement": s["agreement"], "true_positive_rate": round(1 - s["fn_rate"], 4),
                         "false_positive_rate": s["fp_rate"], "false_positives": s["false_positives"],
                         "false_negatives": s["false_negatives"], "pairs_per_s": round(rate, 1),
                         "seconds": round(seconds[name], 3)}
    if show_errors:
        for c in [c for c, v in zip(cases, verdicts["mathforge"], strict=True) if v != c.expected][:show_errors]:
            print(f"    MISS truth={c.expected} gold={c.gold!r} pred={c.pred!r}")
    figures["speed_ratio"] = round(figures["mathforge"]["pairs_per_s"] / figures["math_verify"]["pairs_per_s"], 1)
    figures["speed_ratio_no_memo"] = round(figures["mathforge_no_memo"]["pairs_per_s"]
                                           / figures["math_verify"]["pairs_per_s"], 1)
    figures["agreement_delta"] = round(figures["mathforge"]["agreement"] - figures["math_verify"]["agreement"], 4)
    return figures


def run_mixed(cases: list[corpora.Case], parts: list[tuple[str, int]], profile: str) -> dict:
    """Throughput of both graders on the mixed corpus, timed in alternating rounds."""
    kinds = Counter(corpora.gold_kind(c.gold) for c in cases)
    print(f"\ncorpus mixed (speed): {len(cases)} pairs")
    for label, n in parts:
        print(f"  {n:6d}  {label}")
    print("  by gold kind: " + ", ".join(f"{k} {kinds[k]} ({kinds[k] / len(cases):.0%})"
                                         for k in ("numeral", "latex_number", "symbolic")))
    _, seconds = timed_rounds(cases, profile)
    rates = {k: len(cases) / v for k, v in seconds.items()}
    for k in ("mathforge_no_memo", "mathforge", "math_verify"):
        print(f"  {k:17s} {rates[k]:9,.0f} pairs/s ({seconds[k]:.2f} s)")
    out = {"pairs": len(cases), "recipe": dict(parts), "gold_kinds": dict(kinds),
           **{f"{k}_pairs_per_s": round(v, 1) for k, v in rates.items()},
           "speedup": round(rates["mathforge_no_memo"] / rates["math_verify"], 1),
           "speedup_memo": round(rates["mathforge"] / rates["math_verify"], 1)}
    print(f"  speed ratio mathforge / math_verify: {out['speedup']:.1f}x without memo, "
          f"{out['speedup_memo']:.1f}x with memo")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=("all", "classes", "real", "synthetic", "mixed"), default="all")
    ap.add_argument("--show-misses", action="store_true",
                    help="list every pair of the labelled corpora where mathforge disagrees with the label")
    ap.add_argument("--profile", default="default", help="mathforge grading profile (default: default)")
    ap.add_argument("--limit", type=int, default=None, help="synthetic: use only N gold answers (quick run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show-errors", type=int, default=0, help="synthetic: print N pairs mathforge got wrong")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    worker.get_pool().warm()                 # worker start-up is not charged to any corpus
    figures: dict = {"profile": args.profile, "grader_version": equivalence.GRADER_VERSION}
    print(f"mathforge {equivalence.GRADER_VERSION}, profile {args.profile!r}; Math-Verify "
          f"{_version('math-verify')}")

    def want(name: str) -> bool:
        return args.corpus in ("all", name)

    classes = corpora.load_classes()
    real = corpora.load_real()
    synthetic = corpora.synthetic_cases(args.limit, args.seed) if args.corpus in ("all", "synthetic", "mixed") else []
    if want("mixed"):                        # first: no pair of it has been graded in this process yet
        mixed, parts = corpora.mixed_cases(synthetic, classes, real, args.seed)
        m = run_mixed(mixed, parts, args.profile)
        figures["mixed"] = m
        figures.update(mixed_pairs=m["pairs"], mixed_speedup=m["speedup"], mixed_speedup_memo=m["speedup_memo"])
    if want("classes"):
        c = run_labelled("classes", corpora.CLASSES_LABELS, classes, args.profile,
                         show_misses=args.show_misses, by_group=True)
        figures["classes"] = c
        figures.update(classes_agreement=c["mathforge"]["agreement"], classes_fp=c["mathforge"]["false_positives"],
                       classes_fn=c["mathforge"]["false_negatives"],
                       classes_math_verify_agreement=c["math_verify"]["agreement"])
    if want("real"):
        for bench_name, labels in corpora.REAL_LABELS.items():
            part = [c for c in real if c.benchmark == bench_name]
            r = run_labelled(f"real {bench_name} (answers as the source extracted them)", labels, part,
                             args.profile, show_misses=args.show_misses)
            e = run_labelled(f"real {bench_name} end-to-end (extraction from the response, then equivalence)",
                             labels, part, args.profile, end_to_end=True, show_misses=args.show_misses)
            figures[f"real_{bench_name}"], figures[f"real_{bench_name}_e2e"] = r, e
            for key, fig in ((f"real_{bench_name}", r), (f"real_{bench_name}_e2e", e)):
                figures.update({f"{key}_agreement": fig["mathforge"]["agreement"],
                                f"{key}_fp": fig["mathforge"]["false_positives"],
                                f"{key}_fn": fig["mathforge"]["false_negatives"],
                                f"{key}_math_verify_agreement": fig["math_verify"]["agreement"]})
        both = [figures[f"real_{b}"]["mathforge"] for b in corpora.REAL_LABELS]
        n = sum(f["n"] for f in both)
        figures.update(real_fp=sum(f["false_positives"] for f in both),
                       real_fn=sum(f["false_negatives"] for f in both),
                       real_agreement=round(1 - sum(f["false_positives"] + f["false_negatives"] for f in both) / n, 4))
    if want("synthetic"):
        figures.update(run_synthetic(synthetic, args.profile, args.show_errors))
    figures["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(f"\nwall time {figures['wall_s']:.1f} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
