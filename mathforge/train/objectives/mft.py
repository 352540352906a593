"""Masked Thought fine-tuning (Chen et al. 2024, "Masked Thought: Simply Masking Partial Reasoning
Steps Can Improve Mathematical Reasoning Learning of Language Models"; docs/methods/mft.md §a).

Each time a micro-batch is used, every response token (label != -100, EOS included) of the *input*
is replaced, independently with probability p, by noise: the `<mask>` token, a uniform random id
from the base vocabulary, the pad id, or a mix. Labels stay the clean tokens, so the loss is the
SFT loss on a corrupted context (§a.2). `p` follows the linear warm-up of §a.3, counted in
optimizer steps and handed in by the loop (never counted in a collator, pitfall a.11-1). The
`<mask>` embedding starts as the mean of the other rows (§a.4).
"""

from __future__ import annotations

from typing import Any

from mathforge.train.objectives import sft


def mask_ratio(cfg: Any, step: int, total_steps: int) -> float:
    """Mask ratio p for optimizer step `step` (0-based count of completed steps) of `total_steps`."""
    p_max, r, G = cfg.p_max, cfg.warmup_ratio, max(1, total_steps)
    if cfg.schedule == "constant":
        return p_max
    if cfg.schedule == "decreasing":  # 2 p_max (W - s) / W before W, p_max after [reconstructed]
        W = r * G
        return 2.0 * p_max * (W - step) / W if step < W else p_max
    if cfg.schedule == "late_start":  # p = 0 before s0, then the linear warm-up over the rest
        if step < cfg.late_start:
            return 0.0
        step, G = step - cfg.late_start, max(1, G - cfg.late_start)
    return min(p_max, p_max * step / (r * G + 1))  # linear warm-up, [paper] default


def corrupt(input_ids: Any, labels: Any, p: float, ctx: Any, generator: Any) -> tuple[Any, Any]:
    """Corrupt response positions of `input_ids` [B, T]; returns (noisy ids [B, T], mask [B, T])."""
    import torch

    cfg = ctx.cfg.mft
    candidates = labels.ne(-100)  # [B, T] response tokens incl. EOS; prompt and pad never
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)  # [B, T]
    masked = candidates & (draw < p) if p < 1.0 else candidates
    noise = _noise_ids(input_ids, cfg, ctx, generator)  # [B, T]
    return torch.where(masked, noise, input_ids), masked


def _noise_ids(input_ids: Any, cfg: Any, ctx: Any, generator: Any) -> Any:
    import torch

    shape, dev = input_ids.shape, input_ids.device
    if cfg.noise == "pad":
        return torch.full(shape, ctx.pad_id, dtype=input_ids.dtype, device=dev)
    if cfg.noise in ("random", "mixed"):
        pool = torch.arange(ctx.vocab_base, device=dev)
        if cfg.exclude_special_ids and ctx.special_ids:
            pool = pool[~torch.isin(pool, torch.tensor(ctx.special_ids, device=dev))]
        pick = torch.randint(len(pool), shape, generator=generator, device=dev)
        random_ids = pool[pick].to(input_ids.dtype)  # [B, T]
        if cfg.noise == "random":
            return random_ids
    if ctx.mask_id is None:
        raise ValueError("mft noise needs a <mask> token id; the tokenizer has none")
    mask_ids = torch.full(shape, ctx.mask_id, dtype=input_ids.dtype, device=dev)
    if cfg.noise == "mask":
        return mask_ids
    use_random = torch.rand(shape, generator=generator, device=dev) < cfg.mixed_q  # [B, T]
    return torch.where(use_random, random_ids, mask_ids)


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    """SFT loss on the corrupted input against the clean labels."""
    p = mask_ratio(ctx.cfg.mft, ctx.step, ctx.total_steps)
    noisy, masked = corrupt(batch["input_ids"], batch["labels"], p, ctx, ctx.generator(batch["input_ids"].device))
    if not ctx.cfg.mft.loss_on_corrupted:  # drop targets whose own input token was corrupted
        batch = dict(batch)
        weights = batch.get("weights")
        base = weights if weights is not None else batch["labels"].ne(-100).float()
        batch["weights"] = base * (~masked).float()
    loss_sum, n_tokens, metrics = sft.loss(model, batch, ctx, input_ids=noisy)
    metrics.update(mask_ratio=p, masked=int(masked.sum()))
    return loss_sum, n_tokens, metrics


def prepare(model: Any, tokenizer: Any, cfg: Any) -> None:
    """Make sure `<mask>` exists and set its embedding (input and output) to the mean of the others.

    A tokenizer without `<mask>` gets it added and the model resized (§a.4). Called once on a fresh
    model, before training; a resumed run loads the trained rows instead.
    """
    import torch

    if cfg.mft.noise not in ("mask", "mixed"):
        return
    if tokenizer.mask_token_id is None:
        tokenizer.add_special_tokens({"mask_token": "<mask>"})
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    mid = tokenizer.mask_token_id
    with torch.no_grad():
        for emb in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}.values():
            w = emb.weight  # [V, d]
            others = torch.cat([w[:mid], w[mid + 1 : len(tokenizer)]])  # [V-1, d]
            w[mid] = others.mean(dim=0)
