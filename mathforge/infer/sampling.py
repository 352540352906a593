"""Token sampling shared by the engines: temperature, top-k, nucleus (top-p), per-row random streams.

Each sample row draws from its own `torch.Generator`, seeded from (seed, problem key, particle), so
a sample depends only on its own history, never on the batch it was decoded in or on neighbouring
prompts. Tokens are drawn by inverse-CDF from one uniform per row and token (so a row consumes
exactly one draw per generated token). Besides the raw model log-probability of each token we return
its log-probability under the *proposal* actually sampled from (after temperature, top-k, top-p),
which importance weights need. Nucleus sampling: Holtzman et al. 2020, "The Curious Case of Neural
Text Degeneration".
"""

from __future__ import annotations

import hashlib

import torch


def row_seed(seed: int, problem: object, particle: int) -> int:
    """A 63-bit seed for the random stream of one (seed, problem, particle); `problem` is any key
    whose `repr` identifies the problem (an id string, or the prompt's token ids)."""
    key = f"{seed}/{problem!r}/{particle}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def row_generator(seed: int, problem: object, particle: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(row_seed(seed, problem, particle))


def proposal_probs(logits: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """The distribution sampled from, [A, V]: softmax(logits / T), then top-k, then top-p, renormalised."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # [A, V]
    if 0 < top_k < probs.shape[-1]:
        kth = probs.topk(top_k, dim=-1).values[:, -1:]  # [A, 1]
        probs = probs.masked_fill(probs < kth, 0.0)
    if top_p < 1.0:
        probs = top_p_filter(probs, top_p)
    return probs / probs.sum(-1, keepdim=True)


def sample_rows(logits: torch.Tensor, params, gens: list[torch.Generator]):
    """One token per row from `params` (a SamplingParams); row i draws from `gens[i]`.

    Returns (token [A], raw model log-prob [A], proposal log-prob [A]). Greedy (temperature 0) takes
    the argmax, draws nothing, and its proposal log-prob is 0 (a point mass).
    """
    raw = torch.log_softmax(logits.float(), dim=-1)  # [A, V]
    if params.temperature == 0.0:
        token = logits.argmax(dim=-1)  # [A]
        return token, raw.gather(-1, token[:, None]).squeeze(-1), torch.zeros_like(token, dtype=torch.float32)
    probs = proposal_probs(logits, params.temperature, getattr(params, "top_k", 0), params.top_p)  # [A, V]
    u = torch.cat([torch.rand(1, generator=g, device=g.device) for g in gens]).to(probs.device)  # [A]
    cdf = probs.cumsum(-1)  # [A, V]
    token = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(-1)  # [A]
    token = token.clamp(max=probs.shape[-1] - 1)
    # Rounding in the cumsum could land on a zero-probability token; step back to the last kept one.
    bad = probs.gather(-1, token[:, None]).squeeze(-1) <= 0
    if bool(bad.any()):
        last_kept = (probs > 0).long().cumsum(-1).argmax(-1)  # first index reaching the final count
        token = torch.where(bad, last_kept, token)
    prop = torch.log(probs.gather(-1, token[:, None]).squeeze(-1))  # [A]
    return token, raw.gather(-1, token[:, None]).squeeze(-1), prop


def top_p_filter(probs: torch.Tensor, top_p: float, k: int = 256) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens until their mass reaches top_p (the first always).

    Sorting the whole vocabulary every step is the slow part on large vocabularies; the top k
    suffice whenever they already hold top_p of the mass (checked, else the full sort is used), and
    the result is the same either way. Not renormalised.
    """
    k = min(k, probs.shape[-1])
    vals, idx = probs.topk(k, dim=-1)  # [A, k], descending
    if k < probs.shape[-1] and bool((vals.sum(-1) < top_p).any()):
        vals, idx = probs.sort(dim=-1, descending=True)  # [A, V]
    # Drop a token when the mass before it already reaches top_p.
    vals = vals.masked_fill(vals.cumsum(-1) - vals >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, idx, vals)  # [A, V]
