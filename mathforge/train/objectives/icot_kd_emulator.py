"""ICoT-KD stage 2b, the thought emulator (Deng et al. 2023, "Implicit Chain of Thought Reasoning via
Knowledge Distillation"), docs/methods/icot.md §f.8, as an objective of the one loop.

The model is a fresh causal LM read up to s1; the emulator head (`mathforge.models.icot_kd.Emulator`:
per-layer MLPs, mixture table, LSTM, key/query/out projections) is a trainable auxiliary module and
the frozen teacher another. Per micro-batch (full-layout padded rows) the teacher's states z at the
§f.6 positions are the targets of z_hat = Emulator(LM, rows, s1); the loss is
sum_l 1/2 ||z_hat_l - z_l||^2 summed over hidden units, normalised by the number of examples of the
whole step. The LM is saved as `model/`, the head in `model/aux_modules.pt` (key `emulator.*`).
"""

from __future__ import annotations

from typing import Any

from mathforge.train.objectives import icot_kd_student as student_stage

tokenizer = student_stage.tokenizer
setup = student_stage.setup


def aux_modules(model: Any, tok: Any, cfg: Any, state: Any) -> dict[str, Any]:
    from mathforge.models.icot_kd import Emulator, decoder_layers

    teacher = student_stage.aux_modules(model, tok, cfg, state)["teacher"]
    kd = cfg.icot_kd
    head = Emulator(model.config.hidden_size, len(decoder_layers(model)), n_mix=kd.n_mix, tau=kd.tau)
    if teacher.config.hidden_size != model.config.hidden_size:
        raise ValueError(f"emulator hidden size {model.config.hidden_size} differs from the teacher's "
                         f"{teacher.config.hidden_size}: z_hat must match the teacher states")
    return {"teacher": teacher, "emulator": head}


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    from mathforge.models.icot_kd import emulator_loss, teacher_states

    kd = ctx.cfg.icot_kd
    s1, s2 = student_stage.separators(batch)
    z = teacher_states(ctx.aux["teacher"], batch["input_ids"], batch["attention_mask"],
                       list(zip(s1.tolist(), s2.tolist(), strict=True)), subset=kd.subset, stride=kd.stride)
    z_hat = ctx.aux["emulator"](getattr(model, "module", model), batch["input_ids"], batch["attention_mask"], s1)
    n = z.shape[0]
    return emulator_loss(z_hat, z) * n, n, {"targets": n}
