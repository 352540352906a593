"""Running-sum auxiliary loss for multiplication (Bai et al. 2025, "Why Can't Transformers Learn
Multiplication? Reverse-Engineering Reveals Long-Range Dependency Pitfalls").

A model trained on `a * b||#### c` with no chain of thought stalls in a local optimum that lacks
the long-range dependencies; a linear probe on a middle layer that must regress the *running sum*
gives the inductive bias that makes the product learnable. Here the probe reads the hidden state
`hidden_states[layer]` (the input of block `layer`) at each position that predicts an answer
digit c_k (the token before it) and regresses, scaled to about unit range,

    c_hat_k / 100,  s_k / 100,  carry_k / 10,  a_i * b_(k-i) / 100 for i = 0..K-1 (0 out of range)

with s_k = sum_(i+j=k) a_i b_j, carry_0 = 0, c_hat_k = s_k + carry_k, carry_(k+1) = c_hat_k // 10
(digits least-significant first, as the implicit-CoT format writes them, docs/methods/icot.md §f.3). The
intermediate products are this library's addition to the paper's running sum. The loss term is
the squared error summed over features and averaged over probed positions.

Operands and answer digits are read from the batch itself (prompt and answer segments), so the
term works on padded or packed rows and on rows whose CoT has been (partly) removed.
"""

from __future__ import annotations

from typing import Any


def digit_table(tokenizer: Any) -> list[int]:
    """Token id -> the digit it spells (a leading space allowed), -1 for any other token."""
    table = [-1] * len(tokenizer)
    for tid in range(len(tokenizer)):
        text = tokenizer.decode([tid]).strip()
        if len(text) == 1 and text.isdigit():
            table[tid] = int(text)
    return table


def _groups(digits: list[int]) -> list[list[int]]:
    """Maximal runs of digits (-1 separates runs)."""
    out: list[list[int]] = [[]]
    for d in digits:
        if d < 0:
            if out[-1]:
                out.append([])
        else:
            out[-1].append(d)
    return [g for g in out if g]


def features(a: list[int], b: list[int]) -> list[list[float]]:
    """Probe targets for answer digits k = 0..2K-1 of a*b (digit lists least-significant first)."""
    k_len, carry, rows = len(a), 0, []
    for k in range(2 * k_len):
        prods = [a[i] * b[k - i] if 0 <= k - i < k_len else 0 for i in range(k_len)]
        s = sum(prods)
        c = s + carry
        rows.append([c / 100.0, s / 100.0, carry / 10.0] + [p / 100.0 for p in prods])
        carry = c // 10
    return rows


def targets(batch: dict[str, Any], table: list[int], k_len: int) -> tuple[Any, Any]:
    """(targets [B, T, 3+K], mask [B, T]): features at the positions that predict answer digits."""
    import torch

    from mathforge.data.packing import SEGMENTS

    if "segments" not in batch:
        raise ValueError("running-sum loss needs rendered spans (batch has no 'segments')")
    ids, seg, sid = (batch[k].tolist() for k in ("input_ids", "segments", "seq_ids"))
    b_len, t_len = len(ids), len(ids[0])
    tgt = torch.zeros((b_len, t_len, 3 + k_len), dtype=torch.float32)  # [B, T, F]
    mask = torch.zeros((b_len, t_len), dtype=torch.bool)  # [B, T]
    for r in range(b_len):
        t = 0
        while t < t_len:  # one example (a run of equal seq_ids) at a time
            if sid[r][t] < 0:
                t += 1
                continue
            end = t
            while end < t_len and sid[r][end] == sid[r][t]:
                end += 1
            prompt = [table[x] for x, s in zip(ids[r][t:end], seg[r][t:end], strict=True) if s == SEGMENTS["prompt"]]
            ops = _groups(prompt)
            if len(ops) < 2 or len(ops[0]) != k_len or len(ops[1]) != k_len:
                raise ValueError(f"running-sum loss: row {r} does not start with two {k_len}-digit operands")
            answer_pos = [p for p in range(t, end) if seg[r][p] == SEGMENTS["answer"] and table[ids[r][p]] >= 0]
            for pos, row in zip(answer_pos, features(ops[0], ops[1]), strict=False):
                tgt[r, pos - 1] = torch.tensor(row)
                mask[r, pos - 1] = True
            t = end
    return tgt, mask


def probe_loss(probe: Any, hidden: Any, tgt: Any, mask: Any) -> Any:
    """Summed squared error of `probe(hidden)` [B, T, F] against `tgt` at `mask` positions."""
    pred = probe(hidden[mask])  # [N, F]
    return ((pred.float() - tgt[mask].to(pred.device)) ** 2).sum()
