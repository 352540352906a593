"""Masked Thought fine-tuning (Chen et al. 2024, "Masked Thought: Simply Masking Partial Reasoning
Steps Can Improve Mathematical Reasoning Learning of Language Models"; docs/methods/mft.md §a).

Each time a micro-batch is used, every response token (label != -100, EOS included) of the *input*
is replaced, independently with probability p, by noise: the `<mask>` token, a uniform random id
from the base vocabulary, the pad id, or a mix. Labels stay the clean tokens, so the loss is the
SFT loss on a corrupted context (§a.2). `p` follows a schedule of §a.3, counted in optimizer steps
(or, as one original implementation did, in micro-batches of one process) from the step context
the loop hands in (never counted in a collator, pitfall a.11-1). The `<mask>` embedding starts as
the mean of the other rows (§a.4). Options: corrupted positions hidden from attention
(`attend_to_noise = false`) and the paper's ablations at the embedding level (§a.8,
`mathforge.train.objectives.mft_ablations`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mathforge.train.objectives import mft_ablations, sft


def mask_ratio(cfg: Any, count: int, total: int, u: float | None = None) -> float:
    """Mask ratio p at `count` of `total`, both in `cfg.schedule_unit`: optimizer steps completed
    (0 on the first step) or micro-batches of this process (1 on the first, as the original
    collator counted). `u` is the uniform draw of `random_per_batch`."""
    p_max, r = cfg.p_max, cfg.warmup_ratio
    total = max(1, total)
    if cfg.schedule == "constant":
        return p_max
    if cfg.schedule == "random_per_batch":  # p = U(0,1) * p_max, redrawn for every batch
        if u is None:
            raise ValueError("mft.schedule='random_per_batch' needs a uniform draw u")
        return u * p_max
    micro = cfg.schedule_unit == "microbatch"
    W = (cfg.warmup_micro_batches or max(1, round(r * total))) if micro else r * total  # warm-up length
    if cfg.schedule == "decreasing":  # 2 p_max (W - s) / W before W, p_max after [reconstructed]
        return 2.0 * p_max * (W - count) / W if count < W else p_max
    if cfg.schedule == "late_start":  # p = 0 before s0, then the linear warm-up
        if count < cfg.late_start:
            return 0.0
        count -= cfg.late_start
        if not micro:  # the step-unit warm-up spans the remaining steps
            total = max(1, total - cfg.late_start)
            W = r * total
    if micro:  # [orig] collator: p_max * s / W before W, p_max after
        return min(p_max, p_max * count / W)
    return min(p_max, p_max * count / (W + 1))  # linear warm-up, [paper] default


def ratio_counter(cfg: Any, ctx: Any) -> tuple[int, int]:
    """(count, total) of the ratio schedule for this micro-batch: optimizer steps, or micro-batches
    seen by this process including this one (`g * A + k + 1` of `G * A`, A = micro-batches per step)."""
    if cfg.schedule_unit == "microbatch":
        a = ctx.micro_per_step
        return ctx.step * a + ctx.micro_index + 1, ctx.total_steps * a
    return ctx.step, ctx.total_steps


def current_ratio(cfg: Any, ctx: Any) -> float:
    """p for the micro-batch of `ctx`. A random ratio is drawn once per optimizer step (shared by its
    micro-batches and processes, like every step-unit ratio) or once per micro-batch of each
    process (`schedule_unit = "microbatch"`), from generators seeded like the masks."""
    import torch

    count, total = ratio_counter(cfg, ctx)
    u = None
    if cfg.schedule == "random_per_batch":
        src = ctx if cfg.schedule_unit == "microbatch" else replace(ctx, micro_index=0, rank=0)
        u = float(torch.rand((), generator=src.generator(salt="mft_ratio")))
    return mask_ratio(cfg, count, total, u)


def corrupt(input_ids: Any, labels: Any, p: float, ctx: Any, generator: Any) -> tuple[Any, Any]:
    """Corrupt response positions of `input_ids` [B, T]; returns (noisy ids [B, T], mask [B, T])."""
    import torch

    cfg = ctx.cfg.mft
    candidates = labels.ne(-100)  # [B, T] response tokens incl. EOS; prompt and pad never
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)  # [B, T]
    masked = candidates & (draw < p) if p < 1.0 else candidates
    if cfg.noise in mft_ablations.EMBED_NOISE:  # the ablations act on embeddings, not on ids
        return input_ids, masked
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


def ignore_noise_mask(batch: dict[str, Any], masked: Any) -> Any:
    """Boolean attention mask [B, 1, T, T] in which no query sees a corrupted key (§a.2 option
    `attend_to_noise = false`), on top of the batch's causal (packed: block-diagonal) structure.
    Position ids are kept, so the other positions get the logits of the sequence with the
    corrupted tokens cut out. A query left with no key at all keeps itself (no NaN softmax row)."""
    import torch

    from mathforge.data.packing import block_causal_mask

    if "seq_ids" not in batch:
        raise ValueError("mft.attend_to_noise=false needs batches from collate_packed/collate_padded (seq_ids)")
    allowed = block_causal_mask(batch["seq_ids"]).to(masked.device)  # [B, 1, T, T]
    allowed = allowed & ~masked[:, None, None, :]  # corrupted keys hidden from every query
    empty = ~allowed.any(dim=-1, keepdim=True)  # [B, 1, T, 1]
    eye = torch.eye(masked.shape[1], dtype=torch.bool, device=masked.device)  # [T, T]
    return allowed | (empty & eye)


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    """SFT loss on the corrupted input against the clean labels."""
    cfg = ctx.cfg.mft
    p = current_ratio(cfg, ctx)
    generator = ctx.generator(batch["input_ids"].device)
    noisy, masked = corrupt(batch["input_ids"], batch["labels"], p, ctx, generator)
    clean = batch
    if not cfg.attend_to_noise:
        batch = {**batch, "attention_mask": ignore_noise_mask(batch, masked)}
    if not cfg.loss_on_corrupted:  # drop targets whose own input token was corrupted
        weights = batch.get("weights")
        base = weights if weights is not None else batch["labels"].ne(-100).float()
        batch = {**batch, "weights": base * (~masked).float()}
    metrics: dict = {}
    if cfg.noise in mft_ablations.EMBED_NOISE:
        embeds, metrics = mft_ablations.inputs_embeds(model, clean, masked, cfg, generator)  # [B, T, H]
        loss_sum, n_tokens, m = sft.loss(model, batch, ctx, inputs_embeds=embeds)
    else:
        loss_sum, n_tokens, m = sft.loss(model, batch, ctx, input_ids=noisy)
    m.update(metrics, mask_ratio=p, masked=int(masked.sum()))
    return loss_sum, n_tokens, m


def prepare(model: Any, tokenizer: Any, cfg: Any) -> None:
    """Make sure `<mask>` exists and set its embedding (input and output) to the mean of the others.

    A tokenizer without `<mask>` gets it added and the model resized (§a.4). Called once on a fresh
    model, before training; a resumed run loads the trained rows instead. Refuses
    `attend_to_noise = false` on an attention backend that takes no mask (flash attention).
    """
    import torch

    attn = getattr(model.config, "_attn_implementation", "sdpa")
    if not cfg.mft.attend_to_noise and attn not in ("sdpa", "eager"):
        raise ValueError(f"mft.attend_to_noise=false needs sdpa or eager attention (a mask), the model uses {attn!r}")
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
