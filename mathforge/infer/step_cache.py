"""The KV caches behind step-wise generation (`stepwise.py`; TSMC, Feng et al. 2025): one model's
cache over the live rows (particles), fed a few tokens per row at a time, rows kept, dropped or
duplicated by index.

* `SplitStore` (architectures with plain causal attention, `prefix_attention.supports`): the prompt
  stored once per prompt and each row's generated tokens at their own length (`row_cache.py`). A
  row that feeds nothing in a call costs nothing there and leaves nothing behind.
* `PaddedStore` (any HF causal LM): stock attention over one [C, L] cache; a row that feeds fewer
  tokens than the others gets masked holes (attention mask 0), positions are tracked per row.

Both answer `feed(rows, tokens)` with the model's output at each row's last new token: next-token
logits [A, V] for a generator, the value logit h [A] for a `ValueModel`.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from mathforge.infer.prefix_attention import supports
from mathforge.infer.row_cache import KWARG, RowCache, row_attention
from mathforge.infer.types import left_pad


def prefill(model, prompts: list[list[int]], pad_id: int, device) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Encode each prompt once (left padding). Returns (DynamicCache, last output [P, ...], mask [P, T])."""
    ids, mask = left_pad(prompts, pad_id, device)  # [P, T], [P, T]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [P, T]
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
    return cache, out.logits[:, -1], mask


class _Store:
    """One model's cache over the live rows: cache row c holds state row `owner[c]`."""

    def __init__(self, model, prompts, expand: list[int], *, lm: bool, pad_id: int, capacity: int, device) -> None:
        self.model, self.lm, self.pad_id, self.device = model, lm, pad_id, device
        self.owner = list(range(len(expand)))
        cache, last, mask = prefill(model, prompts, pad_id, device)
        sel = torch.tensor(expand, device=device)  # [C] prompt of each row
        self.logits = last[sel].float() if lm else None  # [C, V] next-token logits (generator only)
        self.h: dict[int, torch.Tensor] = {}  # state row -> last value logit read (value model only)
        self._build(cache, mask, sel, capacity)

    def _build(self, cache: Cache, mask: torch.Tensor, sel: torch.Tensor, capacity: int) -> None:
        """Make this store's cache from the prompts' prefill (`sel`: each row's prompt)."""
        raise NotImplementedError

    def where(self) -> dict[int, int]:
        return {i: c for c, i in enumerate(self.owner)}

    def keep(self, sel: list[int], owners: list[int]) -> None:
        if len(sel) != len(self.owner) or sel != list(range(len(sel))):
            idx = torch.tensor(sel, dtype=torch.long, device=self.device)
            self._keep(idx)
            if self.logits is not None:
                self.logits = self.logits[idx]
        self.owner = owners

    def _output(self, out, last: torch.Tensor) -> torch.Tensor:
        """The output at each fed row's last new token: logits [A, V] or h [A]."""
        if self.lm:
            return out.logits.gather(1, last[:, None, None].expand(-1, 1, out.logits.shape[-1])).squeeze(1).float()
        return out.logits.gather(1, last[:, None]).squeeze(1).float()


class SplitStore(_Store):
    def _build(self, cache: Cache, mask: torch.Tensor, sel: torch.Tensor, capacity: int) -> None:
        self.cache = RowCache(cache, mask, sel, min(capacity, 32))

    def _keep(self, idx: torch.Tensor) -> None:
        self.cache.keep(idx)

    def feed(self, crow: list[int], tokens: list[list[int]]) -> torch.Tensor:
        """Cache rows `crow` read `tokens` (one list each). Decoding (one token each, most rows)
        runs every cache row (unfed ones compute an unread result); chunks run only the fed rows,
        packed into one sequence so the linear layers see no padding."""
        n = len(self.owner)
        if all(len(t) == 1 for t in tokens) and 2 * len(crow) > n:
            at = torch.tensor(crow, device=self.device)
            ids = torch.full((n, 1), self.pad_id, device=self.device)  # [C, 1]
            ids[at, 0] = torch.tensor([t[0] for t in tokens], device=self.device)
            n_new = torch.zeros(n, dtype=torch.long, device=self.device)
            n_new[at] = 1
            out = self._forward(ids, torch.arange(n, device=self.device), n_new, packed=False)
            return self._output(out, torch.zeros_like(n_new))[at]
        ids = torch.tensor([t for ts in tokens for t in ts], device=self.device)[None]  # [1, N]
        n_new = torch.tensor([len(t) for t in tokens], device=self.device)  # [A]
        out = self._forward(ids, torch.tensor(crow, device=self.device), n_new, packed=True)
        return out.logits[0, n_new.cumsum(0) - 1].float()  # [A, V] or [A]: at each row's last token

    def _forward(self, ids: torch.Tensor, rows: torch.Tensor, n_new: torch.Tensor, *, packed: bool):
        positions, placeholder = self.cache.prepare(rows, n_new, int(n_new.max()) if packed else 1, packed=packed)
        kw = {"logits_to_keep": 1} if self.lm and not packed else {}
        with row_attention(self.model):
            out = self.model(input_ids=ids, attention_mask=placeholder, position_ids=positions, cache=self.cache,
                             use_cache=True, **{KWARG: self.cache}, **kw)
        self.cache.finish_call()
        return out


class _GrowingLayer(DynamicLayer):
    """Keys/values of each row in a preallocated buffer [R, H, capacity, D], written in place (no
    concatenation of the whole cache at every decoding step); the capacity doubles when full."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, extra: int) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        self.keys = keys.new_empty(rows, heads, length + extra, dim)
        self.values = values.new_empty(rows, heads, length + extra, dim)
        self.keys[:, :, :length], self.values[:, :, :length] = keys, values
        self.length = length
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[2]
        if end > self.keys.shape[2]:
            grow = max(end, 2 * self.keys.shape[2]) - self.keys.shape[2]
            pad = (0, 0, 0, grow)
            self.keys = torch.nn.functional.pad(self.keys, pad)
            self.values = torch.nn.functional.pad(self.values, pad)
        self.keys[:, :, self.length:end] = key_states  # [R, H, new, D]
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if len(indices) == self.keys.shape[0]:  # resampling: rewrite only the rows that change, in place
            changed = torch.nonzero(indices != torch.arange(len(indices), device=indices.device)).squeeze(1)
            if len(changed):
                src, n = indices[changed], self.length
                self.keys[changed, :, :n] = self.keys[src, :, :n]  # the gather copies first: overlaps are safe
                self.values[changed, :, :n] = self.values[src, :, :n]
            return
        self.keys, self.values = self.keys[indices], self.values[indices]  # duplicates are plain copies


class _GrowingCache(Cache):
    """A prefilled cache expanded to rows (`rows[r]` = the prompt of row r), with room to grow."""

    def __init__(self, prefill: Cache, rows: torch.Tensor, extra: int) -> None:
        super().__init__(layers=[_GrowingLayer(layer.keys[rows], layer.values[rows], extra) for layer in prefill.layers])


class PaddedStore(_Store):
    def _build(self, cache: Cache, mask: torch.Tensor, sel: torch.Tensor, capacity: int) -> None:
        self.cache = _GrowingCache(cache, sel, extra=capacity)  # [P, H, T, D] -> [C, H, T + capacity, D]
        self.mask = mask[sel]  # [C, L] attention mask (0 on left padding and holes)
        self.pos = mask.sum(-1)[sel]  # [C] position id of each row's next token

    def _keep(self, idx: torch.Tensor) -> None:
        self.cache.batch_select_indices(idx)
        self.mask, self.pos = self.mask[idx], self.pos[idx]

    def feed(self, crow: list[int], tokens: list[list[int]]) -> torch.Tensor:
        """Every cache row takes part; rows not fed (or fed fewer tokens) get masked holes."""
        n, width = len(self.owner), max(len(t) for t in tokens)
        ids = torch.full((n, width), self.pad_id, device=self.device)  # [C, S]
        cols = torch.zeros(n, width, dtype=self.mask.dtype, device=self.device)
        for c, t in zip(crow, tokens, strict=True):
            ids[c, : len(t)] = torch.tensor(t, device=self.device)
            cols[c, : len(t)] = 1
        self.mask = torch.cat([self.mask, cols], dim=1)  # [C, L + S]
        pos = self.pos[:, None] + cols.cumsum(1) - 1  # [C, S] real positions (holes reuse the last one)
        kw = {"logits_to_keep": 1} if self.lm and width == 1 else {}
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=pos.clamp(min=0), cache=self.cache,
                         use_cache=True, **kw)
        self.pos = self.pos + cols.sum(1).to(self.pos.dtype)
        last = (cols.sum(1) - 1).clamp(min=0) if width > 1 else torch.zeros(n, dtype=torch.long, device=self.device)
        return self._output(out, last.long())[torch.tensor(crow, device=self.device)]


def make_store(model, prompts, expand, *, lm: bool, pad_id: int, capacity: int, device, split: bool | None = None):
    """A `SplitStore` where the architecture allows it exactly (or `split=True`), else a `PaddedStore`."""
    split = supports(model) if split is None else split
    return (SplitStore if split else PaddedStore)(model, prompts, expand, lm=lm, pad_id=pad_id, capacity=capacity,
                                                 device=device)
