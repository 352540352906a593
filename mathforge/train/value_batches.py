"""Grouped value-training batches for TSMC's value (twist) model (Feng et al. 2025; docs/methods/tsmc.md §e.6-§e.7).

The unit of the batch plan is one *problem* with its K samples (`ValueGroup`), so an optimizer step
always sees whole groups, which contrastive twist learning needs. A collated micro-batch is the
samples of its groups, right-padded, with the token position of each step end (step-end character
offsets mapped to tokens; the final step ends at EOS, or at the last token of a truncated sample).
Also here: the model's value logits at step ends, and the held-out evaluation of a value model (AUC
of the final-step value against correctness, expected calibration error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ValueGroup:
    problem_id: str
    index: int  # position in the training set: the problem's id inside batches
    seqs: list[list[int]] = field(default_factory=list)
    prompt_lens: list[int] = field(default_factory=list)
    step_ends: list[list[int]] = field(default_factory=list)  # token positions, final step included
    correct: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(s) for s in self.seqs)

    @property
    def n_correct(self) -> int:
        return sum(self.correct)


def render_group(rec: dict[str, Any], tokenizer, index: int, seq_len: int, where: str) -> ValueGroup:
    """Token ids and step-end token positions of one problem's samples."""
    prompt = tokenizer(rec["prompt"])["input_ids"]
    if len(prompt) >= seq_len:
        raise ValueError(f"{where}: prompt has {len(prompt)} tokens, data.seq_len is {seq_len}")
    g = ValueGroup(problem_id=rec["problem_id"], index=index)
    for s in rec["samples"]:
        enc = tokenizer(s["text"], add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        ends = []
        for c in s.get("step_end_chars", []):  # the token holding the delimiter's last character
            j = next((t for t, (a, b) in enumerate(offsets) if a <= c - 1 < b), None)
            if j is not None and (not ends or len(prompt) + j > ends[-1]):
                ends.append(len(prompt) + j)
        seq = prompt + ids + ([tokenizer.eos_token_id] if s.get("eos", True) else [])
        seq = seq[:seq_len]
        ends = [e for e in ends if e < len(seq) - 1] + [len(seq) - 1]  # the final step ends at EOS / the end
        g.seqs.append(seq)
        g.prompt_lens.append(len(prompt))
        g.step_ends.append(ends)
        g.correct.append(int(bool(s["correct"])))
    if not g.seqs:
        raise ValueError(f"{where}: problem {rec['problem_id']!r} has no samples")
    return g


def load_value_groups(path: str, tokenizer, seq_len: int) -> list[ValueGroup]:
    from mathforge.value_data import read_value_data

    return [render_group(rec, tokenizer, i, seq_len, f"{path} problem {rec['problem_id']}")
            for i, rec in enumerate(read_value_data(path))]


def collate_groups(groups: list[ValueGroup], pad_id: int) -> dict[str, Any]:
    """The samples of `groups` as one right-padded batch (S samples, L tokens, T steps)."""
    import torch

    seqs = [s for g in groups for s in g.seqs]
    width = max(len(s) for s in seqs)
    n_steps = max(len(e) for g in groups for e in g.step_ends)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # [S, L]
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    resp = torch.zeros(len(seqs), width, dtype=torch.bool)
    step_pos = torch.zeros(len(seqs), n_steps, dtype=torch.long)  # [S, T]
    n_of = torch.zeros(len(seqs), dtype=torch.long)
    cols: dict[str, list] = {"problem": [], "correct": [], "k": [], "n_correct": [], "t_max": []}
    i = 0
    for g in groups:
        t_max = max(len(e) for e in g.step_ends)
        for seq, plen, ends, r in zip(g.seqs, g.prompt_lens, g.step_ends, g.correct, strict=True):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            resp[i, plen : len(seq)] = True
            step_pos[i] = torch.tensor(ends + [ends[-1]] * (n_steps - len(ends)))  # short samples: final score
            n_of[i] = len(ends)
            for key, v in (("problem", g.index), ("correct", r), ("k", len(g.seqs)), ("n_correct", g.n_correct),
                           ("t_max", t_max)):
                cols[key].append(v)
            i += 1
    return {"input_ids": ids, "attention_mask": mask, "response_mask": resp, "step_pos": step_pos,
            "n_steps": n_of, **{k: torch.tensor(v) for k, v in cols.items()}}


def value_logits(model, batch: dict[str, Any]):
    """h at every position [S, L] (float32)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def step_logits(h, batch: dict[str, Any]):
    """h at each step end [S, T]; columns past a sample's last step repeat its final score."""
    return h.gather(1, batch["step_pos"])


def evaluate_value_model(model, groups: list[ValueGroup], pad_id: int, batch_problems: int = 8) -> dict[str, float]:
    """AUC of the final-step value against correctness (Mann-Whitney, ties count 1/2) pooled over
    problems and within problems (the mean over problems with both labels: what SMC weights use, since
    they are normalised within a problem's group; CTL learns values only up to a per-problem factor),
    and the expected calibration error over 10 equal-width bins."""
    import torch

    values, labels, problems = [], [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(groups), batch_problems):
            batch = collate_groups(groups[i : i + batch_problems], pad_id)
            batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
            last = batch["step_pos"].gather(1, (batch["n_steps"] - 1)[:, None])  # [S, 1] final step end
            values += torch.sigmoid(value_logits(model, batch).gather(1, last).squeeze(1)).tolist()
            labels += batch["correct"].tolist()
            problems += batch["problem"].tolist()
    model.train()
    return {"value_auc": auc(values, labels), "value_auc_within": within_auc(values, labels, problems),
            "value_ece": calibration_error(values, labels),
            "value_mean": sum(values) / max(len(values), 1), "value_label_rate": sum(labels) / max(len(labels), 1)}


def auc(scores: list[float], labels: list[int]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def within_auc(scores: list[float], labels: list[int], groups: list) -> float:
    """Mean over groups that have both labels of the AUC inside the group."""
    by: dict = {}
    for s, y, g in zip(scores, labels, groups, strict=True):
        by.setdefault(g, ([], []))
        by[g][0].append(s)
        by[g][1].append(y)
    aucs = [auc(s, y) for s, y in by.values() if 0 < sum(y) < len(y)]
    return sum(aucs) / len(aucs) if aucs else float("nan")


def calibration_error(scores: list[float], labels: list[int], bins: int = 10) -> float:
    total, err = len(scores), 0.0
    for b in range(bins):
        members = [(s, y) for s, y in zip(scores, labels, strict=True)
                   if b / bins <= s < (b + 1) / bins or (b == bins - 1 and s == 1.0)]
        if members:
            err += len(members) / total * abs(sum(s for s, _ in members) / len(members)
                                              - sum(y for _, y in members) / len(members))
    return err
