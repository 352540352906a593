"""Twisted sequential Monte Carlo over reasoning steps (Feng et al. 2025, "Step-by-Step Reasoning for
Math Problems via Twisted Sequential Monte Carlo"; docs/methods/tsmc.md §e.8).

The N particles of a problem form N/M independent groups of M. Each round every unfinished particle
runs to its next step boundary (or EOS, or its budget); the value model scores it and its incremental
log-weight is `log w = β·log V_t − β·log V_{t−1}` (truncated particles get log V = −1e6, particles
finished in an earlier round weight exactly 1); then each group is resampled (ordered stratified by
default) unless all its particles are finished. After `stop_steps` rounds boundaries stop firing, so
particles run to the end and are weighted once more without resampling. Rounds are per group
[library]: a group is scored and resampled as soon as its own particles are all at a boundary, while
the other groups keep decoding (the paper's batch-synchronous rounds have the same distribution,
since groups do not interact, but make every group wait for the slowest particle of the batch).

Option [library]: `ess_threshold κ < 1` resamples a group only when its effective sample size falls
below κ·M, keeping a running log-weight per particle that is reset after each resampling.

The algorithm is written against a small backend protocol (`rows`, `begin`, `extend`, `moved`,
`score`, `select`),
implemented for HF models by `StepBackend` over `StepGenerator`; tests drive it with toy backends.
Token sampling and resampling draw from separate streams (§e.11 pitfall 7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from mathforge.infer.sampling import row_seed
from mathforge.infer.search.resample import RESAMPLERS, ess, resample

LOG_ZERO = -1e6  # log V of a truncated particle (§e.8.1)
FINAL_RULES = ("weighted_vote", "majority", "best_value", "value_weighted_vote")


@dataclass(frozen=True)
class TSMCConfig:
    n: int = 16
    m: int = 4
    stop_steps: int = 5
    beta: float = 1.0
    resampler: str = "ordered_stratified"
    ess_threshold: float = 1.0
    final: str = "weighted_vote"
    seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("n", "m", "stop_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"TSMCConfig.{name} must be an int >= 1, got {v!r}")
        if self.n % self.m:
            raise ValueError(f"TSMCConfig: n={self.n} particles is not a multiple of the group size m={self.m}")
        if not self.beta > 0:
            raise ValueError(f"TSMCConfig.beta must be > 0, got {self.beta!r}")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"TSMCConfig.resampler {self.resampler!r} unknown; known: {', '.join(RESAMPLERS)}")
        if not 0.0 < self.ess_threshold <= 1.0:
            raise ValueError(f"TSMCConfig.ess_threshold must be in (0, 1], got {self.ess_threshold!r}")
        if self.final not in FINAL_RULES:
            raise ValueError(f"TSMCConfig.final {self.final!r} unknown; known: {', '.join(FINAL_RULES)}")


@dataclass
class Particle:
    """TSMC bookkeeping of one particle; copied with it on resampling."""

    log_v_prev: float = 0.0
    log_w: float = 0.0  # running log-weight since the last resampling of its group
    weights: list[float] = field(default_factory=list)  # exp(log w) per round
    values: list[float] = field(default_factory=list)  # V^β per round
    lineage: list[int] = field(default_factory=list)  # slot of its ancestor at each resampling

    def copy(self) -> Particle:
        return Particle(self.log_v_prev, self.log_w, list(self.weights), list(self.values), list(self.lineage))


@dataclass
class GroupResult:
    problem: int
    group: int
    rows: list[int]  # backend rows of its particles, in particle order
    particles: list[Particle]
    rounds: int
    resamplings: int
    log_z: float  # SMC estimate of log E_p[ψ_T] (an unbiased estimate of E_p[ψ_T] in Z-space)
    ancestors: list[list[int]]  # ancestor indices at each resampling (for the genealogy plot)


def run_tsmc(backend: Any, n_problems: int, cfg: TSMCConfig, problem_keys: list[Any] | None = None) -> list[GroupResult]:
    """Run TSMC on a backend already started with `cfg.n` rows per problem (problem-major order)."""
    rows = backend.rows
    if len(rows) != n_problems * cfg.n:
        raise ValueError(f"backend has {len(rows)} rows, expected {n_problems} problems x n={cfg.n}")
    keys = problem_keys if problem_keys is not None else list(range(n_problems))
    n_groups = cfg.n // cfg.m
    groups = [list(range(p * cfg.n + g * cfg.m, p * cfg.n + (g + 1) * cfg.m))
              for p in range(n_problems) for g in range(n_groups)]
    state = [Particle() for _ in rows]
    rounds = [0] * len(groups)
    resamplings = [0] * len(groups)
    log_z = [0.0] * len(groups)
    ancestry: list[list[list[int]]] = [[] for _ in groups]
    stopped = [False] * len(groups)
    gens = [torch.Generator().manual_seed(row_seed(cfg.seed, ("resample", keys[gi // n_groups]), gi % n_groups))
            for gi in range(len(groups))]
    backend.begin(list(range(len(rows))))
    while not all(stopped):
        live = [gi for gi in range(len(groups)) if not stopped[gi]]
        allow = [False] * len(rows)
        for gi in live:
            for r in groups[gi]:
                allow[r] = rounds[gi] < cfg.stop_steps
        # Groups do not interact, so each runs its own rounds: a call returns when some groups
        # have all their particles at a boundary (or finished); the others keep decoding.
        ready = [live[k] for k in backend.extend(allow, [groups[gi] for gi in live])]
        moved = {r for gi in ready for r in groups[gi] if backend.moved(r)}
        scored = [r for r in sorted(moved) if backend.rows[r].finish != "length"]
        h = backend.score(scored) if scored else torch.zeros(0)
        log_v_new = dict(zip(scored, (cfg.beta * torch.nn.functional.logsigmoid(h.float())).tolist(), strict=True))
        indices, new_keys = list(range(len(rows))), [r.key for r in backend.rows]
        for gi in ready:
            members = groups[gi]
            rounds[gi] += 1
            if not any(r in moved for r in members):
                stopped[gi] = True
                continue
            for r in members:
                p = state[r]
                if r in moved:
                    log_v = log_v_new.get(r, LOG_ZERO)  # truncated this round: weight ~0
                else:
                    log_v = p.log_v_prev  # finished earlier: incremental weight exactly 1
                lw = log_v - p.log_v_prev
                p.log_v_prev, p.log_w = log_v, p.log_w + lw
                p.weights.append(math.exp(lw))
                p.values.append(math.exp(log_v))
            if all(backend.rows[r].finish is not None for r in members):
                stopped[gi] = True  # the final weights are not resampled
                continue
            lw = torch.tensor([state[r].log_w for r in members], dtype=torch.float64)  # [M]
            if cfg.ess_threshold < 1.0 and ess(lw) >= cfg.ess_threshold * len(members):
                continue  # option: weights are still balanced enough, keep accumulating them
            log_z[gi] += float(torch.logsumexp(lw, 0)) - math.log(len(members))
            anc = resample(torch.softmax(lw, 0), gens[gi], cfg.resampler)
            ancestry[gi].append(anc)
            resamplings[gi] += 1
            copies = []
            for j, a in enumerate(anc):
                indices[members[j]] = members[a]
                c = state[members[a]].copy()
                c.lineage.append(a)
                c.log_w = 0.0
                copies.append(c)
            for r, c in zip(members, copies, strict=True):
                state[r] = c
        if indices != list(range(len(rows))):
            backend.select(indices, new_keys)  # each slot keeps its own random stream
        backend.begin([r for gi in ready if not stopped[gi] for r in groups[gi]])
    out = []
    for gi, members in enumerate(groups):
        lw = torch.tensor([state[r].log_w for r in members], dtype=torch.float64)  # weights since the last resampling
        log_z[gi] += float(torch.logsumexp(lw, 0)) - math.log(len(members))
        out.append(GroupResult(problem=gi // n_groups, group=gi % n_groups, rows=members,
                               particles=[state[r] for r in members], rounds=rounds[gi],
                               resamplings=resamplings[gi], log_z=log_z[gi], ancestors=ancestry[gi]))
    return out


def final_weights(group: GroupResult, truncated: list[bool], rule: str = "weighted_vote") -> list[float]:
    """Each particle's share of its group's vote (§e.8.5): the running weight normalised over the
    group (the last incremental weight under the Default of resampling every round); truncated
    particles get 0. A group whose weights are all 0 contributes nothing."""
    if rule == "majority":
        w = [0.0 if t else 1.0 for t in truncated]
    elif rule == "value_weighted_vote":
        w = [0.0 if t else (p.values[-1] if p.values else 0.0) for p, t in zip(group.particles, truncated, strict=True)]
    else:
        w = [0.0 if t else math.exp(p.log_w) for p, t in zip(group.particles, truncated, strict=True)]
    total = sum(w)
    return [x / total if total > 0 else 0.0 for x in w]
