"""Sequence packing without cross-sample attention (docs/methods/packing.md §c).

Several rendered examples share one fixed-length row; every example stays isolated:

- attention is block-diagonal causal: query i sees key j iff both belong to the same example and
  j <= i (§c.5); a pad query sees only itself, so no softmax row is empty (no NaN, §c.8 I5);
- position ids restart at 0 for every example (§c.6), so each gets exactly the logits it would
  get alone under any positional scheme;
- the first label of every example is forced to -100 (§c.4): with the HF shifted loss, label j
  is predicted from position j-1, which for an example's first token is the previous example's
  last token (its EOS). Unpacked, the first token is never a target either, so the set of
  targets is identical. The last token of an example keeps its own label (its EOS target,
  predicted from the token before it) and the next position belongs to the next example's
  prompt, which is -100.

Grouping (§c.3): `best_fit_decreasing` (default here, fullest rows), `first_fit_decreasing`, or
`next_fit` (data order kept; the [orig] JiuZhang3.0 rule, needed when order is a curriculum).
Backends (§c.5): SDPA takes the boolean 4D mask, eager an additive one; flash-attention's varlen
path takes only the reset `position_ids`. `model_inputs` picks explicitly and refuses a backend
with no isolating path instead of silently attending across examples.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from mathforge.data.render import IGNORE_INDEX, Rendered

STRATEGIES = ("best_fit_decreasing", "first_fit_decreasing", "next_fit")


def pack(lengths: Sequence[int], seq_len: int, *, strategy: str = "best_fit_decreasing") -> list[list[int]]:
    """Group example indices into rows whose lengths sum to at most `seq_len`.

    Raises ValueError naming the first example longer than `seq_len` (truncate or drop those
    when rendering, docs/methods/packing.md §c.2).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"pack: strategy must be one of {STRATEGIES}, got {strategy!r}")
    if seq_len < 1:
        raise ValueError(f"pack: seq_len must be >= 1, got {seq_len}")
    for i, n in enumerate(lengths):
        if n < 1 or n > seq_len:
            raise ValueError(f"pack: example #{i} has length {n}, outside [1, seq_len={seq_len}]")
    if strategy == "next_fit":
        return _next_fit(lengths, seq_len)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    if strategy == "best_fit_decreasing":
        return _best_fit(order, lengths, seq_len)
    return _first_fit(order, lengths, seq_len)


def _next_fit(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    rows: list[list[int]] = []
    used = seq_len  # forces a new row for the first example
    for i, n in enumerate(lengths):
        if used + n > seq_len:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += n
    return rows


def _best_fit(order: list[int], lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    # Rows bucketed by free space; `free_sizes` is the sorted list of non-empty buckets. It has at
    # most seq_len+1 entries, so each placement is O(log seq_len + seq_len) worst case instead of
    # O(rows), which keeps 800k-example packs fast.
    rows: list[list[int]] = []
    buckets: dict[int, list[int]] = {}
    free_sizes: list[int] = []
    for i in order:
        n = lengths[i]
        k = bisect.bisect_left(free_sizes, n)  # smallest free space that fits = fullest row
        if k < len(free_sizes):
            free = free_sizes[k]
            row = buckets[free].pop()
            if not buckets[free]:
                del buckets[free]
                free_sizes.pop(k)
        else:
            free, row = seq_len, len(rows)
            rows.append([])
        rows[row].append(i)
        left = free - n
        if left > 0:
            if left not in buckets:
                buckets[left] = []
                bisect.insort(free_sizes, left)
            buckets[left].append(row)
    return rows


def _first_fit(order: list[int], lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    # A max segment tree over row free space finds the first (lowest-index) row with room in
    # O(log rows); a linear scan would be O(rows) per example and crawl on 800k-example sets.
    size = 1
    while size < max(1, len(order)):
        size *= 2
    tree = [0] * (2 * size)  # leaves: free space of row r (0 for rows not yet opened)
    rows: list[list[int]] = []
    for i in order:
        n = lengths[i]
        if tree[1] >= n:
            node = 1
            while node < size:  # descend, preferring the left (earlier) child
                node = 2 * node if tree[2 * node] >= n else 2 * node + 1
            row = node - size
        else:
            row = len(rows)
            rows.append([])
            node = row + size
            tree[node] = seq_len
        rows[row].append(i)
        tree[node] -= n
        node //= 2
        while node:
            tree[node] = max(tree[2 * node], tree[2 * node + 1])
            node //= 2
    return rows


def pack_rendered(rendered: Sequence[Rendered], seq_len: int, *,
                  strategy: str = "best_fit_decreasing") -> list[list[Rendered]]:
    """`pack` applied to rendered examples: rows of `Rendered`, ready for `collate_packed`."""
    rows = pack([len(r) for r in rendered], seq_len, strategy=strategy)
    return [[rendered[i] for i in row] for row in rows]


def packing_stats(lengths: Sequence[int], rows: Sequence[Sequence[int]], seq_len: int) -> dict[str, float]:
    """Rows, real tokens, capacity and efficiency (the non-padding share of the row tokens)."""
    tokens = sum(lengths[i] for row in rows for i in row)
    capacity = len(rows) * seq_len
    return {
        "examples": sum(len(row) for row in rows),
        "rows": len(rows),
        "tokens": tokens,
        "capacity": capacity,
        "efficiency": tokens / capacity if capacity else 0.0,
    }


SEGMENTS = {"prompt": 1, "cot": 2, "answer": 3}  # values of a batch's `segments` tensor; 0 = padding


def _fill_segments(segments: Any, r: int, start: int, ex: Rendered) -> None:
    """Write `ex`'s span ids into row `r` of `segments` [B,T] from column `start` on."""
    for name, code in SEGMENTS.items():
        a, b = ex.spans[name]
        segments[r, start + a : start + b] = code


def collate_packed(rows: Sequence[Sequence[Rendered]], seq_len: int, pad_id: int = 0, *,
                   mask: str = "bool", mask_dtype: Any = None) -> dict[str, Any]:
    """Tensors for a micro-batch of packed rows (layout §c.4, mask §c.5).

    Returns `input_ids`, `labels`, `position_ids`, `seq_ids` (example index within the row,
    -1 on padding), `weights` (all [B,T]) and `attention_mask` [B,1,T,T]: boolean (True = may
    attend, for SDPA) or, with `mask="additive"`, 0 / dtype-min in `mask_dtype` (for eager).
    An empty row is all padding. When every example carries spans, `segments` [B,T] marks each
    token prompt / cot / answer (`SEGMENTS`; 0 on padding).
    """
    import torch

    b = len(rows)
    with_spans = all(ex.spans for row in rows for ex in row)
    segments = torch.zeros((b, seq_len), dtype=torch.long)  # [B,T]
    input_ids = torch.full((b, seq_len), pad_id, dtype=torch.long)  # [B,T]
    labels = torch.full((b, seq_len), IGNORE_INDEX, dtype=torch.long)  # [B,T]
    position_ids = torch.zeros((b, seq_len), dtype=torch.long)  # [B,T]
    seq_ids = torch.full((b, seq_len), -1, dtype=torch.long)  # [B,T]
    weights = torch.zeros((b, seq_len), dtype=torch.float32)  # [B,T]
    for r, row in enumerate(rows):
        total = sum(len(x) for x in row)
        if total > seq_len:
            raise ValueError(f"collate_packed: row {r} holds {total} tokens, more than seq_len={seq_len}")
        start = 0
        for k, ex in enumerate(row):
            n = len(ex)
            end = start + n
            input_ids[r, start:end] = torch.tensor(ex.input_ids, dtype=torch.long)
            labels[r, start:end] = torch.tensor(ex.labels, dtype=torch.long)
            labels[r, start] = IGNORE_INDEX  # §c.4: never a target across the boundary
            weights[r, start:end] = torch.tensor(ex.weights, dtype=torch.float32)
            position_ids[r, start:end] = torch.arange(n)
            seq_ids[r, start:end] = k
            if with_spans:
                _fill_segments(segments, r, start, ex)
            start = end
        position_ids[r, start:] = torch.arange(seq_len - start)  # pads form their own "sequence"
    weights = weights * (labels != IGNORE_INDEX)  # weights live only on targets
    out = {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "seq_ids": seq_ids,
        "weights": weights,
        "attention_mask": block_causal_mask(seq_ids, mask=mask, dtype=mask_dtype),
    }
    if with_spans:
        out["segments"] = segments
    return out


def block_causal_mask(seq_ids, *, mask: str = "bool", dtype: Any = None):
    """[B,1,T,T] block-diagonal causal mask from `seq_ids` [B,T] (-1 = padding).

    Query i may attend key j iff seq(i) == seq(j) >= 0 and j <= i; a pad query attends to
    itself only, since a fully masked softmax row would be NaN.
    """
    import torch

    if mask not in ("bool", "additive"):
        raise ValueError(f"mask must be 'bool' or 'additive', got {mask!r}")
    t = seq_ids.shape[1]
    same = seq_ids[:, :, None] == seq_ids[:, None, :]  # [B,T,T]
    real = (seq_ids >= 0)[:, :, None]  # [B,T,1]
    causal = torch.ones((t, t), dtype=torch.bool).tril()  # [T,T]
    eye = torch.eye(t, dtype=torch.bool)  # [T,T]
    allowed = (same & real & causal) | eye  # [B,T,T]
    allowed = allowed[:, None]  # [B,1,T,T]
    if mask == "bool":
        return allowed
    dtype = dtype or torch.float32
    out = torch.zeros(allowed.shape, dtype=dtype)
    return out.masked_fill(~allowed, torch.finfo(dtype).min)


def collate_padded(rendered: Sequence[Rendered], pad_id: int = 0, *, seq_len: int | None = None) -> dict[str, Any]:
    """Tensors for the unpacked path: one example per row, right-padded to the longest (or to
    `seq_len`). Same keys as `collate_packed`, but `attention_mask` is the standard 2D [B,T]
    padding mask (1 = real token), which HF turns into causal + padding itself."""
    import torch

    if not rendered:
        raise ValueError("collate_padded: empty batch")
    with_spans = all(ex.spans for ex in rendered)
    longest = max(len(x) for x in rendered)
    t = longest if seq_len is None else seq_len
    if longest > t:
        raise ValueError(f"collate_padded: an example has {longest} tokens, more than seq_len={t}")
    b = len(rendered)
    input_ids = torch.full((b, t), pad_id, dtype=torch.long)  # [B,T]
    labels = torch.full((b, t), IGNORE_INDEX, dtype=torch.long)  # [B,T]
    weights = torch.zeros((b, t), dtype=torch.float32)  # [B,T]
    attention_mask = torch.zeros((b, t), dtype=torch.long)  # [B,T]
    seq_ids = torch.full((b, t), -1, dtype=torch.long)  # [B,T]
    segments = torch.zeros((b, t), dtype=torch.long)  # [B,T]
    for r, ex in enumerate(rendered):
        n = len(ex)
        input_ids[r, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
        labels[r, :n] = torch.tensor(ex.labels, dtype=torch.long)
        weights[r, :n] = torch.tensor(ex.weights, dtype=torch.float32)
        attention_mask[r, :n] = 1
        seq_ids[r, :n] = 0
        if with_spans:
            _fill_segments(segments, r, 0, ex)
    weights = weights * (labels != IGNORE_INDEX)
    position_ids = torch.arange(t).expand(b, t).clone()  # [B,T]
    out = {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "seq_ids": seq_ids,
        "weights": weights,
        "attention_mask": attention_mask,
    }
    if with_spans:
        out["segments"] = segments
    return out


def model_inputs(batch: dict[str, Any], attn_implementation: str, *, dtype: Any = None) -> dict[str, Any]:
    """The keyword arguments for an HF causal LM's forward on a packed batch, for the named
    attention backend; raises for a backend with no isolating path (§c.5: never fall back to
    plain causal attention over the row).

    - `sdpa`: the boolean 4D mask; `eager`: the same as an additive mask in `dtype`;
    - `flash_attention_2`/`flash_attention_3`: no mask, the reset `position_ids` (transformers
      derives `cu_seqlens` from them; needs flash-attn, so GPU only).

    Always `use_cache=False` (see the comment below).
    """
    import torch

    # use_cache=False: training needs no KV cache, and transformers 5 derives packed boundaries
    # from position_ids only when no cache exists; with the default cache (use_cache=True, even
    # in training mode) the mask-free path silently attends across examples.
    out = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
    mask = batch["attention_mask"]
    if mask.dim() != 4:
        raise ValueError("model_inputs expects a packed batch (4D attention_mask from collate_packed)")
    if attn_implementation == "sdpa":
        out["attention_mask"] = mask if mask.dtype == torch.bool else mask == 0
    elif attn_implementation == "eager":
        dtype = dtype or torch.float32
        allowed = mask if mask.dtype == torch.bool else mask == 0
        out["attention_mask"] = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    elif attn_implementation in ("flash_attention_2", "flash_attention_3"):
        pass  # varlen path: isolation comes from position_ids restarting at 0
    else:
        raise ValueError(
            f"no isolating packed-attention path for attn_implementation={attn_implementation!r}; "
            "use sdpa, eager or flash_attention_2"
        )
    return out


def unpack_row(batch: dict[str, Any], row: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) of each example in packed row `row`, in order (§c.8 I6)."""
    seq = batch["seq_ids"][row].tolist()
    ids = batch["input_ids"][row].tolist()
    labs = batch["labels"][row].tolist()
    out: list[tuple[list[int], list[int]]] = []
    for t, s in enumerate(seq):
        if s < 0:
            continue
        if s == len(out):
            out.append(([], []))
        out[s][0].append(ids[t])
        out[s][1].append(labs[t])
    return out
