"""Training objectives: small functions, one loop (architecture principle 2).

Each objective module exposes `loss(model, batch, ctx) -> (loss_sum, n_tokens, metrics)`:
`loss_sum` is the *sum* of weighted per-token losses of the micro-batch and `n_tokens` the matching
normaliser (sum of per-token weights over target positions). The loop adds both over all
micro-batches and processes of one optimizer step and divides once, so the reduction is the
global token mean of methods.md §0 whatever the micro-batch split. Objectives compose by
multiplying per-token terms (noise on inputs, weights on tokens), never by flags in the loop.

An objective may also define `prepare(model, tokenizer, cfg) -> None` (run once on a fresh model)
`expand(examples, cfg) -> examples` (run once on the training set) and `epochs(examples, cfg) ->
float | None` (an epoch count the objective's method prescribes, None to keep `optim.epochs`).
Objectives whose model or data are not a causal LM over rendered rows (the value objectives) also
define `build_model(cfg, tokenizer)`, `load_data(cfg, tokenizer) -> TrainData`, `collate(items,
pad_id) -> batch`, `prepare_step(model, micro_batches, ctx) -> metrics` (a no-gradient pass over the
whole step before its micro-batches, e.g. CTL's importance weights) and `evaluate(model, data, cfg)`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mathforge.train.objectives import difficulty, mft, sft, value_bce, value_ctl

OBJECTIVES: dict[str, ModuleType] = {"sft": sft, "mft": mft, "difficulty": difficulty, "value_ctl": value_ctl,
                                     "value_bce": value_bce}


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

    def generator(self, device: Any = "cpu") -> Any:
        import torch

        key = f"{self.seed}/{self.step}/{self.micro_index}/{self.rank}".encode()
        g = torch.Generator(device=device)
        g.manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)
        return g


def get_objective(name: str) -> ModuleType:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(f"unknown objective {name!r} (known: {', '.join(OBJECTIVES)})") from None


__all__ = ["OBJECTIVES", "StepContext", "get_objective"]
