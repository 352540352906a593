"""Data order and learning-rate schedules for the training loop.

`BatchPlan` fixes the data order of a run as a pure function of (seed, epoch): each epoch is a
seeded permutation of the training examples, packed into rows (best-fit, docs/methods/packing.md §c.3) and the
rows shuffled again by a seeded generator, so batch composition varies between epochs. A step takes
`rows_per_step` consecutive rows; the data position of step g is (epoch, row index), recomputed on
resume instead of replaying a data loader, which is what makes a resumed run exact. A trailing
partial global batch of an epoch is dropped (as `drop_last`), so every step has the same shape on
every process.

LR schedules are multipliers of the peak LR: linear warm-up then cosine to `min_lr_ratio`, or
warm-up / stable / decay (WSD, Hu et al. 2024 "MiniCPM"): flat after warm-up, then a linear decay
to `min_lr_ratio` over the last `decay_ratio` of the steps; or the MFT release's `tail` (docs/methods/README.md
§a.7): cosine to `min_lr_ratio` at `decay_ratio * T` (0.6, floor 0.05 in the original), then
linear to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def lr_lambda(optim: Any, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak LR at optimizer step `s` (0-based), for `torch.optim.lr_scheduler.LambdaLR`."""
    total = max(1, total_steps)
    warmup = int(round(optim.warmup_ratio * total))
    floor = optim.min_lr_ratio

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        if optim.schedule == "constant":
            return 1.0
        if optim.schedule == "tail":  # docs/methods/mft.md §a.7: cosine to a floor by D = 0.6 T, then linear to 0
            end = max(warmup + 1, int(optim.decay_ratio * total))
            if s <= end:
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (end - warmup)))
            return floor * (total - s) / max(1, total - end)
        if optim.schedule == "wsd":
            decay = max(1, int(round(optim.decay_ratio * total)))
            start = total - decay
            return 1.0 if s < start else floor + (1 - floor) * max(0.0, (total - s) / decay)
        progress = min(1.0, (s - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class BatchPlan:
    """Which rows (lists of example indices) each optimizer step uses."""

    def __init__(self, lengths: Sequence[int], *, seq_len: int, packing: bool, rows_per_step: int, seed: int,
                 epochs: float, max_steps: int = 0):
        self.lengths, self.seq_len, self.packing = list(lengths), seq_len, packing
        self.rows_per_step, self.seed = rows_per_step, seed
        self._rows: dict[int, list[list[int]]] = {}
        self._steps: dict[int, int] = {}  # epoch -> steps; cheap to keep for every epoch
        per_epoch = self.steps_in_epoch(0)
        if per_epoch == 0:
            raise ValueError(
                f"training set too small: {len(self.epoch_rows(0))} rows per epoch, fewer than one global batch "
                f"of {rows_per_step} rows (optim.micro_batch_size * optim.grad_accum * processes)"
            )
        if max_steps > 0:
            self.total_steps = max_steps
        else:
            whole = int(epochs)
            steps = sum(self.steps_in_epoch(e) for e in range(whole))
            steps += int((epochs - whole) * self.steps_in_epoch(whole)) if epochs > whole else 0
            self.total_steps = max(1, steps)

    def epoch_rows(self, epoch: int) -> list[list[int]]:
        if epoch not in self._rows:
            import torch

            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(self.lengths), generator=g).tolist()
            if self.packing:
                from mathforge.data.packing import pack

                groups = pack([self.lengths[i] for i in perm], self.seq_len)
                rows = [[perm[j] for j in grp] for grp in groups]
                order = torch.randperm(len(rows), generator=g).tolist()  # undo best-fit's length sort
                rows = [rows[i] for i in order]
            else:
                rows = [[i] for i in perm]
            self._rows = {epoch: rows}  # keep one epoch in memory
        return self._rows[epoch]

    def steps_in_epoch(self, epoch: int) -> int:
        if epoch not in self._steps:
            self._steps[epoch] = len(self.epoch_rows(epoch)) // self.rows_per_step
        return self._steps[epoch]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, index of the first row of `step` in that epoch's row order)."""
        epoch = 0
        while step >= (n := self.steps_in_epoch(epoch)):
            step -= n
            epoch += 1
        return epoch, step * self.rows_per_step

    def global_rows(self, step: int) -> list[list[int]]:
        epoch, start = self.position(step)
        return self.epoch_rows(epoch)[start : start + self.rows_per_step]
