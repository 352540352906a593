"""Stepwise internalization of chain of thought (ICoT-SI; Deng, Choi & Shieber 2024, "From Explicit
CoT to Implicit CoT: Learning to Internalize CoT Step by Step"), docs/methods/icot.md §f.10.

One model is trained on `prompt || cot #### answer`; as training goes on, the first `k` CoT tokens
of every example are deleted (tokens and labels; the `||` and `####` separators stay), so the
computation has to move into the layers. Per example and visit

    k = min(n_cot, scheduled(step) + o),   P(o) = (1 - e^-l) e^(-l o) for 0 <= o < 99, P(99) = e^(-99 l)

(`o` smooths the switch between removal counts; none at validation nor during pretraining). A CoT shorter than the
scheduled count is removed whole (documented behaviour, not an error). Once the whole CoT is gone
the row is `prompt || #### answer`, exactly the no-CoT layout. `scheduled` follows
`IcotSIConfig`; every increase is a *stage*, and the loop clears the optimizer's moments at the
first step of each new stage until the CoT is fully removed (the stage is capped at the longest
CoT, so no reset happens after that). Only fully internalised evaluations compete for
`best_model/`. The loss is plain completion SFT on the transformed rows, so with nothing removed
this objective is SFT step for step. `finish` writes accuracy against CoT tokens removed
(`si_accuracy_vs_removed.{json,png}`) from the run's metrics. `keep_position` of the original
(position ids continue past removed tokens) is not implemented. Use `data.packing = false`: padded
micro-batches then shrink with the removal, while packed rows, planned for the full lengths, would
only get emptier. Validation runs every `eval.every` steps (set it to the removal interval for
one validation per stage).

Loss terms (named, each with its own normaliser): `ce`, the completion cross-entropy over target
tokens; with `running_sum_weight` > 0 also `rsum`, the running-sum probe of Bai et al. 2025
(`running_sum`; weight included, normalised by probed answer digits), whose linear probe is an
auxiliary module the loop optimises and checkpoints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mathforge.train.objectives import sft

MAX_OFFSET = 99
ALL = 1 << 40  # "remove the whole CoT", larger than any CoT


@dataclass(frozen=True)
class SIState:
    """What the schedule needs from the data: optimizer steps per epoch and the longest CoT; for
    the running-sum probe, the token->digit table and the operand length."""

    steps_per_epoch: int
    max_cot: int
    si: Any  # IcotSIConfig
    digits: tuple[int, ...] = ()
    k_len: int = 0


def _start_every(si: Any, steps_per_epoch: int) -> tuple[int, int]:
    """(first step of removal, steps per removed token)."""
    start = si.pretrain_steps if si.pretrain_steps > 0 else int(round(si.pretrain_epochs * steps_per_epoch))
    every = si.remove_every_steps if si.remove_every_steps > 0 else int(round(steps_per_epoch / si.remove_per_epoch))
    return start, max(1, every)


def removing(step: int, si: Any, steps_per_epoch: int) -> bool:
    """False during pretraining (no removal, no smoothing offsets), True from the first removal step on."""
    return step >= _start_every(si, steps_per_epoch)[0]


def scheduled(step: int, si: Any, steps_per_epoch: int) -> int:
    """Tokens scheduled for removal at optimizer step `step` (0-based); `ALL` = the whole CoT."""
    start, every = _start_every(si, steps_per_epoch)
    if step < start:
        return 0
    n = si.remove_start_from + (step - start) // every
    if 0 <= si.remove_all_when_remove_beyond <= n:
        return ALL
    return n


def stage(step: int, state: SIState) -> int:
    """Removal stage of `step`: the scheduled count, capped at the longest CoT (= fully removed)."""
    return min(scheduled(step, state.si, state.steps_per_epoch), state.max_cot)


def resets_optimizer(cfg: Any) -> bool:
    return bool(cfg.icot_si.reset_optimizer)


def selectable(step: int, state: SIState) -> bool:
    """Only fully internalised models (every CoT token removed) may become the best model."""
    return stage(step, state) >= state.max_cot


def offset_probs(lam: float) -> list[float]:
    """P(o) for o = 0..99 (sums to 1)."""
    if math.isinf(lam):
        return [1.0] + [0.0] * MAX_OFFSET
    q = math.exp(-lam)
    return [(1 - q) * q**o for o in range(MAX_OFFSET)] + [q**MAX_OFFSET]


def sample_offsets(n: int, lam: float, generator: Any) -> list[int]:
    """`n` draws of o by inversion: o >= m exactly when U <= e^(-l m), so o = floor(-ln U / l)."""
    import torch

    u = torch.rand(n, generator=generator, dtype=torch.float64)  # [n], U in [0, 1)
    o = torch.floor(-torch.log(u) / lam).clamp(max=MAX_OFFSET)  # [n]; U = 0 gives inf -> 99
    return [int(x) for x in o]


def remove_cot(rendered: Any, k: int) -> Any:
    """`rendered` without its first `k` CoT tokens (ids, labels, weights; spans shifted)."""
    c0, c1 = rendered.spans["cot"]
    if not 0 <= k <= c1 - c0:
        raise ValueError(f"remove_cot: cannot remove {k} of {c1 - c0} CoT tokens")
    if k == 0:
        return rendered
    cut = slice(c0, c0 + k)

    def drop(xs: list) -> list:
        return xs[: cut.start] + xs[cut.stop :]

    spans = dict(rendered.spans)
    spans["cot"] = (c0, c1 - k)
    spans["answer"] = (c1 - k, rendered.spans["answer"][1] - k)
    return replace(rendered, input_ids=drop(rendered.input_ids), labels=drop(rendered.labels),
                   weights=drop(rendered.weights), meta={**rendered.meta, "cot_removed": k}, spans=spans)


def setup(data: Any, plan: Any, cfg: Any) -> SIState:
    """Check every training example has a `####`-marked answer; measure the longest CoT."""
    from mathforge.data.tasks import ANSWER_MARK

    for i, ex in enumerate(data.train_examples):
        if ANSWER_MARK not in ex.response:
            where = ex.meta.get("id", f"training example #{i}")
            raise ValueError(f"{where}: icot_si needs responses 'cot {ANSWER_MARK} answer'; this one has no "
                             f"'{ANSWER_MARK}', so its CoT cannot be told from its answer")
    max_cot = max(r.cot_len for r in data.train)
    digits: tuple[int, ...] = ()
    k_len = 0
    if cfg.icot_si.running_sum_weight > 0:
        from mathforge.train.objectives.running_sum import _groups, digit_table

        digits = tuple(digit_table(data.tokenizer))
        first = data.train[0]
        ops = _groups([digits[t] for t in first.input_ids[slice(*first.spans["prompt"])]])
        if len(ops) < 2 or len(ops[0]) != len(ops[1]):
            raise ValueError(f"{data.train_examples[0].meta.get('id', 'training example #0')}: running_sum_weight "
                             "needs multiplication prompts 'a * b||' with equal-length operands")
        k_len = len(ops[0])
    return SIState(steps_per_epoch=plan.steps_in_epoch(0), max_cot=max_cot, si=cfg.icot_si, digits=digits,
                   k_len=k_len)


def aux_modules(model: Any, tokenizer: Any, cfg: Any, state: SIState) -> dict[str, Any]:
    """The running-sum probe (a linear map hidden -> 3 + K targets) when its weight is > 0."""
    import torch

    if cfg.icot_si.running_sum_weight <= 0:
        return {}
    return {"probe": torch.nn.Linear(model.config.hidden_size, 3 + state.k_len)}


def counts(batch: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Normalisers: weighted target tokens for `ce`, probed answer digits for `rsum`."""
    import torch

    out = {"ce": batch["weights"][:, 1:].sum()}
    if ctx.state.k_len:
        from mathforge.data.packing import SEGMENTS

        table = torch.tensor(ctx.state.digits, device=batch["input_ids"].device)  # [V]
        is_digit = table[batch["input_ids"]] >= 0  # [B, T]
        out["rsum"] = ((batch["segments"] == SEGMENTS["answer"]) & is_digit).sum()
    return out


def transform(rows: list[list[Any]], ctx: Any) -> list[list[Any]]:
    """Remove `min(n_cot, scheduled + o)` CoT tokens from every example of the micro-batch; the
    offsets come from a generator keyed by (seed, step, micro-batch, rank), so a resumed run
    redraws them exactly; `ctx.evaluating` uses o = 0."""
    state: SIState = ctx.state
    n = scheduled(ctx.step, state.si, state.steps_per_epoch)
    flat = [r for row in rows for r in row]
    if ctx.evaluating or not removing(ctx.step, state.si, state.steps_per_epoch):
        offsets = [0] * len(flat)
    else:
        offsets = sample_offsets(len(flat), state.si.smoothing_lambda, ctx.generator(salt="icot_si"))
    it = iter(offsets)
    return [[remove_cot(r, min(r.cot_len, n + next(it))) for r in row] for row in rows]


def loss(model: Any, batch: dict[str, Any], ctx: Any) -> tuple[dict[str, Any], dict]:
    """Term sums: completion CE on the (transformed) rows (remaining CoT, `####`, answer, EOS) and,
    if on, the weighted running-sum probe error."""
    si = ctx.cfg.icot_si
    probe_on = si.running_sum_weight > 0
    out = sft.forward(model, batch, hidden_states=probe_on)
    losses, mask = sft.token_losses(out.logits, batch["labels"])  # [B, T-1]
    terms = {"ce": (losses * sft.token_weights(batch, mask)).sum()}
    if probe_on:
        from mathforge.train.objectives import running_sum

        hidden = out.hidden_states
        layer = si.running_sum_layer if si.running_sum_layer >= 0 else (len(hidden) - 1) // 2
        if layer >= len(hidden) - 1:
            raise ValueError(f"icot_si.running_sum_layer={layer}: the model has {len(hidden) - 1} layers")
        tgt, where = running_sum.targets(batch, list(ctx.state.digits), ctx.state.k_len)
        terms["rsum"] = si.running_sum_weight * running_sum.probe_loss(ctx.aux["probe"], hidden[layer], tgt, where)
    return terms, {"targets": int(mask.sum())}


def removal_curve(metrics_file: Path) -> list[dict[str, float]]:
    """(step, CoT tokens removed, accuracy) of every evaluation in a run's metrics.jsonl."""
    stages: dict[int, int] = {}
    evals: list[tuple[int, dict]] = []
    for line in Path(metrics_file).read_text().splitlines():
        rec = json.loads(line)
        if "stage" in rec:
            stages[rec["step"]] = rec["stage"]
        if "eval_accuracy" in rec:
            evals.append((rec["step"], rec))
    out = []
    for step, rec in evals:
        before = [s for s in stages if s <= step]
        if before:
            out.append({"step": step, "removed": stages[max(before)], "accuracy": rec["eval_accuracy"],
                        "ci95_wilson": rec.get("eval_ci95_wilson")})
    return out


def finish(out_dir: Path, state: SIState) -> None:
    """Write the accuracy-against-removal curve of the run (json, and a png when matplotlib is there)."""
    metrics = Path(out_dir) / "metrics.jsonl"
    if not metrics.is_file():
        return
    curve = removal_curve(metrics)
    (Path(out_dir) / "si_accuracy_vs_removed.json").write_text(json.dumps(
        {"max_cot": state.max_cot, "points": curve}, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p["removed"] for p in curve], [p["accuracy"] for p in curve], "o-")
    ax.set_xlabel(f"CoT tokens removed (of {state.max_cot})")
    ax.set_ylabel("exact match (greedy)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("ICoT-SI: accuracy against CoT removed")
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "si_accuracy_vs_removed.png", dpi=100)
    plt.close(fig)
