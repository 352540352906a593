"""S8 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.10, [library]; the original's
"test-set filter" was never released): decontamination against every benchmark mathforge ships.

Reference set: the question, and the gold solution where one exists, of every record of every
shipped benchmark split except `train` (`mathforge.data.load_benchmark`), plus any user evaluation
files. Texts are normalised (lower-case, punctuation stripped, whitespace collapsed; `dedup.normalize`).
A record is flagged when

- its text (and optionally its solution) shares any word `n`-gram (13; option 10) with a reference
  text (reference questions shorter than `n` words take part only through the exact rule);
- its normalised text equals a normalised reference question (exact);
- (option `near`, on by default) MinHash estimates a Jaccard similarity of at least `near_threshold`
  with a reference question over word `near_shingle`-grams. §d.10 names S7's test (5-grams, 0.8);
  the default here is word 2-grams at 0.6 [library], because most benchmark questions are short and
  one changed word removes five of their few 5-grams: on bench/decontam.py's planted corpus (1,000
  lightly edited questions, 5,000 GSM8K-train negatives) recall on edited questions rose from 0.82
  to 0.935 at unchanged precision (0.996, where the remaining "false" positives are real overlaps of
  GSM8K train with MAWPS and ASDiv). `near_shingle=5, near_threshold=0.8` restores §d.10.

The multiplication sets and the implicit-CoT GSM8K lines (`data/multiplication`, `data/gsm8k_icot`)
are not under `data/benchmarks/` and are left out by default (the latter's `valid` split is drawn from
GSM8K *train*); name them in `benchmarks` to include them. Multiplication problems are random digit
strings: they are matched exactly only, since 13-grams of single digits would flag any long list of
numbers. Each flagged record names every
benchmark, split and problem id it matches and by which rule; the report counts removals per benchmark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from mathforge.synth.dedup import datasketch, normalize, shingles

EXACT_ONLY_PREFIXES = ("multiplication-",)


@dataclass
class Reference:
    benchmark: str
    split: str
    id: str
    question: str
    solution: str | None = None


@dataclass
class DecontamConfig:
    field: str = "problem"
    solution_field: str = ""
    n: int = 13
    near: bool = True
    near_threshold: float = 0.6
    near_shingle: int = 2
    num_perm: int = 128
    benchmarks: list[str] = dc_field(default_factory=list)  # empty: every shipped benchmark

    def __post_init__(self) -> None:
        if self.n < 3:
            raise ValueError(f"decontaminate.n must be >= 3, got {self.n}")
        if not 0.0 < self.near_threshold <= 1.0:
            raise ValueError("decontaminate.near_threshold must lie in (0, 1]")


def shipped_references(benchmarks: list[str] | None = None) -> list[Reference]:
    """Question and solution of every record of every file under `data/benchmarks/` (train files
    excepted; §d.10), or of the named benchmarks."""
    from mathforge.data.benchmarks import BENCHMARKS, benchmark_splits, list_benchmarks, load_benchmark

    names = benchmarks or [b for b in list_benchmarks()
                           if any(f.startswith("benchmarks/") for f in BENCHMARKS[b].files.values())]
    refs = []
    for name in names:
        for split in benchmark_splits(name):
            if split == "train":
                continue
            refs += [Reference(name, split, str(p.id), p.question, p.solution) for p in load_benchmark(name, split)]
    return refs


def file_references(path: str, question_field: str, solution_field: str = "", name: str = "") -> list[Reference]:
    """A user evaluation set (JSONL) as references; a missing field names file and line."""
    from mathforge.synth.io import read_jsonl

    required = (question_field, solution_field) if solution_field else (question_field,)
    return [Reference(name or path, "user", str(rec.get("id", lineno)), rec[question_field],
                      rec[solution_field] if solution_field else None)
            for lineno, rec in read_jsonl(path, required=required)]


def _grams(words: list[str], n: int):
    return (hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1))


class ReferenceIndex:
    """n-gram hashes, normalised questions and (optionally) MinHash LSH of the reference questions."""

    def __init__(self, refs: list[Reference], cfg: DecontamConfig):
        self.refs, self.cfg = refs, cfg
        self.grams: dict[int, int | list[int]] = {}
        self.exact: dict[str, list[int]] = {}
        for r, ref in enumerate(refs):
            qnorm = normalize(ref.question)
            self.exact.setdefault(qnorm, []).append(r)
            if ref.benchmark.startswith(EXACT_ONLY_PREFIXES):
                continue
            for text in (qnorm, normalize(ref.solution) if ref.solution else ""):
                for h in _grams(text.split(), cfg.n):
                    have = self.grams.get(h)
                    if have is None:
                        self.grams[h] = r
                    elif isinstance(have, int):
                        if have != r:
                            self.grams[h] = [have, r]
                    elif have[-1] != r:
                        have.append(r)
        self.lsh = self.hashes = None
        if cfg.near:
            MinHash, MinHashLSH = datasketch().MinHash, datasketch().MinHashLSH  # noqa: N806
            self.lsh = MinHashLSH(threshold=cfg.near_threshold, num_perm=cfg.num_perm)
            norms = [normalize(ref.question) for ref in refs]
            self.hashes = MinHash.bulk([shingles(t, cfg.near_shingle) for t in norms], num_perm=cfg.num_perm, seed=1)
            self.empty_hash = MinHash(num_perm=cfg.num_perm, seed=1)  # copied per query: no permutation rebuild
            with self.lsh.insertion_session() as session:
                for r, mh in enumerate(self.hashes):
                    session.insert(r, mh, check_duplication=False)

    def matches(self, text: str) -> dict[int, str]:
        """Reference index -> first rule that matched (`exact`, `{n}-gram`, `near`)."""
        norm = normalize(text)
        found = dict.fromkeys(self.exact.get(norm, ()), "exact")
        for h in _grams(norm.split(), self.cfg.n):
            hit = self.grams.get(h)
            for r in (hit,) if isinstance(hit, int) else hit or ():
                found.setdefault(r, f"{self.cfg.n}-gram")
        if self.lsh is not None and norm:
            mh = self.empty_hash.copy()
            mh.update_batch(shingles(norm, self.cfg.near_shingle))
            for r in self.lsh.query(mh):
                if r not in found and self.hashes[r].jaccard(mh) >= self.cfg.near_threshold:
                    found[r] = "near"
        return found


def decontaminate(records: list[dict], cfg: DecontamConfig | None = None, refs: list[Reference] | None = None,
                  index: ReferenceIndex | None = None) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(clean, flagged with `contamination` = [{benchmark, split, id, rule}], report)."""
    cfg = cfg or DecontamConfig()
    if index is None:
        index = ReferenceIndex(refs if refs is not None else shipped_references(cfg.benchmarks or None), cfg)
    clean, flagged = [], []
    per_bench: Counter = Counter()
    per_rule: Counter = Counter()
    for i, rec in enumerate(records):
        found = {}
        for name in (cfg.field, cfg.solution_field):
            if not name:
                continue
            value = rec.get(name)
            if not isinstance(value, str):
                where = rec.get("_where", f"record #{i}")
                raise ValueError(f"{where}: field {name!r} missing or not a string")
            for r, rule in index.matches(value).items():
                found.setdefault(r, rule)
        if not found:
            clean.append(rec)
            continue
        hits = [{"benchmark": index.refs[r].benchmark, "split": index.refs[r].split, "id": index.refs[r].id,
                 "rule": rule} for r, rule in sorted(found.items())]
        flagged.append(rec | {"contamination": hits})
        for b in {(h["benchmark"], h["split"]) for h in hits}:
            per_bench[f"{b[0]}/{b[1]}"] += 1
        per_rule.update({h["rule"] for h in hits})
    report = {"input": len(records), "flagged": len(flagged), "clean": len(clean), "references": len(index.refs),
              "per_benchmark": dict(sorted(per_bench.items())), "per_rule": dict(sorted(per_rule.items()))}
    return clean, flagged, report
