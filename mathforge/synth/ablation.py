"""Does the synthetic data help? The with/without comparison of the JiuZhang3.0-style pipeline
(Zhou et al. 2024; docs/methods/synthesis.md §d.11 trains on the synthetic data, then on an instruction set).

Two arms share everything but the training file: the model preset, tokenizer, optimizer,
number of optimizer steps, rows per step and seed. Arm `without` trains on an instruction set
(`sft`, e.g. GSM8K train); arm `with` on the same set plus the kept synthetic records. Both are
written as `mathforge train` recipes (this package does not import the trainer, docs/architecture.md).

Both arms use one tokenizer: a byte-level BPE built from the `without` arm's texts (instruction set
and held-out problems, what that arm would build for itself) and saved in `tokenizer/`, which both
recipes name (`data.tokenizer_dir`); with `init` (a pretrained model) both use its tokenizer. So the
arms differ in their training file only, not in their vocabularies.

Held-out measure: the bits per byte of each held-out gold solution given its question,
`-log2 p(solution | question) / len(solution in UTF-8)` (comparable across tokenizers too, as
byte-level BPE is lossless). The difference is paired per problem and gets a percentile-bootstrap
interval over problems. Run-to-run noise is measured by training each arm with several seeds
(`--set seed=S --set out_dir=FOLDER/ARM-seedS`) and comparing groups of runs (`arms=` with
`+`-joined names): each problem's bits/byte is averaged over a group's runs, and the seed-by-seed
paired differences are listed beside the pooled one with their spread (mean, standard deviation,
range, how many are positive): the interval over problems does not include run-to-run noise, and on
the demonstration the seed-by-seed differences changed sign while each interval excluded zero. The
loop's greedy exact match comes with its Wilson interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARMS = ("without", "with")


@dataclass
class AblationConfig:
    """Budget and model shared by both arms. `steps` optimizer updates of `micro_batch_size` x
    `grad_accum` packed rows of `seq_len` tokens; `n_heldout` held-out problems (first of the file)."""

    steps: int = 250
    micro_batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 1024
    lr: float = 3e-3
    preset: str = "nano"
    init: str = ""  # a local HF folder to fine-tune instead (full-size runs); its tokenizer is used
    vocab_size: int = 4096
    seed: int = 0
    n_heldout: int = 300
    n_accuracy: int = 100
    max_new_tokens: int = 256

    def __post_init__(self) -> None:
        for name in ("steps", "micro_batch_size", "grad_accum", "seq_len", "vocab_size", "n_heldout", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"ablation.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.n_accuracy < 0:
            raise ValueError("ablation.lr must be > 0 and ablation.n_accuracy >= 0")


def arm_recipe(train_file: str, heldout_file: str, out_dir: str, cfg: AblationConfig, tokenizer_dir: str = ""
               ) -> dict[str, Any]:
    """The `mathforge train` recipe (as a table) of one arm; only `train_file`/`out_dir` differ."""
    recipe = {
        "out_dir": out_dir, "objective": "sft", "seed": cfg.seed, "log_every": 25, "checkpoint_every": 100,
        "data": {"task": "file", "train_file": train_file, "eval_file": heldout_file, "question_key": "input",
                 "response_key": "output", "prompt_template": "{question}", "n_train": 10**9,
                 "n_eval": cfg.n_heldout, "seq_len": cfg.seq_len, "packing": True, "tokenizer": "bpe",
                 "vocab_size": cfg.vocab_size},
        "model": {"init": cfg.init} if cfg.init else {"preset": cfg.preset},
        "optim": {"lr": cfg.lr, "schedule": "cosine", "warmup_ratio": 0.05, "min_lr_ratio": 0.05,
                  "micro_batch_size": cfg.micro_batch_size, "grad_accum": cfg.grad_accum,
                  "max_steps": cfg.steps},
        "eval": {"every": 0, "n_problems": cfg.n_accuracy, "max_new_tokens": cfg.max_new_tokens, "batch_size": 32},
    }
    if tokenizer_dir:
        recipe["data"]["tokenizer_dir"] = tokenizer_dir
    return recipe


def ablation_files(synthetic: list[dict], sft: list[dict], heldout: list[dict], out_dir: str | Path,
                   cfg: AblationConfig) -> dict[str, int]:
    """Write `without.jsonl`, `with.jsonl`, `heldout.jsonl` ({input, output} records) and the two
    recipes `without.toml`, `with.toml`; returns counts. Records are already {input, output}."""
    from mathforge.synth.io import write_jsonl
    from mathforge.synth.training import toml_dumps

    if not sft:
        raise ValueError("ablation: the instruction (sft) set is empty")
    if not synthetic:
        raise ValueError("ablation: no synthetic record to add (the two arms would be the same run)")
    if not heldout:
        raise ValueError("ablation: the held-out set is empty")
    out = Path(out_dir)
    heldout = heldout[: cfg.n_heldout]
    held_inputs = {r["input"] for r in heldout}
    leaked = [r for r in [*sft, *synthetic] if r["input"] in held_inputs]
    if leaked:
        raise ValueError(f"ablation: {len(leaked)} training records have a held-out question, "
                         f"e.g. {leaked[0]['input'][:80]!r}")
    write_jsonl(out / "without.jsonl", sft)
    write_jsonl(out / "with.jsonl", [*sft, *synthetic])
    write_jsonl(out / "heldout.jsonl", heldout)
    tok_dir = ""
    if not cfg.init:  # one vocabulary for both arms: the one the `without` arm would build
        from mathforge.data.tokenizer import build_tokenizer

        texts = [t for r in [*sft, *heldout] for t in (r["input"], r["output"])]
        tok_dir = str((out / "tokenizer").resolve())
        build_tokenizer(texts, kind="bpe", vocab_size=cfg.vocab_size).save_pretrained(tok_dir)
    for arm in ARMS:
        recipe = arm_recipe(str((out / f"{arm}.jsonl").resolve()), str((out / "heldout.jsonl").resolve()),
                            str(out / arm), cfg, tokenizer_dir=tok_dir)
        (out / f"{arm}.toml").write_text(toml_dumps(recipe), encoding="utf-8")
    return {"sft": len(sft), "synthetic": len(synthetic), "heldout": len(heldout)}


def solution_bits(model: Any, tokenizer: Any, records: list[dict]) -> list[tuple[float, int]]:
    """Per record: (-log2 p(output | input) in bits, UTF-8 bytes of output), rendered exactly as
    training renders (`[bos] + ids(input) + ids(output)`); the closing EOS is not counted."""
    import torch

    from mathforge.data.records import Example
    from mathforge.data.render import IGNORE_INDEX, render

    model.eval()
    out = []
    with torch.no_grad():
        for rec in records:
            r = render(Example(rec["input"], rec["output"]), tokenizer)
            ids = torch.tensor([r.input_ids[:-1]])  # [1, T]: drop the EOS
            labels = torch.tensor(r.labels[:-1])  # [T]
            logits = model(input_ids=ids).logits[0, :-1].float()  # [T-1, V]: position t predicts t+1
            target = labels[1:]  # [T-1]
            mask = target != IGNORE_INDEX
            nll = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
            out.append((float(nll) / math.log(2), len(rec["output"].encode("utf-8"))))
    return out


def slow_solution_bits(model: Any, tokenizer: Any, rec: dict) -> float:
    """The same quantity token by token (the obvious way; for tests)."""
    import torch

    from mathforge.data.records import Example
    from mathforge.data.render import render

    r = render(Example(rec["input"], rec["output"]), tokenizer)
    bits = 0.0
    with torch.no_grad():
        for t in range(r.prompt_len, len(r.input_ids) - 1):
            logits = model(input_ids=torch.tensor([r.input_ids[:t]])).logits[0, -1].float()  # [V]
            bits -= float(torch.log_softmax(logits, -1)[r.input_ids[t]]) / math.log(2)
    return bits


def _group(arm: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = tuple(arm.split("+")) if isinstance(arm, str) else tuple(arm)
    if not names or not all(names):
        raise ValueError(f"compare: empty run name in {arm!r}")
    return names


def compare_arms(folder: str | Path, *, arms=ARMS, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Score two trained runs, or two groups of runs, of `folder` (default `without` and `with`) on
    `heldout.jsonl`; write `comparison.json`/`.md` (`comparison-A-vs-B.*` for other runs).

    An arm may be a group (`"with+with-seed1"` or a tuple of names): its per-problem bits/byte is the
    mean over the group's runs, and when both groups have as many runs, the i-th runs are also
    compared pairwise (`per_pair`, e.g. seed by seed)."""
    import numpy as np

    from mathforge.grading.metrics import bootstrap_ci
    from mathforge.models import load_model
    from mathforge.synth.io import load_records

    folder = Path(folder)
    groups = [_group(a) for a in arms]
    if len(groups) != 2:
        raise ValueError(f"compare: expected two arms, got {len(groups)}")
    held = load_records(folder / "heldout.jsonl", required=("input", "output"))
    result: dict[str, Any] = {"heldout": len(held), "arms": {}}
    per_run = {}
    for run in dict.fromkeys(r for g in groups for r in g):
        model_dir = folder / run / "model"
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir}: not trained yet (run mathforge train {folder}/<arm>.toml)")
        model, tok = load_model(model_dir, device="cpu")
        bits = solution_bits(model, tok, held)
        bpb = np.array([b / max(n, 1) for b, n in bits])  # [N] bits per byte, per problem
        per_run[run] = bpb
        lo, hi = bootstrap_ci(bpb, n_boot=n_boot, seed=seed)
        run_out = {"bits_per_byte": float(bpb.mean()), "bpb_ci": [lo, hi],
                   "pooled_bits_per_byte": sum(b for b, _ in bits) / sum(n for _, n in bits),
                   "vocab_size": len(tok)}
        run_out |= _final_metrics(folder / run)
        result["arms"][run] = run_out
    base, other = ("+".join(g) for g in groups)
    diff = np.mean([per_run[r] for r in groups[1]], axis=0) - np.mean([per_run[r] for r in groups[0]], axis=0)
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)  # diff [N]; negative: `other` helped
    result["arms_compared"] = [base, other]
    result["bpb_difference"] = {"mean": float(diff.mean()), "ci": [lo, hi], "better_on": int((diff < 0).sum())}
    if len(groups[0]) == len(groups[1]) > 1:
        result["per_pair"] = []
        for a, b in zip(*groups, strict=True):
            d = per_run[b] - per_run[a]  # [N]
            lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
            result["per_pair"].append({"runs": [a, b], "mean": float(d.mean()), "ci": [lo, hi]})
        means = np.array([p["mean"] for p in result["per_pair"]])  # [pairs]: the run-to-run spread
        result["across_pairs"] = {"n": len(means), "mean": float(means.mean()), "sd": float(means.std(ddof=1)),
                                  "min": float(means.min()), "max": float(means.max()),
                                  "positive": int((means > 0).sum())}
    name = "comparison" if (base, other) == ARMS else f"comparison-{base}-vs-{other}"
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (folder / f"{name}.md").write_text(comparison_markdown(result), encoding="utf-8")
    return result


def _final_metrics(run_dir: Path) -> dict[str, Any]:
    """Accuracy (Wilson CI) and the training summary from the loop's `metrics.jsonl`."""
    from mathforge.train.logging import read_metrics

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run wrote no metrics")
    rows = read_metrics(path)
    final = next((r for r in reversed(rows) if "eval_accuracy" in r), {})
    train = [r for r in rows if "loss" in r]
    return {"accuracy": final.get("eval_accuracy"), "ci95_wilson": final.get("eval_ci95_wilson"),
            "n_problems": final.get("eval_n_problems"), "steps": max((r.get("step", 0) for r in rows), default=0),
            "last_train_loss": train[-1]["loss"] if train else None}


def comparison_markdown(res: dict[str, Any]) -> str:
    d, (base, other) = res["bpb_difference"], res["arms_compared"]
    lines = [f"Held-out: {res['heldout']} problems (bits per byte of the gold solution given the question; "
             "lower is better; 95% percentile-bootstrap intervals over problems).", "",
             "| arm | bits/byte (mean over problems) | 95% CI | pooled bits/byte | exact match | 95% Wilson CI |",
             "|---|---|---|---|---|---|"]
    for arm, a in res["arms"].items():
        acc = "n/a" if a["accuracy"] is None else f"{a['accuracy']:.3f} (n={a['n_problems']})"
        ci = "n/a" if a["accuracy"] is None else f"[{a['ci95_wilson'][0]:.3f}, {a['ci95_wilson'][1]:.3f}]"
        lines.append(f"| {arm} | {a['bits_per_byte']:.4f} | [{a['bpb_ci'][0]:.4f}, {a['bpb_ci'][1]:.4f}] | "
                     f"{a['pooled_bits_per_byte']:.4f} | {acc} | {ci} |")
    lines += ["", f"Paired difference ({other} − {base}): {d['mean']:+.4f} bits/byte, 95% CI "
              f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]; `{other}` is lower on {d['better_on']} of "
              f"{res['heldout']} problems."]
    for p in res.get("per_pair", []):
        lines.append(f"- {p['runs'][1]} − {p['runs'][0]}: {p['mean']:+.4f} [{p['ci'][0]:+.4f}, {p['ci'][1]:+.4f}]")
    if "across_pairs" in res:
        a = res["across_pairs"]
        lines += ["", f"Across the {a['n']} pairs (the run-to-run spread, which the intervals over problems do not "
                  f"include): mean {a['mean']:+.4f}, standard deviation {a['sd']:.4f}, range [{a['min']:+.4f}, "
                  f"{a['max']:+.4f}]; positive (`{other}` worse) in {a['positive']} of {a['n']}."]
    return "\n".join(lines) + "\n"
