"""S7 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.9, [library]): deduplication.

1. Exact: the problem text is normalised (lower-case, punctuation dropped, whitespace collapsed) and
   hashed; the first occurrence is kept.
2. Near-duplicate: MinHash (Broder 1997) with 128 permutations over word 5-grams of the normalised
   problem, indexed by locality-sensitive hashing (`datasketch.MinHashLSH`). Records are visited in
   order; a record whose estimated Jaccard similarity to an earlier *kept* record is at least
   `threshold` (default 0.8) is dropped. LSH only proposes candidates; the MinHash estimate decides.

Every dropped record is kept in the removed list naming the record it duplicates. `normalize` and
`shingles` are shared with decontamination (S8).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case, punctuation removed (replaced by a space), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().replace("_", " ")
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def shingles(norm: str, n: int = 5) -> list[bytes]:
    """Word n-grams of a normalised text; a text of fewer than n words is one shingle."""
    words = norm.split()
    if len(words) <= n:
        return [" ".join(words).encode()]
    return [" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)]


@dataclass
class DedupConfig:
    """`threshold`: estimated Jaccard similarity of word `shingle`-grams at or above which a later
    record is a near-duplicate (0.8); `num_perm`: MinHash permutations (128); `near`: run step 2."""

    field: str = "problem"
    threshold: float = 0.8
    num_perm: int = 128
    shingle: int = 5
    near: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"dedup.threshold must lie in (0, 1], got {self.threshold}")
        if self.num_perm < 16 or self.shingle < 1:
            raise ValueError("dedup.num_perm must be >= 16 and dedup.shingle >= 1")


def datasketch() -> Any:
    """The `datasketch` module, or an ImportError that says how to install it."""
    try:
        import datasketch as ds
    except ImportError as exc:
        raise ImportError("near-duplicate detection needs datasketch: pip install -e '.[synth]'") from exc
    return ds


def minhashes(norms: list[str], cfg: DedupConfig) -> list[Any]:
    return datasketch().MinHash.bulk([shingles(t, cfg.shingle) for t in norms], num_perm=cfg.num_perm, seed=cfg.seed)


def _text(rec: dict, field: str, i: int) -> str:
    value = rec.get(field)
    if not isinstance(value, str):
        raise ValueError(f"record #{i}: field {field!r} missing or not a string")
    return value


def deduplicate(records: list[dict], cfg: DedupConfig | None = None) -> tuple[list[dict], list[dict], dict]:
    """(kept, removed with `reason` and `duplicate_of`, counts)."""
    cfg = cfg or DedupConfig()
    norms = [normalize(_text(r, cfg.field, i)) for i, r in enumerate(records)]
    first: dict[bytes, int] = {}
    kept_idx, removed = [], []
    for i, norm in enumerate(norms):
        h = hashlib.sha1(norm.encode()).digest()
        if h in first:
            removed.append(records[i] | {"reason": "exact", "duplicate_of": _key(records, first[h])})
        else:
            first[h] = i
            kept_idx.append(i)
    n_exact = len(removed)
    if cfg.near and kept_idx:
        hashes = minhashes([norms[i] for i in kept_idx], cfg)
        lsh = datasketch().MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        survivors = []
        for j, (i, mh) in enumerate(zip(kept_idx, hashes, strict=True)):
            match = next((c for c in lsh.query(mh) if hashes[c].jaccard(mh) >= cfg.threshold), None)
            if match is None:
                lsh.insert(j, mh, check_duplication=False)
                survivors.append(i)
            else:
                removed.append(records[i] | {"reason": f"near (jaccard {hashes[match].jaccard(mh):.2f})",
                                             "duplicate_of": _key(records, kept_idx[match])})
        kept_idx = survivors
    counts = {"input": len(records), "removed_exact": n_exact, "removed_near": len(removed) - n_exact,
              "kept": len(kept_idx)}
    return [records[i] for i in kept_idx], removed, counts


def _key(records: list[dict], i: int) -> str:
    rec = records[i]
    return str(rec.get("id", f"#{i}")) + (f"/{rec['sample']}" if "sample" in rec else "")


def pairwise_near_duplicates(texts: list[str], threshold: float = 0.8, shingle: int = 5) -> list[int]:
    """The slow, obvious near-duplicate pass (exact Jaccard of shingle sets against every earlier
    kept text): indices kept. The reference for tests and bench/dedup.py."""
    sets = [set(shingles(normalize(t), shingle)) for t in texts]
    kept: list[int] = []
    for i, s in enumerate(sets):
        if not any(len(s & sets[j]) / len(s | sets[j]) >= threshold for j in kept):
            kept.append(i)
    return kept
