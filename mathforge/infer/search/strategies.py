"""Inference-time search strategies behind one interface (docs/methods/tsmc.md §e.9): plain sampling (maj@N,
pass@N), best-of-N and weighted majority vote by the value model's final score (an outcome reward
model through V_EOS), step-level beam search with the value model as the step scorer, and TSMC
(Feng et al. 2025; `tsmc.py`).

All strategies run on `StepGenerator`, so with the same seed `sample`, `bon` and `wvote` see exactly
the same N samples per problem, and every strategy reports its cost the same way: tokens generated,
tokens the value model read, wall time. Final answers are chosen over grader-equivalence classes
(`mathforge.grading.is_equivalent`), never raw strings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from mathforge.infer.search.tsmc import FINAL_RULES, TSMCConfig, final_weights, run_tsmc
from mathforge.infer.stepwise import StepConfig, StepGenerator
from mathforge.infer.types import SamplingParams

# TSMC scores and resamples the groups at a boundary once all live groups are, or 8 decoding
# steps after the first one was: fewer, larger value-model calls, and particles of a slow group do not
# hold up the others for long. Measured best of (0, 0.5, 1) x (0, 2, 4, 8) on bench/search.py's
# two workloads. It changes when work is done, never the result (groups do not interact).
MIN_READY, PATIENCE = 1.0, 8
STRATEGIES = ("sample", "bon", "wvote", "beam", "tsmc")
NEEDS_VALUE = {"bon", "wvote", "beam", "tsmc"}


@dataclass(frozen=True)
class SearchConfig:
    """`n` samples (particles) per problem; `m` the TSMC group size or the beam expansion factor."""

    strategy: str = "sample"
    n: int = 4
    m: int = 4
    stop_steps: int = 5
    beta: float = 1.0
    resampler: str = "ordered_stratified"
    ess_threshold: float = 1.0
    final: str = "weighted_vote"
    delimiter: str = "\n\n"
    answer_header: str = "# Answer"
    warmup: int = 0
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"SearchConfig.strategy {self.strategy!r} unknown; known: {', '.join(STRATEGIES)}")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"SearchConfig.n must be an int >= 1, got {self.n!r}")
        if self.strategy in ("tsmc", "beam") and (self.n % self.m or self.m < 1):
            raise ValueError(f"SearchConfig: n={self.n} is not a multiple of m={self.m} "
                             f"({'group size' if self.strategy == 'tsmc' else 'beam expansion'})")
        if self.final not in FINAL_RULES:
            raise ValueError(f"SearchConfig.final {self.final!r} unknown; known: {', '.join(FINAL_RULES)}")
        if self.strategy == "tsmc":
            self.tsmc()  # validates the TSMC fields
        self.steps()

    def tsmc(self) -> TSMCConfig:
        return TSMCConfig(n=self.n, m=self.m, stop_steps=self.stop_steps, beta=self.beta, resampler=self.resampler,
                          ess_threshold=self.ess_threshold, final=self.final, seed=self.seed)

    def steps(self) -> StepConfig:
        return StepConfig(delimiter=self.delimiter, answer_header=self.answer_header, warmup=self.warmup)


@dataclass
class SearchResult:
    """One problem: its samples (particles) and the strategy's answer, with the cost spent on it."""

    samples: list[dict[str, Any]]
    answer: str | None
    chosen: int | None  # index of the sample whose answer was chosen (earliest of the winning class)
    cost: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


def answer_of(text: str, marker: str | None) -> str | None:
    """The final answer: the text after the last `marker` (e.g. `# Answer\\n\\n`), else `extract_answer`."""
    if marker:
        if marker not in text:
            return None
        return text.rsplit(marker, 1)[1].strip() or None
    from mathforge.grading import extract_answer

    return extract_answer(text)


def vote(answers: list[str | None], weights: list[float], equivalent=None) -> tuple[int | None, list[float]]:
    """Weighted vote over grader-equivalence classes. Returns (index of the earliest sample of the
    winning class, per-sample class score). Ties: larger class, then earliest sample. A class of
    zero total weight never wins over one with weight."""
    if equivalent is None:
        from mathforge.grading import is_equivalent

        def equivalent(a, b):
            return a == b or is_equivalent(pred=a, gold=b)
    reps: list[int] = []  # earliest member of each class
    cls: list[int | None] = []
    for i, a in enumerate(answers):
        if a is None:
            cls.append(None)
            continue
        for c, r in enumerate(reps):
            if equivalent(a, answers[r]):
                cls.append(c)
                break
        else:
            cls.append(len(reps))
            reps.append(i)
    score = [0.0] * len(reps)
    count = [0] * len(reps)
    for c, w in zip(cls, weights, strict=True):
        if c is not None:
            score[c] += w
            count[c] += 1
    if not reps:
        return None, [0.0] * len(answers)
    best = max(range(len(reps)), key=lambda c: (score[c], count[c], -reps[c]))
    return reps[best], [score[c] if c is not None else 0.0 for c in cls]


class Searcher:
    """Runs one strategy for a batch of problems with a generator and (for all but `sample`) a value model."""

    def __init__(self, model, tokenizer, cfg: SearchConfig, *, value_model=None, params: SamplingParams,
                 answer_marker: str | None = "# Answer\n\n", reencode_values: bool = False,
                 min_ready: float = MIN_READY) -> None:
        if cfg.strategy in NEEDS_VALUE and value_model is None:
            raise ValueError(f"strategy {cfg.strategy!r} needs a value model (--value-model PATH)")
        self.cfg, self.marker, self.reencode, self.min_ready = cfg, answer_marker, reencode_values, min_ready
        value_model = value_model if cfg.strategy in NEEDS_VALUE else None  # plain sampling reads no values
        self.sg = StepGenerator(model, tokenizer, value_model=value_model, params=params, steps=cfg.steps())

    def run(self, prompts: list[list[int]], keys: list[Any] | None = None) -> list[SearchResult]:
        t0 = time.perf_counter()
        keys = [tuple(p) for p in prompts] if keys is None else list(keys)
        state = self.sg.start(prompts, self.cfg.n, keys=keys)
        run = {"tsmc": self._tsmc, "beam": self._beam}.get(self.cfg.strategy, self._sample)
        results = run(state, len(prompts), keys)
        wall = time.perf_counter() - t0
        total = sum(len(r.samples) for r in results)
        for res in results:  # batch cost, shared out by samples
            share = len(res.samples) / total
            res.cost = {"generated_tokens": state.generated_tokens * share, "value_tokens": state.value_tokens * share,
                        "value_s": state.value_seconds * share,
                        "wall_s": wall * share, **res.cost}
        return results

    # ------------------------------------------------------------------------------------------------
    def _sample_record(self, state, i: int, **extra) -> dict[str, Any]:
        r = state.rows[i]
        text = self.sg.text(state, i)
        return {"text": text, "answer": answer_of(text, self.marker) if r.finish == "eos" else None,
                "n_tokens": len(r.tokens), "finish": "stop" if r.finish == "eos" else "length",
                "steps": len(r.boundaries) + 1, "logprob": sum(r.logprobs), "proposal_logprob": sum(r.proposal),
                **extra}

    def _final_values(self, state, rows: list[int]) -> dict[int, float]:
        done = [i for i in rows if state.rows[i].finish == "eos"]
        if not done or self.sg.value is None:
            return {}
        h = self.sg.score(state, done, reencode=self.reencode)
        return dict(zip(done, torch.sigmoid(h).tolist(), strict=True))

    def _sample(self, state, n_problems: int, keys) -> list[SearchResult]:
        self.sg.extend(state, allow_boundary=[False] * len(state.rows))  # straight to EOS or budget
        values = self._final_values(state, list(range(len(state.rows))))
        out = []
        n = self.cfg.n
        for p in range(n_problems):
            rows = list(range(p * n, (p + 1) * n))
            samples = [self._sample_record(state, i, value=values.get(i)) for i in rows]
            answers = [s["answer"] for s in samples]
            if self.cfg.strategy == "bon":
                scored = [j for j, s in enumerate(samples) if s["value"] is not None and s["answer"] is not None]
                chosen = max(scored, key=lambda j: (samples[j]["value"], -j)) if scored else None
            else:
                weights = [s["value"] or 0.0 for s in samples] if self.cfg.strategy == "wvote" else [1.0] * n
                chosen, _ = vote(answers, weights)
            out.append(SearchResult(samples, answers[chosen] if chosen is not None else None, chosen, {}))
        return out

    def _tsmc(self, state, n_problems: int, keys) -> list[SearchResult]:
        cfg = self.cfg.tsmc()
        backend = _Backend(self.sg, state, self.reencode, self.min_ready)
        groups = run_tsmc(backend, n_problems, cfg, keys)
        out = []
        for p in range(n_problems):
            mine = [g for g in groups if g.problem == p]
            samples, weights = [], []
            for g in mine:
                trunc = [state.rows[i].finish != "eos" for i in g.rows]
                w = final_weights(g, trunc, cfg.final)
                for j, (i, part) in enumerate(zip(g.rows, g.particles, strict=True)):
                    samples.append(self._sample_record(
                        state, i, group_id=g.group, particle_id=j, weights=part.weights + ([0.0] if trunc[j] else []),
                        values=part.values + ([0.0] if trunc[j] else []), vote_weight=w[j], lineage=part.lineage,
                        rounds=g.rounds, value=part.values[-1] if part.values else None))
                weights += w
            answers = [s["answer"] for s in samples]
            if cfg.final == "best_value":
                scored = [j for j, s in enumerate(samples) if s["answer"] is not None and s["finish"] == "stop"]
                chosen = max(scored, key=lambda j: (samples[j]["value"] or 0.0, -j)) if scored else None
            else:
                chosen, _ = vote(answers, weights)
            extra = {"groups": [{"group_id": g.group, "rounds": g.rounds, "resamplings": g.resamplings,
                                 "log_z": g.log_z, "ancestors": g.ancestors,
                                 "all_truncated": all(state.rows[i].finish == "length" for i in g.rows)}
                                for g in mine]}
            out.append(SearchResult(samples, answers[chosen] if chosen is not None else None, chosen, {}, extra))
        return out

    def _beam(self, state, n_problems: int, keys) -> list[SearchResult]:
        """Keep the n/m best rows by value after each step; each is copied m times and extended."""
        n, m = self.cfg.n, self.cfg.m
        width = n // m
        score = [0.0] * len(state.rows)
        for _ in range(10_000):
            moved = self.sg.extend(state)
            live = [i for i in moved if state.rows[i].finish != "length"]
            if live:
                for i, h in zip(live, self.sg.score(state, live, reencode=self.reencode).tolist(), strict=True):
                    score[i] = h
            for i in moved:
                if state.rows[i].finish == "length":
                    score[i] = -math.inf
            if all(r.finish is not None for r in state.rows):
                break
            indices = []
            for p in range(n_problems):
                rows = list(range(p * n, (p + 1) * n))
                # distinct prefixes only: copies of one beam would otherwise crowd the others out
                seen, best = set(), []
                for i in sorted(rows, key=lambda i: -score[i]):
                    sig = tuple(state.rows[i].tokens)
                    if sig not in seen:
                        seen.add(sig)
                        best.append(i)
                best = (best * m)[:width]
                indices += [b for b in best for _ in range(m)]
            self.sg.select(state, indices, keys=[r.key for r in state.rows])
            score = [score[i] for i in indices]
        out = []
        for p in range(n_problems):
            rows = list(range(p * n, (p + 1) * n))
            samples = [self._sample_record(state, i, value=1 / (1 + math.exp(-score[i])) if score[i] > -math.inf
                                           else None) for i in rows]
            done = [j for j, s in enumerate(samples) if s["answer"] is not None]
            chosen = max(done, key=lambda j: (samples[j]["value"] or 0.0, -j)) if done else None
            out.append(SearchResult(samples, samples[chosen]["answer"] if chosen is not None else None, chosen, {}))
        return out


class _Backend:
    """The TSMC backend protocol over a `StepGenerator` state."""

    def __init__(self, sg: StepGenerator, state, reencode: bool, min_ready: float) -> None:
        self.sg, self.state, self.reencode, self.min_ready = sg, state, reencode, min_ready

    @property
    def rows(self):
        return self.state.rows

    def begin(self, rows):
        self.sg.begin(self.state, rows)

    def extend(self, allow, groups):
        return self.sg.extend(self.state, allow_boundary=allow, groups=groups, min_ready=self.min_ready, patience=PATIENCE)

    def moved(self, row) -> bool:
        return self.state.rows[row].new_tokens > 0

    def score(self, rows):
        return self.sg.score(self.state, rows, reencode=self.reencode)

    def select(self, indices, keys):
        self.sg.select(self.state, indices, keys=keys)
