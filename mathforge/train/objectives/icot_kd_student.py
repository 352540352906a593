"""ICoT-KD stage 2a, the mind-reading student (Deng et al. 2023, "Implicit Chain of Thought Reasoning
via Knowledge Distillation"), docs/methods/icot.md §f.7, as an objective of the one loop.

The frozen explicit-CoT teacher (`icot_kd.teacher`, an HF folder trained with `sft` on the full
`q||cot #### a` layout) is an auxiliary module; so are the per-layer MLPs. Each micro-batch arrives
in the full layout (padded rows, `data.packing = false`): the teacher is run on it and its states
are read at the §f.6 positions (`mathforge.models.icot_kd.teacher_states`), the CoT tokens are
dropped to give the `q|| #### a` rows, and the student runs on those with `MLP_l(z_l)` substituted
at s1 before every block; the loss is the completion CE on `#### a EOS`. The student uses the
teacher's tokenizer (a different vocabulary is an error naming both folders) and must have as many
blocks as the teacher. The teacher is frozen and kept in eval mode; the student model of the
presets has no dropout, as §f.7 prescribes. The loop's greedy accuracy does not substitute, so
recipes of this stage set `eval.n_problems = 0` (the student cannot answer without the teacher).
"""

from __future__ import annotations

from typing import Any

from mathforge.train.objectives import sft


def tokenizer(cfg: Any) -> Any:
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = cfg.icot_kd.teacher
    if not folder or not Path(folder).is_dir():
        raise ValueError(f"icot_kd.teacher={folder!r}: the student needs the teacher's HF folder")
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def setup(data: Any, plan: Any, cfg: Any) -> None:
    from mathforge.train.objectives.icot_si import setup as si_setup

    if cfg.data.packing:
        raise ValueError("icot_kd_student needs data.packing = false (one example a row)")
    si_setup(data, plan, cfg)  # every response must be 'cot #### answer'


def aux_modules(model: Any, tok: Any, cfg: Any, state: Any) -> dict[str, Any]:
    from mathforge.models.icot_kd import decoder_layers, layer_mlps
    from mathforge.models.loading import load_model

    teacher, teacher_tok = load_model(cfg.icot_kd.teacher)
    if teacher_tok.get_vocab() != tok.get_vocab():
        raise ValueError(f"student and teacher tokenizers differ (teacher {cfg.icot_kd.teacher})")
    if model.config.vocab_size != teacher.config.vocab_size:
        raise ValueError(f"student vocabulary ({model.config.vocab_size}, model.init={cfg.model.init!r}) differs from "
                         f"the teacher's ({teacher.config.vocab_size}, {cfg.icot_kd.teacher}): different tokenizers")
    n_t, n_s = len(decoder_layers(teacher)), len(decoder_layers(model))
    if n_t != n_s:
        raise ValueError(f"teacher has {n_t} blocks, the student {n_s}: §f.7 reads one teacher state per block")
    teacher.eval().requires_grad_(False)
    mlps = layer_mlps(model.config.hidden_size, n_s, in_dim=teacher.config.hidden_size)
    return {"teacher": teacher, "mlps": mlps}


def separators(batch: dict[str, Any]) -> tuple[Any, Any]:
    """Per-row (s1 [B], s2 [B]) from `segments`: the last prompt token, the first answer token."""
    import torch

    from mathforge.data.packing import SEGMENTS

    seg = batch["segments"]  # [B, T]
    idx = torch.arange(seg.shape[1], device=seg.device).expand_as(seg)  # [B, T]
    s1 = torch.where(seg == SEGMENTS["prompt"], idx, -1).max(1).values  # [B]
    s2 = torch.where(seg == SEGMENTS["answer"], idx, seg.shape[1]).min(1).values  # [B]
    return s1, s2


def drop_cot(batch: dict[str, Any], pad_id: int) -> dict[str, Any]:
    """The no-CoT rows of a padded full-layout batch (CoT tokens removed, right padded again)."""
    import torch

    from mathforge.data.packing import SEGMENTS

    keep = (batch["segments"] != SEGMENTS["cot"]) & (batch["seq_ids"] >= 0)  # [B, T]
    width = int(keep.sum(1).max())
    out = {k: torch.full((keep.shape[0], width), fill, dtype=batch[k].dtype, device=keep.device)
           for k, fill in (("input_ids", pad_id), ("labels", -100), ("weights", 0), ("attention_mask", 0))}
    for b in range(keep.shape[0]):
        n = int(keep[b].sum())
        for k in out:
            out[k][b, :n] = batch[k][b][keep[b]]
    out["position_ids"] = torch.arange(width, device=keep.device).expand(keep.shape[0], width).clone()
    return out


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    from mathforge.models.icot_kd import Substitution, apply_mlps, teacher_states

    kd = ctx.cfg.icot_kd
    s1, s2 = separators(batch)
    z = teacher_states(ctx.aux["teacher"], batch["input_ids"], batch["attention_mask"],
                       list(zip(s1.tolist(), s2.tolist(), strict=True)), subset=kd.subset, stride=kd.stride)
    nocot = drop_cot(batch, ctx.pad_id)
    with Substitution(getattr(model, "module", model), apply_mlps(ctx.aux["mlps"], z), s1):
        logits = sft.forward_logits(model, nocot)  # [B, T', V]
    losses, mask = sft.token_losses(logits, nocot["labels"])
    w = sft.token_weights(nocot, mask)
    return (losses * w).sum(), w.sum().detach(), {"targets": int(mask.sum())}
