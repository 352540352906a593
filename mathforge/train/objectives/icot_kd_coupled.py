"""ICoT-KD stage 3, couple and optimise (Deng et al. 2023, "Implicit Chain of Thought Reasoning via
Knowledge Distillation"), docs/methods/icot.md §f.9, as an objective of the one loop, and the loader of its
result.

The model is the mind-reading student (`model.init` = the student stage's `model/`); its MLPs
(from `icot_kd.student`'s `aux_modules.pt`), the emulator LM (`icot_kd.emulator`) and the emulator
head (from that folder's `aux_modules.pt`) are auxiliary modules, all trained end to end unless
`freeze_emulator`. Per micro-batch: z_hat = Emulator(question through s1); the student runs on the
no-CoT rows with MLP_l(z_hat_l) substituted at s1; the loss is the CE on `#### answer EOS` only.
The result folder `model/` holds the student, and `aux_modules.pt` the MLPs, the emulator LM's
weights and the head; `load_implicit(folder)` reassembles all of it (the emulator LM's
architecture comes from the emulator folder named in the saved config) for
`mathforge.models.icot_kd.implicit_generate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mathforge.train.objectives import icot_kd_student as student_stage
from mathforge.train.objectives import sft


def setup(data: Any, plan: Any, cfg: Any) -> None:
    for key in ("student", "emulator"):
        if not (Path(getattr(cfg.icot_kd, key)) / "aux_modules.pt").is_file():
            raise ValueError(f"icot_kd.{key}={getattr(cfg.icot_kd, key)!r}: no aux_modules.pt of a finished "
                             f"{key} stage there")
    if not cfg.model.init:
        raise ValueError("icot_kd_coupled needs model.init = the student stage's model folder")
    student_stage.setup(data, plan, cfg)


def _stage_modules(student_dir: str, emulator_dir: str) -> dict[str, Any]:
    import torch

    from mathforge.models.icot_kd import Emulator, decoder_layers, layer_mlps
    from mathforge.models.loading import load_model

    lm, _ = load_model(emulator_dir)
    emu_cfg = json.loads((Path(emulator_dir) / "mathforge_config.json").read_text())["icot_kd"]
    head = Emulator(lm.config.hidden_size, len(decoder_layers(lm)), n_mix=emu_cfg["n_mix"], tau=emu_cfg["tau"])
    head.load_state_dict(_prefixed(torch.load(Path(emulator_dir) / "aux_modules.pt"), "emulator."))
    student_aux = torch.load(Path(student_dir) / "aux_modules.pt")
    w = student_aux["mlps.0.0.weight"]  # [4h, h_teacher]
    mlps = layer_mlps(w.shape[0] // 4, len(decoder_layers(lm)), in_dim=w.shape[1])
    mlps.load_state_dict(_prefixed(student_aux, "mlps."))
    return {"emulator_lm": lm, "emulator": head, "mlps": mlps}


def _prefixed(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def aux_modules(model: Any, tok: Any, cfg: Any, state: Any) -> dict[str, Any]:
    mods = _stage_modules(cfg.icot_kd.student, cfg.icot_kd.emulator)
    if cfg.icot_kd.freeze_emulator:
        mods["emulator_lm"].requires_grad_(False)
        mods["emulator"].requires_grad_(False)
    return mods


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[Any, Any, dict]:
    from mathforge.models.icot_kd import Substitution, apply_mlps

    s1, _ = student_stage.separators(batch)
    nocot = student_stage.drop_cot(batch, ctx.pad_id)
    z_hat = ctx.aux["emulator"](ctx.aux["emulator_lm"], nocot["input_ids"], nocot["attention_mask"], s1)
    with Substitution(getattr(model, "module", model), apply_mlps(ctx.aux["mlps"], z_hat), s1):
        logits = sft.forward_logits(model, nocot)  # [B, T', V]
    losses, mask = sft.token_losses(logits, nocot["labels"])
    w = sft.token_weights(nocot, mask)
    return (losses * w).sum(), w.sum().detach(), {"targets": int(mask.sum())}


def load_implicit(folder: str | Path) -> dict[str, Any]:
    """A finished coupled stage: {"student", "tokenizer", "emulator_lm", "emulator", "mlps"}."""
    import torch

    from mathforge.models.loading import load_model

    folder = Path(folder)
    cfg = json.loads((folder / "mathforge_config.json").read_text())
    student, tok = load_model(folder)
    mods = _stage_modules(cfg["icot_kd"]["student"], cfg["icot_kd"]["emulator"])
    trained = torch.load(folder / "aux_modules.pt")
    for name, module in mods.items():
        part = _prefixed(trained, name + ".")
        if part:  # frozen modules were not saved: they are the stage inputs, loaded above
            module.load_state_dict(part)
        module.eval()
    return {"student": student.eval(), "tokenizer": tok, **mods}
