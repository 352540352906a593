"""Held-out evaluation during and after training: token loss and greedy exact-match accuracy.

Exact match goes through the grading module (`extract_answer` on the decoded completion, then
`is_equivalent(pred=..., gold=...)`), the same path the evaluation harness uses, so a training-time
accuracy and a later `mathforge eval` number agree. Prompts are the rendered prompt ids (BOS +
prompt), exactly the prefix the model saw in training; decoding is greedy (HF `generate`,
`do_sample=False`) from left-padded batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mathforge.data.records import Example
from mathforge.grading.metrics import wilson_interval
from mathforge.infer.types import left_pad


def greedy_completions(model: Any, tokenizer: Any, prompts: Sequence[list[int]], *, max_new_tokens: int,
                       batch_size: int = 64) -> list[str]:
    """Greedy continuation text (special tokens dropped) of each prompt id list."""
    import torch

    model.eval()
    out: list[str] = []
    device = next(model.parameters()).device
    # Longest prompts first so each batch pads little; results are put back in input order.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    texts: dict[int, str] = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = left_pad([prompts[i] for i in idx], tokenizer.pad_token_id)
            gen = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )  # [B, L + new]
            new = gen[:, ids.shape[1] :]  # [B, new]
            for i, row in zip(idx, new.tolist(), strict=True):
                texts[i] = tokenizer.decode(row, skip_special_tokens=True)
    out = [texts[i] for i in range(len(prompts))]
    return out


def exact_match(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_new_tokens: int,
                batch_size: int = 64, extract_style: str = "auto", keep_samples: bool = False) -> dict[str, Any]:
    """Greedy-decode every example's prompt and grade the extracted answer against `example.answer`;
    `keep_samples` keeps each problem's record (with the example's `difficulty` where it has one, for
    per-level breakdowns such as `mathforge seeds`)."""
    from mathforge.data.render import render
    from mathforge.grading import extract_answer, is_equivalent

    if not examples:
        return {"accuracy": float("nan"), "correct": 0, "n_problems": 0, "ci95_wilson": list(wilson_interval(0, 0))}
    prompts = []
    for ex in examples:
        r = render(ex, tokenizer)
        prompts.append(r.input_ids[: r.prompt_len])
    completions = greedy_completions(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    samples, correct = [], 0
    for ex, text in zip(examples, completions, strict=True):
        pred = extract_answer(text, style=extract_style)
        gold = extract_answer(ex.answer, style=extract_style) if "####" in ex.answer else ex.answer
        ok = bool(is_equivalent(pred=pred, gold=gold))
        correct += ok
        if keep_samples:
            samples.append({"prompt": ex.prompt, "completion": text, "pred": pred, "gold": gold, "correct": ok,
                            **({"difficulty": ex.difficulty} if ex.difficulty is not None else {})})
    # The one Wilson interval of mathforge, under the key names of eval and grade (fractions).
    ci = list(wilson_interval(correct, len(examples)))
    result = {"accuracy": correct / len(examples), "correct": correct, "n_problems": len(examples), "ci95_wilson": ci}
    if keep_samples:
        result["samples"] = samples
    return result


def eval_loss(model: Any, rendered: Sequence[Any], *, seq_len: int, pad_id: int, rows_per_batch: int = 16) -> float:
    """Token-mean completion loss of held-out rendered examples (packed rows, no noise)."""
    import torch

    from mathforge.data.packing import collate_packed, pack
    from mathforge.train.objectives import sft

    if not rendered:
        return float("nan")
    rows = [[rendered[i] for i in row] for row in pack([len(r) for r in rendered], seq_len)]
    total, count = 0.0, 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), rows_per_batch):
            batch = collate_packed(rows[start : start + rows_per_batch], seq_len, pad_id)
            device = next(model.parameters()).device
            batch = {k: v.to(device) for k, v in batch.items()}
            loss_sum, n_tokens, _ = sft.loss(model, batch, None)
            total += float(loss_sum)
            count += float(n_tokens)
    return total / max(count, 1e-12)
