"""S7 deduplication (docs/methods/synthesis.md §d.9): exact after normalisation, MinHash LSH against the pairwise pass."""

from __future__ import annotations

import random

import pytest

from mathforge.synth.dedup import DedupConfig, deduplicate, normalize, pairwise_near_duplicates, shingles


def test_normalize_and_shingles():
    assert normalize("  What IS 2+2?\n\tAnswer_me! ") == "what is 2 2 answer me"
    assert shingles("a b c", 5) == [b"a b c"]
    assert shingles("a b c d e f", 5) == [b"a b c d e", b"b c d e f"]


def test_exact_duplicates_keep_the_first():
    recs = [{"id": "a", "problem": "What is 2 + 2?"}, {"id": "b", "problem": "what is 2+2"},
            {"id": "c", "problem": "What is 3 + 3?"}]
    kept, removed, counts = deduplicate(recs, DedupConfig(near=False))
    assert [r["id"] for r in kept] == ["a", "c"] and removed[0]["duplicate_of"] == "a"
    assert counts == {"input": 3, "removed_exact": 1, "removed_near": 0, "kept": 2}


def _corpus(n_base=60, seed=0):
    """Base texts of 60 random words, plus copies with the last word changed (Jaccard 0.96 with
    their base) and copies with half the words changed (~0.2)."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    texts = []
    for _ in range(n_base):
        words = [rng.choice(vocab) for _ in range(60)]
        texts.append(" ".join(words))
        near = list(words)
        near[-1] = "changed"
        texts.append(" ".join(near))
        far = [w if k % 2 else rng.choice(vocab) for k, w in enumerate(words)]
        texts.append(" ".join(far))
    return texts


def test_minhash_lsh_agrees_with_the_pairwise_pass():
    texts = _corpus()
    recs = [{"id": f"r{i}", "problem": t} for i, t in enumerate(texts)]
    kept, removed, counts = deduplicate(recs)
    assert [int(r["id"][1:]) for r in kept] == pairwise_near_duplicates(texts)
    assert counts["removed_near"] == 60 and all(r["reason"].startswith("near") for r in removed)
    assert removed[0]["duplicate_of"] == "r0"


def test_bad_field_and_threshold():
    with pytest.raises(ValueError, match="record #1: field 'problem'"):
        deduplicate([{"problem": "x"}, {"question": "y"}])
    with pytest.raises(ValueError, match="threshold"):
        DedupConfig(threshold=0)
