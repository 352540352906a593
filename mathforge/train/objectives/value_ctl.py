"""Contrastive twist learning (CTL; Zhao et al. 2024, "Probabilistic Inference in Language Models via
Twisted Sequential Monte Carlo"), the value loss of TSMC (Feng et al. 2025; docs/methods/tsmc.md §e.7).

Per problem with K samples and correct set C (|C| >= 1), ℓ_{i,t} = logsigmoid(h at the t-th step
end of sample i) (the final score for t past its last step, or excluded with
`value.short_samples="exclude"`):

    L_problem = Σ_t [ logsumexp_i ℓ_{i,t} − (1/|C|) Σ_{i∈C} ℓ_{i,t} ]

The exact two-pass form [library]: pass 1 (`prepare_step`, no gradient, same parameters, run by the
loop before the step's micro-batches) computes ŵ_{i,t} = softmax_i ℓ_{i,t}; pass 2 (`loss`)
back-propagates the per-sample surrogate Σ_t (ŵ_{i,t} − 1[i∈C]/|C|)·ℓ_{i,t}, whose sum over a
problem has the gradient of L_problem, however the samples are split into micro-batches. Each
sample carries normaliser 1/K of its problem, so the loop's division gives the mean over problems.
Problems without a correct sample are skipped and counted (`ctl_skipped`).
"""

from __future__ import annotations

from typing import Any

from mathforge.train.objectives._value import build_model, collate, evaluate, load_data

__all__ = ["build_model", "collate", "evaluate", "load_data", "loss", "prepare_step"]


def _valid(batch: dict[str, Any], cfg: Any):
    """[S, T] which (sample, step) terms exist: t < T_max of the problem (and t < T_i with 'exclude')."""
    import torch

    t = torch.arange(batch["step_pos"].shape[1], device=batch["step_pos"].device)[None, :]  # [1, T]
    limit = batch["n_steps"] if cfg.value.short_samples == "exclude" else batch["t_max"]
    return t < limit[:, None]  # [S, T]


def prepare_step(model: Any, micro_batches: list[dict[str, Any]], ctx: Any) -> dict[str, float]:
    """Pass 1: ŵ over each problem's samples (across all micro-batches), written into the batches."""
    import torch

    from mathforge.train.value_batches import step_logits, value_logits

    cfg = ctx.cfg
    with torch.no_grad():
        ells = [step_logits(torch.nn.functional.logsigmoid(value_logits(model, b)), b) for b in micro_batches]  # [S, T]
    problems = torch.cat([b["problem"] for b in micro_batches])  # [S_all]
    ell = torch.cat([torch.nn.functional.pad(e, (0, max(x.shape[1] for x in ells) - e.shape[1])) for e in ells])
    valid = torch.cat([torch.nn.functional.pad(_valid(b, cfg), (0, ell.shape[1] - b["step_pos"].shape[1]))
                       for b in micro_batches])  # [S_all, T]
    correct = torch.cat([b["correct"] for b in micro_batches]).bool()
    coef = torch.zeros_like(ell)  # [S_all, T]
    norm = torch.zeros(len(problems), device=ell.device)
    losses, skipped = [], 0
    for p in problems.unique().tolist():
        rows = problems == p  # [S_all]
        c = correct & rows
        if not bool(c.any()):
            skipped += 1
            continue
        v = valid[rows]  # [K, T]
        masked = ell[rows].masked_fill(~v, float("-inf"))
        w = torch.softmax(masked, dim=0).nan_to_num(0.0)  # [K, T] ŵ over samples, per step
        target = c[rows].float()[:, None] / c.sum() * v  # [K, T]
        scale = 1.0 / float(v.any(0).sum()) if cfg.value.divide_by_steps else 1.0
        coef[rows] = (w - target) * v * scale
        norm[rows] = 1.0 / int(rows.sum())
        steps = v.any(0)
        lse = torch.logsumexp(masked[:, steps], 0)  # [T']
        pos_mean = (ell[rows][:, steps] * target[:, steps]).sum(0)  # [T']
        losses.append(float((lse - pos_mean).sum()) * scale)
    start = 0
    for b, e in zip(micro_batches, ells, strict=True):
        n = e.shape[0]
        b["ctl_coef"] = coef[start : start + n, : e.shape[1]]
        b["ctl_norm"] = norm[start : start + n]
        start += n
    return {"ctl_loss": sum(losses) / len(losses) if losses else 0.0, "ctl_skipped": skipped,
            "ctl_problems": len(losses)}


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    """Pass 2: the per-sample surrogate, summed; normaliser Σ 1/K (problems in the batch)."""
    import torch

    from mathforge.train.value_batches import step_logits, value_logits

    if "ctl_coef" not in batch:
        raise RuntimeError("value_ctl: the loop did not run prepare_step (pass 1) for this batch")
    ell = step_logits(torch.nn.functional.logsigmoid(value_logits(model, batch)), batch)  # [S, T]
    loss_sum = (batch["ctl_coef"] * ell).sum()
    return loss_sum, batch["ctl_norm"].sum().detach(), {"samples": int(ell.shape[0])}
