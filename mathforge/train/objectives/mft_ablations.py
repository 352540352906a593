"""The noise types Masked Thought was compared with (Chen et al. 2024, "Masked Thought", Table 3;
docs/methods/mft.md §a.8), as `mft.noise` kinds that act on the input embeddings instead of the ids.

The positions are drawn exactly as for token noise (Bernoulli(p) over the response, §a.2); the
input keeps the clean tokens and only their embeddings change:

- `embed_dropout`: dropout with rate q (scaled by 1/(1-q), as `nn.Dropout`) on the embedding
  entries of the `embed_scope` tokens: all real tokens, the response, or the corrupted positions;
- `neftune` (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction Finetuning"):
  `U(-1, 1) * alpha / sqrt(L * d)` added to the same scopes, L the length of the example (its
  prompt and response, without padding), d the hidden size;
- `scheduled_sampling` (Bengio et al. 2015): a no-gradient pass on the clean input predicts every
  token from its clean prefix; each corrupted position gets the prediction: its argmax, a sample
  at temperature tau, or the soft mixture `w * E[emb | prediction] + (1 - w) * emb(original)`.

All randomness comes from the micro-batch's seeded generator, so a resumed run draws the same
noise, and only training calls this: evaluation and generation see the plain model.
"""

from __future__ import annotations

from typing import Any

EMBED_NOISE = ("embed_dropout", "neftune", "scheduled_sampling")


def _scope(batch: dict[str, Any], masked: Any, scope: str) -> Any:
    """Which tokens the embedding noise touches: [B, T] bool."""
    if scope == "corrupted":
        return masked
    if scope == "response":
        return batch["labels"].ne(-100)
    return batch["seq_ids"].ge(0)  # every real token, prompt included


def example_lengths(seq_ids: Any) -> Any:
    """Length of the example each token belongs to: [B, T] (0 on padding, seq_id -1)."""
    import torch

    idx = seq_ids + 1  # [B, T]; padding -> 0
    counts = torch.zeros(seq_ids.shape[0], int(idx.max()) + 1, dtype=torch.long, device=seq_ids.device)
    counts.scatter_add_(1, idx, torch.ones_like(idx))  # [B, examples + 1]
    counts[:, 0] = 0
    return counts.gather(1, idx)  # [B, T]


def neftune_delta(shape: Any, lengths: Any, where: Any, alpha: float, generator: Any) -> Any:
    """NEFTune noise [B, T, d]: U(-1, 1) * alpha / sqrt(L * d) at `where`, zero elsewhere."""
    import torch

    d = shape[-1]
    u = torch.rand(shape, generator=generator, device=where.device) * 2 - 1  # [B, T, d]
    mag = alpha / torch.sqrt(lengths.clamp(min=1).double() * d)  # [B, T]
    return u * (mag.float() * where)[..., None]


def inputs_embeds(model: Any, batch: dict[str, Any], masked: Any, cfg: Any, generator: Any) -> tuple[Any, dict]:
    """The noised input embeddings [B, T, H] of the clean ids for `cfg.noise` (one of EMBED_NOISE),
    and metrics. `masked` [B, T] marks the corrupted positions; `batch` is the clean batch."""
    import torch

    inner = getattr(model, "module", model)  # DDP wraps the HF model
    emb = inner.get_input_embeddings()
    ids = batch["input_ids"]  # [B, T]
    embeds = emb(ids)  # [B, T, H]
    where = _scope(batch, masked, cfg.embed_scope)  # [B, T]
    if cfg.noise == "embed_dropout":
        if not model.training or cfg.dropout_q == 0:
            return embeds, {}
        keep = torch.rand(embeds.shape, generator=generator, device=ids.device) >= cfg.dropout_q  # [B, T, H]
        dropped = embeds * keep / (1 - cfg.dropout_q)
        return torch.where(where[..., None], dropped, embeds), {}
    if cfg.noise == "neftune":
        lengths = example_lengths(batch["seq_ids"])  # [B, T]
        return embeds + neftune_delta(embeds.shape, lengths, where, cfg.neftune_alpha, generator).to(embeds.dtype), {}
    return _scheduled_sampling(inner, emb, batch, masked, embeds, cfg, generator)


def _scheduled_sampling(inner: Any, emb: Any, batch: dict[str, Any], masked: Any, embeds: Any, cfg: Any,
                        generator: Any) -> tuple[Any, dict]:
    import torch

    from mathforge.train.objectives import sft

    ids = batch["input_ids"]  # [B, T]
    with torch.no_grad():
        logits = sft.forward_logits(inner, batch).float()  # [B, T, V]; position t-1 predicts token t
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # [B, T, V]: row t predicts token t
        if cfg.sampling == "sample":
            probs = torch.softmax(logits / cfg.sampling_temperature, dim=-1).view(-1, logits.shape[-1])  # [B*T, V]
            pred_ids = torch.multinomial(probs, 1, generator=generator).view(ids.shape)  # [B, T]
        else:
            pred_ids = logits.argmax(-1)  # [B, T]
    metrics = {"predicted_wrong": int((pred_ids.ne(ids) & masked).sum())}
    if cfg.sampling == "soft":  # the expected embedding under the prediction (gradient reaches the table)
        probs = torch.softmax(logits, dim=-1).to(emb.weight.dtype)  # [B, T, V]
        predicted = probs @ emb.weight[: probs.shape[-1]]  # [B, T, H]
        mixed = cfg.soft_weight * predicted + (1 - cfg.soft_weight) * embeds  # [B, T, H]
        return torch.where(masked[..., None], mixed, embeds), metrics
    return emb(torch.where(masked, pred_ids, ids)), metrics
