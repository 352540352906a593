"""Pointwise value regression (docs/methods/tsmc.md §e.7 option; the reward-model training of the codebase TSMC
extends): every masked position k of a sample regresses h_k onto the sample's correctness r,

    L_sample = Σ_k m_k · BCEWithLogits(h_k, r) / (Σ_k m_k + 1e-6)     (or MSE on sigmoid(h_k))

with mask `value.mask` = `every_token` (all response tokens: a Monte-Carlo regression of the value
function), `step_ends` (step-end tokens only) or `orm_last3` (the last 3 response tokens: an outcome
reward model). The batch loss is the mean over samples (normaliser 1 per sample).
"""

from __future__ import annotations

from typing import Any

from mathforge.train.objectives._value import build_model, collate, evaluate, load_data

__all__ = ["build_model", "collate", "evaluate", "load_data", "loss", "position_mask"]


def position_mask(batch: dict[str, Any], kind: str):
    """[S, L] float mask of the positions that carry the loss."""
    import torch

    resp = batch["response_mask"]  # [S, L]
    if kind == "every_token":
        return resp.float()
    if kind == "step_ends":
        m = torch.zeros_like(resp, dtype=torch.float32)
        valid = torch.arange(batch["step_pos"].shape[1], device=resp.device)[None] < batch["n_steps"][:, None]
        return m.scatter_reduce_(1, batch["step_pos"], valid.float(), reduce="amax")  # padding repeats the last end
    if kind == "orm_last3":
        rank = resp.flip(1).cumsum(1).flip(1)  # [S, L] response tokens from here to the end
        return (resp & (rank <= 3)).float()
    raise ValueError(f"value.mask {kind!r} unknown (every_token, step_ends, orm_last3)")


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    import torch
    import torch.nn.functional as F

    from mathforge.train.value_batches import value_logits

    cfg = ctx.cfg.value
    h = value_logits(model, batch)  # [S, L]
    r = batch["correct"].float()[:, None].expand_as(h)  # [S, L]
    m = position_mask(batch, cfg.mask)
    if cfg.loss == "mse":
        per = (torch.sigmoid(h) - r) ** 2
    else:
        per = F.binary_cross_entropy_with_logits(h, r, reduction="none")
    per_sample = (per * m).sum(1) / (m.sum(1) + 1e-6)  # [S]
    return per_sample.sum(), torch.tensor(float(h.shape[0])), {"samples": int(h.shape[0])}
