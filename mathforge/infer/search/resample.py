"""Resampling schemes for sequential Monte Carlo (docs/methods/tsmc.md §e.8.2).

The Default is the ordered stratified resampler of the TSMC release (Feng et al. 2025): sort the
probabilities ascending, draw one uniform in each of M equal strata, invert the cumulative sum. Each
particle then gets floor or ceil of M·q offspring, with expected count exactly M·q. Options
[library]: `multinomial`, `systematic` (one shared uniform), `stratified` (no sorting), `residual`
(Liu & Chen 1998: floor(M·q) copies, the rest multinomial on the remainders).
"""

from __future__ import annotations

import torch

RESAMPLERS = ("ordered_stratified", "stratified", "systematic", "multinomial", "residual")


def _invert(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Smallest j with cdf[j] > u_i for each u_i, clamped to M-1 against rounding. cdf, u: [M]."""
    j = torch.searchsorted(cdf, u, right=True)  # [M]
    return j.clamp(max=cdf.numel() - 1)


def resample(probs: torch.Tensor, gen: torch.Generator, scheme: str = "ordered_stratified") -> list[int]:
    """Ancestor indices (length M) for particle probabilities `probs` [M] (summing to 1)."""
    probs = probs.double().cpu()
    m = probs.numel()
    if scheme == "ordered_stratified":
        order = torch.argsort(probs, stable=True)  # ascending
        u = (torch.arange(m, dtype=torch.float64) + torch.rand(m, generator=gen, dtype=torch.float64)) / m
        return order[_invert(probs[order].cumsum(0), u)].tolist()
    if scheme == "stratified":
        u = (torch.arange(m, dtype=torch.float64) + torch.rand(m, generator=gen, dtype=torch.float64)) / m
        return _invert(probs.cumsum(0), u).tolist()
    if scheme == "systematic":
        u = (torch.arange(m, dtype=torch.float64) + torch.rand(1, generator=gen, dtype=torch.float64)) / m
        return _invert(probs.cumsum(0), u).tolist()
    if scheme == "multinomial":
        return torch.multinomial(probs, m, replacement=True, generator=gen).tolist()
    if scheme == "residual":
        counts = torch.floor(probs * m).long()  # [M]
        rest = m - int(counts.sum())
        out = torch.repeat_interleave(torch.arange(m), counts).tolist()
        if rest:
            remainder = probs * m - counts
            out += torch.multinomial(remainder / remainder.sum(), rest, replacement=True, generator=gen).tolist()
        return out
    raise ValueError(f"unknown resampler {scheme!r}; known: {', '.join(RESAMPLERS)}")


def ess(log_w: torch.Tensor) -> float:
    """Effective sample size (Σw)²/Σw² of log-weights [M]."""
    w = torch.softmax(log_w.double(), 0)
    return float(1.0 / (w * w).sum())
