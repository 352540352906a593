"""Decontamination (S8, docs/methods/synthesis.md §d.10): records per second of `mathforge.synth.decontam` against
every shipped benchmark, and its recall and precision on a planted corpus, in one process.

The corpus: `--negatives` GSM8K *train* questions (not references; any flag on them counts as a false
positive, so precision is a lower bound), plus `--planted` benchmark questions drawn at random from
the reference set (multiplication excepted) planted verbatim, and as many lightly edited: case
changed, punctuation and spacing perturbed, a prefix added ("Problem: ") and one inner word
replaced. A planted question counts as found only when its flag names its own benchmark and id.
The last line printed is one JSON object.

    python bench/decontam.py [--negatives 5000] [--planted 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time


def light_edit(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) > 2:
        words[rng.randrange(1, len(words) - 1)] = "several"
    text = " ".join(words)
    text = text.lower() if rng.random() < 0.5 else text.upper()
    text = re.sub(r"[?.]\s*$", "", text).replace(",", " ,").replace("  ", " ")
    return "Problem: " + text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--negatives", type=int, default=5000)
    ap.add_argument("--planted", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--near-shingle", type=int, default=2, help="5 with --near-threshold 0.8: the §d.10 rule")
    ap.add_argument("--near-threshold", type=float, default=0.6)
    args = ap.parse_args()
    from mathforge.data import load_benchmark
    from mathforge.synth.decontam import DecontamConfig, ReferenceIndex, decontaminate, shipped_references

    rng = random.Random(args.seed)
    cfg = DecontamConfig(field="problem", n=args.n, near_shingle=args.near_shingle,
                         near_threshold=args.near_threshold)
    t0 = time.perf_counter()
    refs = shipped_references()
    index = ReferenceIndex(refs, cfg)
    t_index = time.perf_counter() - t0
    negatives = [{"problem": p.question, "kind": "negative"}
                 for p in rng.sample(load_benchmark("gsm8k", "train"), args.negatives)]
    pool = [r for r in refs if not r.benchmark.startswith("multiplication-")]
    picks = rng.sample(pool, args.planted)
    planted = [{"problem": r.question, "kind": "verbatim", "src": (r.benchmark, r.id)} for r in picks]
    planted += [{"problem": light_edit(r.question, rng), "kind": "edited", "src": (r.benchmark, r.id)} for r in picks]
    corpus = negatives + planted
    rng.shuffle(corpus)
    t0 = time.perf_counter()
    _, flagged, report = decontaminate(corpus, cfg, index=index)
    t_run = time.perf_counter() - t0
    found = {"verbatim": 0, "edited": 0}
    false_pos, examples = 0, []
    for rec in flagged:
        if rec["kind"] == "negative":
            false_pos += 1
            examples.append({"problem": rec["problem"][:120], "matches": rec["contamination"][:2]})
        elif any((h["benchmark"], h["id"]) == tuple(rec["src"]) for h in rec["contamination"]):
            found[rec["kind"]] += 1
    result = {
        "bench": "decontam", "references": len(refs), "index_seconds": round(t_index, 2),
        "records": len(corpus), "seconds": round(t_run, 2), "records_per_s": round(len(corpus) / t_run),
        "recall_verbatim": round(found["verbatim"] / args.planted, 4),
        "recall_edited": round(found["edited"] / args.planted, 4),
        "precision": round(1 - false_pos / max(1, len(flagged)), 4), "false_positives": false_pos,
        "flagged": len(flagged), "per_rule": report["per_rule"], "n": args.n,
    }
    for ex in examples[:5]:
        print("false positive:", json.dumps(ex))
    print(f"{result['records_per_s']:,} records/s (index of {len(refs):,} references built in {t_index:.1f} s) | "
          f"recall verbatim {result['recall_verbatim']:.3f}, edited {result['recall_edited']:.3f} | "
          f"precision {result['precision']:.4f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
