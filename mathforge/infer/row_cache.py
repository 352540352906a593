"""A KV cache for step-wise search: each prompt's keys stored once, each row's generated keys at its
own length (TSMC, Feng et al. 2025; shared-prefix attention after Hydragen, Juravsky et al. 2024).

Particles of one problem share their prompt and differ only in what they generated, and they stop
at step boundaries at different times. `RowCache` keeps:

* the prompt's keys/values once per prompt (`prefix`, [P, Hkv, T, D], left-padded, from prefill);
* each row's generated keys/values in a buffer [C, Hkv, capacity, D] with its own length
  (`length[c]`), so a row that waits at a boundary while others decode leaves no hole behind, and
  a resampled copy is a copy of its generated part only.

A forward call feeds `n_new[a]` tokens to each of some cache rows `rows[a]` (right-padded to S).
`update` writes only the real ones, at each row's own offset; the attention function registered
here reads the prefix and the row's generated tokens with the right mask:

* decoding (S = 1, every cache row in the batch): queries of one prompt's rows are stacked against
  its prefix in one product, merged exactly with each row's suffix attention by log-sum-exp (the
  split of `prefix_attention.py`); rows that feed nothing this step compute a result nobody reads;
* chunks (S > 1, or a subset of rows; the value model reading a step): the rows' prefixes and
  suffixes are gathered and one masked `scaled_dot_product_attention` runs over them.

Exact for plain causal softmax attention (`prefix_attention.supports`); other architectures use the
padded cache of `stepwise.py`.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer

from mathforge.infer.prefix_attention import _partial, _rows, attention_implementation

ATTN_NAME = "mathforge_rows"
KWARG = "mathforge_rows"


class _RowLayer(DynamicLayer):
    """One layer's view [C, Hkv, capacity, D] of the cache's buffers; lengths live in the cache."""

    def __init__(self, owner: RowCache, index: int) -> None:
        super().__init__()
        self.owner, self.index = owner, index
        self.is_initialized = True
        self.view()

    def view(self) -> None:
        self.keys, self.values = self.owner.k_all[self.index], self.owner.v_all[self.index]

    def update(self, key_states, value_states, *args, **kwargs):
        """key_states [A, Hkv, S, D] of the call's rows; only the real tokens are written."""
        c = self.owner
        if c.packed:  # [1, Hkv, N, D]: already the real tokens, in order
            k, v = key_states[0].transpose(0, 1), value_states[0].transpose(0, 1)  # [N, Hkv, D]
        else:
            k = key_states.transpose(1, 2)[c._real]  # [N, Hkv, D]
            v = value_states.transpose(1, 2)[c._real]
        self.keys[c._dst_row, :, c._dst_pos] = k.to(self.keys.dtype)
        self.values[c._dst_row, :, c._dst_pos] = v.to(self.values.dtype)
        return key_states, value_states  # the attention below reads the buffers

    def get_seq_length(self) -> int:
        return int(self.owner.length.max()) if len(self.owner.length) else 0


class RowCache(Cache):
    """Prompt KV per prompt (from a prefill cache) + generated KV per row with per-row lengths."""

    def __init__(self, prefill: Cache, prefix_mask: torch.Tensor, prompt_of_row: torch.Tensor, capacity: int = 32):
        first = prefill.layers[0].keys  # [P, Hkv, T, D]
        rows, n_layers = len(prompt_of_row), len(prefill.layers)
        # All layers in one buffer [layers, C, Hkv, capacity, D], so selecting rows is one copy, not
        # one per layer. The capacity doubles when a call needs more. Zeros, never garbage: masked
        # slots still enter `probabilities @ values` (as 0 x value, NaN for a NaN value).
        shape = (n_layers, rows, first.shape[1], capacity, first.shape[3])
        self.k_all = first.new_zeros(shape, dtype=torch.float32)
        self.v_all = first.new_zeros(shape, dtype=torch.float32)
        super().__init__(layers=[_RowLayer(self, i) for i in range(n_layers)])
        # [P, Hkv, T, D] each; float32 like the suffix, since the attention below computes in float32
        self.prefix = [(layer.keys.float(), layer.values.float()) for layer in prefill.layers]
        self.prefix_ok = prefix_mask.bool()  # [P, T], False on left padding
        self.prompt = prompt_of_row.clone()  # [C] prompt of each cache row
        self.start = prefix_mask.sum(-1)[self.prompt]  # [C] position id of each row's first generated token
        self.length = torch.zeros(rows, dtype=torch.long, device=first.device)  # [C] generated tokens held
        self._slots()

    def _slots(self) -> None:
        """Each row's place in its prompt's query grid (decoding): [P, width] slots."""
        n_prompts = self.prefix_ok.shape[0]
        onehot = torch.nn.functional.one_hot(self.prompt, n_prompts)  # [C, P]
        rank = (onehot.cumsum(0) - 1).gather(1, self.prompt[:, None]).squeeze(1)  # [C]
        self.width = max(int(onehot.sum(0).max()) if len(self.prompt) else 1, 1)
        self.slots = self.prompt * self.width + rank

    # ------------------------------------------------------------------------------------------ calls
    def prepare(self, rows: torch.Tensor, n_new: torch.Tensor, width: int, *, packed: bool = False):
        """Set up a call feeding `n_new[a]` tokens to cache rows `rows[a]`: right-padded to `width`
        ([A, S] inputs), or `packed` back to back in one row ([1, N] inputs, no padding for the
        linear layers to compute; the attention unpacks them). Returns (position ids, a placeholder
        4D mask that transformers passes through)."""
        self.rows, self.n_new, self.S, self.packed = rows, n_new, width, packed
        self.base = self.length[rows]  # [A] generated tokens before this call
        self._grow(int((self.base + n_new).max()))
        self.decode_all = width == 1 and not packed and len(rows) == len(self.length) and bool(
            (rows == torch.arange(len(rows), device=rows.device)).all())
        s = torch.arange(width, device=rows.device)
        self._real = s[None, :] < n_new[:, None]  # [A, S]
        self._dst_row = rows[:, None].expand(-1, width)[self._real]  # [N]
        self._dst_pos = (self.base[:, None] + s[None, :])[self._real]  # [N]
        positions = self.start[rows][:, None] + self.base[:, None] + s[None, :]  # [A, S]
        if packed:
            positions = positions[self._real][None]  # [1, N]
        return positions, torch.ones(positions.shape[0], 1, 1, 1, dtype=torch.bool, device=rows.device)

    def _grow(self, needed: int) -> None:
        capacity = self.k_all.shape[3]
        if needed <= capacity:
            return
        pad = (0, 0, 0, max(needed, 2 * capacity) - capacity)
        self.k_all = torch.nn.functional.pad(self.k_all, pad)
        self.v_all = torch.nn.functional.pad(self.v_all, pad)
        for layer in self.layers:
            layer.view()

    def finish_call(self) -> None:
        self.length[self.rows] += self.n_new

    def keep(self, idx: torch.Tensor) -> None:
        """Cache row i becomes old row `idx[i]` (drops, reorders and duplicates; same problem rows)."""
        width = int(self.length.max()) if len(self.length) else 0
        if len(idx) == len(self.length):  # resampling: rewrite only the rows that change (the gather copies first)
            changed = torch.nonzero(idx != torch.arange(len(idx), device=idx.device)).squeeze(1)
            if len(changed):
                src = idx[changed]
                self.k_all[:, changed, :, :width] = self.k_all[:, src, :, :width]
                self.v_all[:, changed, :, :width] = self.v_all[:, src, :, :width]
        else:
            self.k_all, self.v_all = self.k_all[:, idx], self.v_all[:, idx]
            for layer in self.layers:
                layer.view()
        self.prompt, self.start, self.length = self.prompt[idx], self.start[idx], self.length[idx]
        self._slots()

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.prefix_ok.shape[1] + self.layers[layer_idx].get_seq_length()


def row_attention(model):
    """Route the model's attention through `row_cache_forward` for the duration."""
    return attention_implementation(model, ATTN_NAME)


def row_cache_forward(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """query [A, Hq, S, D] -> [A, S, Hq, D] (sdpa's output layout)."""
    cache: RowCache = kwargs[KWARG]
    layer = cache.layers[module.layer_idx]
    pk, pv = cache.prefix[module.layer_idx]  # [P, Hkv, T, D]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if cache.decode_all:
        return _decode(query, pk, pv, layer, cache, scale).transpose(1, 2).to(query.dtype), None
    if not cache.packed:
        return _chunk(query, pk, pv, layer, cache, scale).transpose(1, 2).to(query.dtype), None
    # packed [1, Hq, N, D]: unpack to [A, Hq, S, D] for the attention, pack its output back
    rows, hq, dim = len(cache.rows), query.shape[1], query.shape[3]
    q = query.new_zeros(rows, cache.S, hq, dim)
    q[cache._real] = query[0].transpose(0, 1)
    out = _chunk(q.transpose(1, 2), pk, pv, layer, cache, scale).transpose(1, 2)  # [A, S, Hq, D]
    return out[cache._real][None].to(query.dtype), None  # [1, N, Hq, D]


def _decode(query, pk, pv, layer, cache: RowCache, scale: float) -> torch.Tensor:
    """One query per cache row, every row in the batch. Returns [C, Hq, 1, D]."""
    rows, hq, _, dim = query.shape
    prompts, hkv, _, _ = pk.shape
    g = hq // hkv  # query heads per KV head (grouped-query attention)
    q = query.float().reshape(rows, hkv, g, dim) * scale  # [C, Hkv, g, D]
    # Prefix: the rows of a prompt stacked in its grid, one product per prompt.
    grid = q.new_zeros(prompts * cache.width, hkv, g, dim)
    grid[cache.slots] = q
    grid = grid.view(prompts, cache.width, hkv, g, dim).permute(0, 2, 1, 3, 4).reshape(prompts, hkv, -1, dim)
    s_pre = (grid @ pk.transpose(-1, -2)).masked_fill(~cache.prefix_ok[:, None, None, :], float("-inf"))
    m_pre, l_pre, o_pre = _partial(s_pre, pv)  # [P, Hkv, W*g], same, [P, Hkv, W*g, D]

    m_pre, l_pre, o_pre = (_rows(x, cache, prompts, hkv, g) for x in (m_pre, l_pre, o_pre))  # [C, Hkv, g, ...]
    # Suffix: each row against its generated tokens, the one just written included (none for a row
    # that feeds nothing: its result is not read, and the prefix keeps the merge finite).
    upto = cache.base + cache.n_new  # [C]
    width = max(int(upto.max()), 1)
    keys, values = layer.keys[:, :, :width], layer.values[:, :, :width]  # [C, Hkv, L, D] views
    ok = torch.arange(width, device=q.device)[None, :] < upto[:, None]  # [C, L]
    s_suf = (q @ keys.transpose(-1, -2)).masked_fill(~ok[:, None, None, :], float("-inf"))  # [C, Hkv, g, L]
    m = torch.maximum(m_pre, s_suf.amax(-1))  # [C, Hkv, g], finite: every prompt has a token
    e_suf = torch.exp(s_suf - m[..., None])
    a = torch.exp(m_pre - m)
    out = (o_pre * a[..., None] + e_suf @ values) / (l_pre * a + e_suf.sum(-1))[..., None]  # [C, Hkv, g, D]
    return out.reshape(rows, hq, 1, dim)


def _chunk(query, pk, pv, layer, cache: RowCache, scale: float) -> torch.Tensor:
    """S queries for each of the call's rows (a subset): gather their context, one masked sdpa.
    Returns [A, Hq, S, D]."""
    rows, prompt = cache.rows, cache.prompt[cache.rows]
    s = torch.arange(cache.S, device=query.device)
    # [A, S] suffix keys each query sees (causal); padding queries see what the row's last one does
    upto = cache.base[:, None] + torch.minimum(s[None, :] + 1, cache.n_new[:, None].clamp(min=1))
    width = int(upto.max())
    keys = torch.cat([pk[prompt], layer.keys[rows, :, :width]], dim=2)  # [A, Hkv, T + L, D]
    values = torch.cat([pv[prompt], layer.values[rows, :, :width]], dim=2)
    suffix_ok = torch.arange(width, device=query.device)[None, None, :] < upto[:, :, None]  # [A, S, L]
    prefix_ok = cache.prefix_ok[prompt][:, None, :].expand(-1, cache.S, -1)  # [A, S, T]
    mask = torch.cat([prefix_ok, suffix_ok], dim=2)[:, None]  # [A, 1, S, T + L]
    gqa = query.shape[1] != keys.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(query.float(), keys, values, attn_mask=mask, scale=scale,
                                                            enable_gqa=gqa)


AttentionInterface.register(ATTN_NAME, row_cache_forward)
