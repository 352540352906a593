"""Deduplication throughput (S7, docs/methods/synthesis.md §d.9): exact and MinHash-LSH near-duplicate removal of
`mathforge.synth.dedup` on 100k problem records, against the plain pairwise pass (exact Jaccard of
word 5-gram sets against every earlier kept record) on a subset, side by side in one process.

Records are built from GSM8K *train* sentences: each is three random sentences (unique problems),
10% are exact copies after case/punctuation changes and 10% near copies (one word changed). The
subset run also reports how far the LSH decisions agree with the pairwise pass. The last line
printed is one JSON object.

    python bench/dedup.py [--n 100000] [--subset 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time


def corpus(n: int, seed: int) -> list[str]:
    from mathforge.data import load_benchmark

    sents = sorted({s.strip() for p in load_benchmark("gsm8k", "train")
                    for s in re.split(r"(?<=[.?!])\s+", p.question) if len(s.split()) >= 4})
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < n:
        r = rng.random()
        if texts and r < 0.1:
            texts.append(rng.choice(texts).upper().replace(".", " ."))
        elif texts and r < 0.2:
            words = rng.choice(texts).split()
            words[rng.randrange(len(words))] = "several"
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.sample(sents, 3)))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from mathforge.synth.dedup import DedupConfig, deduplicate, pairwise_near_duplicates

    texts = corpus(args.n, args.seed)
    recs = [{"id": str(i), "problem": t} for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    _, _, exact = deduplicate(recs, DedupConfig(near=False))
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    kept, _, both = deduplicate(recs)
    t_both = time.perf_counter() - t0
    sub = recs[: args.subset]
    t0 = time.perf_counter()
    ref = pairwise_near_duplicates([r["problem"] for r in sub])
    t_pair = time.perf_counter() - t0
    t0 = time.perf_counter()
    lsh_kept, _, _ = deduplicate(sub)
    t_sub = time.perf_counter() - t0
    lsh_set, ref_set = {int(r["id"]) for r in lsh_kept}, set(ref)
    result = {
        "bench": "dedup", "n": args.n, "subset": args.subset,
        "exact_seconds": round(t_exact, 2), "exact_records_per_s": round(args.n / t_exact),
        "exact_plus_near_seconds": round(t_both, 2), "exact_plus_near_records_per_s": round(args.n / t_both),
        "removed_exact": both["removed_exact"], "removed_near": both["removed_near"], "kept": both["kept"],
        "pairwise_subset_seconds": round(t_pair, 2), "pairwise_records_per_s": round(args.subset / t_pair, 1),
        "lsh_subset_seconds": round(t_sub, 3), "lsh_subset_records_per_s": round(args.subset / t_sub),
        "subset_decisions_agreeing": round(1 - len(lsh_set ^ ref_set) / args.subset, 4),
    }
    print(f"exact {result['exact_records_per_s']:,} rec/s | exact+near {result['exact_plus_near_records_per_s']:,} "
          f"rec/s ({t_both:.1f} s for {args.n:,}) | pairwise {result['pairwise_records_per_s']} rec/s on "
          f"{args.subset} | agreement {result['subset_decisions_agreeing']:.2%}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
