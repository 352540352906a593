"""Supervised fine-tuning: completion-only causal-LM cross-entropy (docs/methods/README.md §0, docs/methods/packing.md §c.7).

Labels are aligned with `input_ids` (HF convention, `-100` = not a target); the logits at t-1
predict the label at t. Per-token `weights` (per-sample weights broadcast over the response by
rendering, 1.0 by default) multiply the token losses and form the normaliser, so a weighted batch
reduces to `sum_i c_i sum_t l_it / sum_i c_i |resp_i|` (docs/methods/sdat.md §b.4).
"""

from __future__ import annotations

from typing import Any


def forward_logits(model: Any, batch: dict[str, Any], input_ids: Any = None, *, inputs_embeds: Any = None) -> Any:
    """Run the model on a packed or padded batch; returns logits [B, T, V]."""
    return forward(model, batch, input_ids, inputs_embeds=inputs_embeds).logits


def forward(model: Any, batch: dict[str, Any], input_ids: Any = None, *, hidden_states: bool = False,
            inputs_embeds: Any = None) -> Any:
    """The model's output on a packed or padded batch (`.logits` [B, T, V]; with `hidden_states`,
    `.hidden_states`: L+1 tensors [B, T, H], the input of block l at index l). `inputs_embeds`
    [B, T, H] replaces the token ids (embedding-level noise)."""
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 4:  # packed rows: the backend's isolating mask (§c.5)
        from mathforge.data.packing import model_inputs

        config = getattr(model, "module", model).config  # DDP wraps the HF model
        kwargs = model_inputs(batch, config._attn_implementation)
    else:
        kwargs = {k: batch[k] for k in ("attention_mask", "position_ids") if batch.get(k) is not None}
    kwargs["input_ids"] = batch["input_ids"] if input_ids is None else input_ids
    if inputs_embeds is not None:
        kwargs["inputs_embeds"] = inputs_embeds
        del kwargs["input_ids"]
    if hidden_states:
        kwargs["output_hidden_states"] = True
    return model(**kwargs)


def token_losses(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Per-token CE of the shifted prediction: returns (losses [B, T-1], target mask [B, T-1])."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1, :].float()  # [B, T-1, V]; fp32 so bf16 autocast keeps exact CE
    shift_labels = labels[:, 1:]  # [B, T-1]
    mask = shift_labels.ne(-100)  # [B, T-1]
    losses = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=-100,
        reduction="none",
    ).view_as(shift_labels)  # [B, T-1], 0 at ignored positions
    return losses, mask


def token_weights(batch: dict[str, Any], mask: Any) -> Any:
    """Per-target weights [B, T-1] (weights of the *predicted* positions), zero off target."""
    weights = batch.get("weights")
    if weights is None:
        return mask.float()
    return weights[:, 1:].float() * mask


def loss(model: Any, batch: dict[str, Any], ctx: Any, input_ids: Any = None, *,
         inputs_embeds: Any = None) -> tuple[Any, Any, dict]:
    """Completion-only CE. `input_ids` (or `inputs_embeds`) let a noising objective feed corrupted inputs."""
    logits = forward_logits(model, batch, input_ids, inputs_embeds=inputs_embeds)  # [B, T, V]
    losses, mask = token_losses(logits, batch["labels"])
    w = token_weights(batch, mask)  # [B, T-1]
    loss_sum = (losses * w).sum()
    n_tokens = w.sum()
    return loss_sum, n_tokens.detach(), {"targets": int(mask.sum())}
