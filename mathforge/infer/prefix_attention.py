"""Shared-prefix decoding attention: each prompt's KV cache is stored and read once for all its samples.

When n samples continue one prompt, plain batched decoding copies the prompt's keys/values into
every sample row and re-reads them at every step (n-fold memory traffic on the longest part of the
context). Following Hydragen (Juravsky et al. 2024, "Hydragen: High-Throughput LLM Inference with
Shared Prefixes"), attention over the context is split in two and merged exactly by log-sum-exp:

* prefix: the queries of all samples of a prompt, stacked, against that prompt's cached keys
  (one matrix product per prompt, prefix KV stored once);
* suffix: each row's query against its own generated tokens, kept in a preallocated buffer so a
  step writes in place instead of re-concatenating the cache.

It plugs into stock transformers models through their extension points: a registered attention
function (`AttentionInterface`) and a `Cache` whose layers hold the suffix buffers. The prefix state
reaches the attention function as an extra forward keyword. Used for decoding only (one query per
row); prefill runs the model's own attention.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer

ATTN_NAME = "mathforge_shared_prefix"
KWARG = "mathforge_prefix"
# Architectures whose attention is plain causal softmax attention over the whole context (no sliding
# window, soft-capping or attention sinks), so the split below is exact.
SUPPORTED = {"llama", "mistral", "qwen2", "qwen3"}


def supports(model) -> bool:
    cfg = model.config
    windowed = getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True)
    return cfg.model_type in SUPPORTED and not windowed


class _SuffixLayer(DynamicLayer):
    """Generated-token keys/values of each row, [R, Hkv, capacity, D], filled in place.

    Kept in float32, like the prefix, because the attention below computes in float32: converting
    once on write is cheaper than converting the whole context at every step (bf16/fp16 models).
    """

    def __init__(self, rows: int, capacity: int, like: torch.Tensor) -> None:
        super().__init__()
        _, heads, _, dim = like.shape
        self.keys = like.new_empty(rows, heads, capacity, dim, dtype=torch.float32)
        self.values = like.new_empty(rows, heads, capacity, dim, dtype=torch.float32)
        self.length = 0
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[2]
        self.keys[:, :, self.length:end] = key_states  # [R, Hkv, 1, D] written at step `length`
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]  # [R, Hkv, t, D] views

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.keys, self.values = self.keys[indices], self.values[indices]


class SharedPrefixCache(Cache):
    """Prefix KV per prompt (from prefill) + suffix buffers per row; rows can be dropped."""

    def __init__(self, prefill_cache: Cache, prefix_mask: torch.Tensor, counts: list[int], capacity: int):
        first = prefill_cache.layers[0].keys
        rows = sum(counts)
        super().__init__(layers=[_SuffixLayer(rows, capacity, first) for _ in prefill_cache.layers])
        # [P, Hkv, T, D] each, float32 once here rather than at every step
        self.prefix = [(layer.keys.float(), layer.values.float()) for layer in prefill_cache.layers]
        self.prefix_ok = prefix_mask.bool()  # [P, T]; False on left padding
        self.width = max(counts)
        # Row r sits in slot (its prompt, its sample) of a [P, width] grid of queries.
        self.slots = torch.cat([torch.arange(c) + p * self.width for p, c in enumerate(counts)]).to(first.device)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep, drop, reorder or duplicate rows (duplicates are what SMC resampling makes).

        Each row needs a slot of its own in its prompt's query grid: two rows sharing a slot would
        overwrite each other's query in `shared_prefix_forward`. So slots are re-ranked per prompt.
        """
        super().batch_select_indices(indices)
        prompt = torch.div(self.slots[indices], self.width, rounding_mode="floor")  # [R'] prompt of each row
        n_prompts = self.prefix[0][0].shape[0]
        onehot = torch.nn.functional.one_hot(prompt, n_prompts)  # [R', P]
        rank = (onehot.cumsum(0) - 1).gather(1, prompt[:, None]).squeeze(1)  # [R'] index among its prompt's rows
        self.width = max(int(onehot.sum(0).max()) if len(prompt) else 1, 1)
        self.slots = prompt * self.width + rank

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.prefix[0][0].shape[2] + self.layers[layer_idx].get_seq_length()


@contextlib.contextmanager
def attention_implementation(model, name: str):
    """Route the model's attention through the registered attention function `name` for the duration."""
    config = model.config.get_text_config(decoder=True)
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


def shared_prefix_attention(model):
    """Route the model's attention through `shared_prefix_forward` while decoding."""
    return attention_implementation(model, ATTN_NAME)


def shared_prefix_forward(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """Attention for one decoding step. query [R, Hq, 1, D]; key/value: the suffix views [R, Hkv, t, D]."""
    cache: SharedPrefixCache = kwargs[KWARG]
    pk, pv = cache.prefix[module.layer_idx]  # [P, Hkv, T, D]
    rows, hq, _, dim = query.shape
    prompts, hkv, _, _ = pk.shape
    g = hq // hkv  # query heads per KV head (grouped-query attention)
    scale = scaling if scaling is not None else dim**-0.5
    q = query.float().reshape(rows, hkv, g, dim) * scale  # [R, Hkv, g, D]

    # Prefix: scatter rows into their prompt's grid, one batched product per prompt.
    grid = q.new_zeros(prompts * cache.width, hkv, g, dim)
    grid[cache.slots] = q
    grid = grid.view(prompts, cache.width, hkv, g, dim).permute(0, 2, 1, 3, 4).reshape(prompts, hkv, -1, dim)
    s_pre = grid @ pk.transpose(-1, -2)  # [P, Hkv, W*g, T]
    s_pre = s_pre.masked_fill(~cache.prefix_ok[:, None, None, :], float("-inf"))
    m_pre, l_pre, o_pre = _partial(s_pre, pv)  # [P, Hkv, W*g], same, [P, Hkv, W*g, D]
    m_pre, l_pre, o_pre = (_rows(x, cache, prompts, hkv, g) for x in (m_pre, l_pre, o_pre))  # [R, Hkv, g(, D)]

    # Suffix: each row against its own generated tokens (the current one included).
    s_suf = q @ key.transpose(-1, -2)  # [R, Hkv, g, t]
    m_suf, l_suf, o_suf = _partial(s_suf, value)

    # Exact merge of the two softmax pieces.
    m = torch.maximum(m_pre, m_suf)
    a, b = torch.exp(m_pre - m), torch.exp(m_suf - m)  # [R, Hkv, g]
    out = (o_pre * a[..., None] + o_suf * b[..., None]) / (l_pre * a + l_suf * b)[..., None]  # [R, Hkv, g, D]
    return out.reshape(rows, 1, hq, dim).to(query.dtype), None  # [R, 1, Hq, D] like sdpa's output


def _partial(scores: torch.Tensor, values: torch.Tensor):
    """Un-normalised softmax pieces: running max, sum of exp, exp-weighted values."""
    m = scores.amax(-1)  # [..., Q]
    e = torch.exp(scores - m[..., None])  # [..., Q, K]
    return m, e.sum(-1), e @ values  # [..., Q], [..., Q], [..., Q, D]


def _rows(x: torch.Tensor, cache: Any, prompts: int, hkv: int, g: int) -> torch.Tensor:
    """[P, Hkv, W*g, ...] grid results back to [R, Hkv, g, ...] rows; `cache` is any cache with the
    prompt-grid layout (`width`, `slots`): SharedPrefixCache or the step generator's RowCache."""
    tail = x.shape[3:]
    x = x.reshape(prompts, hkv, cache.width, g, *tail).transpose(1, 2)  # [P, W, Hkv, g, ...]
    return x.reshape(prompts * cache.width, hkv, g, *tail)[cache.slots]


AttentionInterface.register(ATTN_NAME, shared_prefix_forward)
