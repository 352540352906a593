"""Training objectives: small functions, one loop (architecture principle 2).

Each objective module exposes `loss(model, batch, ctx) -> (loss_sum, n_tokens, metrics)`:
`loss_sum` is the *sum* of weighted per-token losses of the micro-batch and `n_tokens` the matching
normaliser (sum of per-token weights over target positions). The loop adds both over all
micro-batches and processes of one optimizer step and divides once, so the reduction is the
global token mean of docs/methods/README.md §0 whatever the micro-batch split. Objectives compose by
multiplying per-token terms (noise on inputs, weights on tokens), never by flags in the loop.

An objective may also define `prepare(model, tokenizer, cfg) -> None` (run once on a fresh model)
`expand(examples, cfg) -> examples` (run once on the training set) and `epochs(examples, cfg) ->
float | None` (an epoch count the objective's method prescribes, None to keep `optim.epochs`).
Objectives whose model or data are not a causal LM over rendered rows (the value objectives) also
define `build_model(cfg, tokenizer)`, `load_data(cfg, tokenizer) -> TrainData`, `collate(items,
pad_id) -> batch`, `prepare_step(model, micro_batches, ctx) -> metrics` (a no-gradient pass over the
whole step before its micro-batches, e.g. CTL's importance weights) and `evaluate(model, data, cfg)`.

Seams for methods that need more (implicit CoT, docs/methods/icot.md §f), each optional:

- `setup(data, plan, cfg) -> state`: run once after the data and batch plan exist; `state` is
  handed back as `ctx.state` (e.g. steps per epoch, the longest CoT);
- `aux_modules(model, tokenizer, cfg, state) -> dict[str, nn.Module]`: extra modules (a frozen
  teacher, a probe, an emulator) that the loop moves to the device, optimises (trainable
  parameters), checkpoints, restores on resume and passes as `ctx.aux` (modules without trainable
  parameters are not saved: `aux_modules` rebuilds them from their source);
- `transform(rows, ctx) -> rows`: a per-step rewrite of the rendered rows before collation (a
  curriculum such as CoT removal); the token count and batch shape follow the new lengths;
  `ctx.evaluating` is True when the loop transforms held-out rows for the validation loss;
- `stage(step, state) -> int` and `resets_optimizer(cfg) -> bool`: when the stage of step s
  differs from that of step s-1 the optimizer moments are cleared before step s (recomputed from
  the step, so a resumed run resets at the same steps);
- named loss terms: an objective with `counts(batch, ctx) -> dict[name, float]` returns
  `(dict[name, term_sum], metrics)` from `loss`; the loop sums each term's count over the
  micro-batches and processes of the step and back-propagates `sum_name term_sum / count_name`,
  logging every term's mean as `loss_<name>`;
- `tokenizer(cfg) -> tokenizer`: the tokenizer to use instead of one built from the data (a
  distillation student takes its teacher's);
- `selectable(step, state) -> bool`: which evaluations may become `best_model` (only fully
  internalised ones for ICoT-SI); `finish(out_dir, state)` writes method-specific reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mathforge.train.objectives import (
    difficulty,
    icot_kd_coupled,
    icot_kd_emulator,
    icot_kd_student,
    icot_si,
    mft,
    sft,
    value_bce,
    value_ctl,
)

OBJECTIVES: dict[str, ModuleType] = {"sft": sft, "mft": mft, "difficulty": difficulty, "value_ctl": value_ctl,
                                     "value_bce": value_bce, "icot_si": icot_si,
                                     "icot_kd_student": icot_kd_student, "icot_kd_emulator": icot_kd_emulator,
                                     "icot_kd_coupled": icot_kd_coupled}


@dataclass
class StepContext:
    """What an objective may know about the moment it is called.

    `step` counts optimizer steps completed (0 on the first), `total_steps` is the planned total,
    `micro_index` the micro-batch within the step on this process, `micro_per_step` their count.
    Randomness (MFT masks) comes from `generator()`, seeded from (seed, step, micro, rank) so a
    resumed run redraws exactly the masks of the uninterrupted one without storing RNG state.
    """

    cfg: Any
    step: int = 0
    total_steps: int = 1
    micro_index: int = 0
    micro_per_step: int = 1
    rank: int = 0
    seed: int = 0
    pad_id: int = 0
    mask_id: int | None = None
    vocab_base: int = 0
    special_ids: tuple[int, ...] = ()
    state: Any = None  # what the objective's `setup` returned
    aux: Any = None  # the objective's auxiliary modules (nn.ModuleDict) or None
    norms: dict[str, float] | None = None  # global per-term counts of this step (named terms)
    evaluating: bool = False

    def generator(self, device: Any = "cpu", salt: str = "") -> Any:
        import torch

        key = f"{self.seed}/{self.step}/{self.micro_index}/{self.rank}{'/' + salt if salt else ''}".encode()
        g = torch.Generator(device=device)
        g.manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)
        return g


def get_objective(name: str) -> ModuleType:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(f"unknown objective {name!r} (known: {', '.join(OBJECTIVES)})") from None


__all__ = ["OBJECTIVES", "StepContext", "get_objective"]
