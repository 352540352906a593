"""Sample-difficulty-adaptive SFT (SDAT project report, 2024; docs/methods/sdat.md §b).

Harder examples (by the base model's error rate, bucketed into levels 1..L) count more:
- `upsample` (Default, [orig]): example i is repeated `int(base + factor * d_i)` times (truncated
  toward zero, negative -> 0, per-source overrides), and the repeated set is shuffled by the loop;
- `weight` (Option, [library] §b.4): each example keeps one copy with weight `c_i = base +
  factor * d_i` on its response tokens; the loss is `sum_i c_i sum_t l_it / sum_i c_i |resp_i|`
  (`weight_norm="token"`, the SFT loss with per-token weights) or `sum_i c_i mean_t l_it /
  sum_i c_i` (`weight_norm="sequence"`), both normalised over the whole accumulated batch.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from mathforge.train.objectives import sft


def level_of(err: float, levels: int = 5, formula: str = "code") -> int:
    """Difficulty level of an error rate (§b.2): `code` gives 1..L, `report` gives 0..L."""
    if not 0.0 <= err <= 1.0:
        raise ValueError(f"error rate must lie in [0, 1], got {err}")
    if formula == "report":
        return math.floor(levels * err)
    return 1 if err == 0 else math.floor(levels * err - 1e-6) + 1


def difficulty_value(example: Any, cfg: Any) -> float:
    """d_i of §b.3 for one example: its integer level, or its error rate (`column="err_rate"`)."""
    raw = example.difficulty
    if raw is None:
        raise ValueError(f"example {example.prompt[:40]!r} has no difficulty (needed by objective 'difficulty')")
    if cfg.given == "level":
        if cfg.column == "err_rate":
            raise ValueError("difficulty.column='err_rate' needs difficulty.given='err_rate'")
        return float(raw)
    return float(raw) if cfg.column == "err_rate" else float(level_of(raw, cfg.levels, cfg.level_formula))


def repeat_count(d: float, base: float, factor: float) -> int:
    """count = int(base + factor * d), truncated toward zero; negative counts become 0 (§b.3)."""
    return max(0, int(base + factor * d))


def _override(example: Any, cfg: Any) -> int | None:
    source = example.meta.get("source") if example.meta else None
    return cfg.overrides.get(source) if source is not None else None


def expand(examples: list[Any], cfg: Any) -> list[Any]:
    """Apply the difficulty rule to a training set: repeats (upsample) or per-example weights."""
    dc = cfg.difficulty
    out: list[Any] = []
    for ex in examples:
        fixed = _override(ex, dc)
        if dc.mode == "upsample":
            count = fixed if fixed is not None else repeat_count(difficulty_value(ex, dc), dc.base, dc.factor)
            out.extend([ex] * count)
            continue
        c = float(fixed) if fixed is not None else dc.base + dc.factor * difficulty_value(ex, dc)
        c = float(math.floor(c)) if dc.floor_weights else c
        if c > 0:  # examples with c_i <= 0 are excluded (§b.4)
            out.append(replace(ex, weight=ex.weight * c))
    return out


def epochs(examples: list[Any], cfg: Any) -> float | None:
    """Weighting variant: E = max(1, round(sum_i c_i / N)) epochs (§b.4), so visits match upsampling."""
    dc = cfg.difficulty
    if dc.mode != "weight" or dc.epochs_rule != "visits" or cfg.optim.max_steps or not examples:
        return None
    return float(max(1, round(sum(ex.weight for ex in examples) / len(examples))))


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    """Weighted SFT; `sequence` norm averages within each example before weighting."""
    if ctx.cfg.difficulty.weight_norm == "token":
        return sft.loss(model, batch, ctx)
    import torch

    logits = sft.forward_logits(model, batch)  # [B, T, V]
    losses, mask = sft.token_losses(logits, batch["labels"])  # [B, T-1] each
    weights = sft.token_weights(batch, mask)  # [B, T-1]; c_i on example i's targets
    seq = batch.get("seq_ids")
    seq = seq[:, 1:] if seq is not None else mask.long()  # [B, T-1]; padded rows: one example each
    key = (torch.arange(seq.size(0), device=seq.device)[:, None] * (int(seq.max()) + 1) + seq)[mask]  # [N]
    _, group = torch.unique(key, return_inverse=True)  # [N] example index of each target
    n_groups = int(group.max()) + 1 if group.numel() else 0
    tok_sum = torch.zeros(n_groups, device=losses.device).index_add(0, group, losses[mask])  # [G]
    tok_cnt = torch.zeros(n_groups, device=losses.device).index_add(0, group, torch.ones_like(losses[mask]))
    c = torch.zeros(n_groups, device=losses.device).scatter_reduce(
        0, group, weights[mask], "amax", include_self=False)
    loss_sum = (c * tok_sum / tok_cnt.clamp_min(1)).sum()
    return loss_sum, c.sum().detach(), {"targets": int(mask.sum()), "examples": n_groups}
