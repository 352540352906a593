"""S3 and S9 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.5, §d.11): the data
and recipes that train the synthesis model and the final model on the one training loop.

`mathforge.synth` may not import the trainer (docs/architecture.md), so these functions write JSONL files
and TOML recipes that `mathforge train` runs unchanged.

- S3a, teacher (KD) data: the teacher answers prompts through any engine (S4's `run_generation`
  with `TEACHER_STOPS`, the original's stops `` ```output `` and `---`); `kd_examples` keeps the
  finished answers as `{question: raw prompt, response: teacher output}`, counting what it drops.
- S3b, the synthesis model: `synthesizer_recipe` — prompt-masked SFT on the raw prompt (no chat
  wrapper), LR 1e-5, 5 epochs, weight decay 0.1, no warm-up, cosine, 2,048 tokens (§d.5).
- S9: `stage_files` writes the pre-training set (synthetic CoT and tool records) and the SFT set,
  each shuffled with a seed within its stage. The loop shuffles the rows it trains on, so the
  curriculum "all PT, then all SFT" is kept by training the stages as two consecutive runs, the
  second starting from the first's model; `s9_recipes` splits one WSD schedule (3% warm-up, decay
  over the last 15% to a 10% floor, LR 1e-5, one epoch, packed rows of 2,049 tokens) across them,
  with the stage lengths estimated from character counts. What differs from one run: the optimizer
  moments restart at the second stage, and rows are packed best-fit within a stage (docs/methods/packing.md §c.3 option),
  not next-fit. Loss is on outputs only in both stages (the SFT objective masks the prompt).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

TEACHER_STOPS = ["```output", "---"]


def kd_examples(generations: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Teacher generations -> `{question, response, id, level}`; drops cut-off and empty answers."""
    out, dropped = [], Counter()
    for gen in generations:
        text = (gen.get("generated_text") or "").strip()
        if not isinstance(gen.get("prompt"), str):
            dropped["no_prompt"] += 1
        elif not text:
            dropped["empty"] += 1
        elif gen.get("finish_reason") == "length":
            dropped["truncated"] += 1
        else:
            out.append({"question": gen["prompt"], "response": text, "id": gen.get("id"), "level": gen.get("level")})
    return out, {"generations": len(generations), "kept": len(out)} | {f"dropped_{k}": v for k, v in dropped.items()}


def _model_table(init: str, preset: str, overrides: dict | None) -> dict[str, Any]:
    return {"init": init} if init else {"preset": preset, "overrides": dict(overrides or {})}


def synthesizer_recipe(kd_file: str, out_dir: str, *, init: str = "", preset: str = "nano",
                       seq_len: int = 2048, model_overrides: dict | None = None, **optim: Any) -> dict[str, Any]:
    """A `mathforge train` recipe (as a table) fine-tuning the synthesis model on teacher data (§d.5).
    Global batch 32 = micro_batch_size * grad_accum (* processes); `optim` overrides any optim key."""
    return {
        "out_dir": out_dir, "objective": "sft", "seed": 42,
        "data": {"task": "file", "train_file": kd_file, "question_key": "question", "response_key": "response",
                 "prompt_template": "{question}", "seq_len": seq_len, "packing": False, "n_eval": 0,
                 "tokenizer": "bpe"},
        "model": _model_table(init, preset, model_overrides),
        "optim": {"lr": 1e-5, "weight_decay": 0.1, "schedule": "cosine", "warmup_ratio": 0.0, "epochs": 5.0,
                  "micro_batch_size": 4, "grad_accum": 8, "min_lr_ratio": 0.0} | optim,
        "eval": {"n_problems": 0},
    }


def to_io_record(rec: dict, where: str, question_key: str = "", response_key: str = "") -> dict[str, str]:
    """A record in the training format `{input, output}`: kept if it has both, else built from a
    question/answer pair as `## Question\\n{q}\\n\\n## Solution\\n` (the format of §d.7)."""
    if isinstance(rec.get("input"), str) and isinstance(rec.get("output"), str) and not question_key:
        return {"input": rec["input"], "output": rec["output"]}
    qk, rk = question_key or "question", response_key or "answer"
    q, r = rec.get(qk), rec.get(rk)
    if not isinstance(q, str) or not isinstance(r, str):
        raise ValueError(f"{where}: needs string fields input/output, or {qk!r}/{rk!r}")
    return {"input": f"## Question\n{q}\n\n## Solution\n", "output": r}


def stage_files(pt_records: list[dict], sft_records: list[dict], out_dir: str | Path, *, seed: int = 0
                ) -> dict[str, Any]:
    """Write `stage1_pt.jsonl` and `stage2_sft.jsonl` (each shuffled with `seed`) and their
    concatenation `pt_then_sft.jsonl` (the original's single ordered file); returns counts."""
    from mathforge.synth.io import write_jsonl

    out = Path(out_dir)
    if not pt_records:
        raise ValueError("S9: the pre-training (synthetic) set is empty")
    rng = random.Random(seed)
    stages = []
    for recs in (pt_records, sft_records):
        recs = list(recs)
        rng.shuffle(recs)
        stages.append(recs)
    write_jsonl(out / "stage1_pt.jsonl", stages[0])
    if stages[1]:
        write_jsonl(out / "stage2_sft.jsonl", stages[1])
    write_jsonl(out / "pt_then_sft.jsonl", stages[0] + stages[1])
    chars = [sum(len(r["input"]) + len(r["output"]) for r in s) for s in stages]
    return {"pt": len(stages[0]), "sft": len(stages[1]), "pt_chars": chars[0], "sft_chars": chars[1]}


def s9_recipes(out_dir: str, counts: dict[str, Any], *, init: str = "", preset: str = "nano", seq_len: int = 2049,
               warmup: float = 0.03, stable: float = 0.85, model_overrides: dict | None = None,
               **optim: Any) -> list[dict[str, Any]]:
    """One or two `mathforge train` recipes (tables) for S9. With an SFT stage, the WSD schedule of
    §d.11 over total T = T1 + T2 is split: stage 1 warms up for 0.03 T and stays flat; stage 2 decays
    over the last (1 - stable) T, or over all of itself when it is shorter than that (then the decay
    starts later than in one run). Stage lengths are estimated in proportion to characters."""
    total = counts["pt_chars"] + counts["sft_chars"]
    f1 = counts["pt_chars"] / total
    base = {"objective": "sft", "seed": 0}
    data = {"task": "file", "question_key": "input", "response_key": "output", "prompt_template": "{question}",
            "seq_len": seq_len, "packing": True, "n_eval": 0, "tokenizer": "bpe"}
    opt = {"lr": 1e-5, "weight_decay": 0.0, "schedule": "wsd", "min_lr_ratio": 0.1, "epochs": 1.0,
           "micro_batch_size": 8, "grad_accum": 64} | optim
    stage1 = base | {"out_dir": f"{out_dir}/stage1_pt", "data": data | {"train_file": f"{out_dir}/stage1_pt.jsonl"},
                     "model": _model_table(init, preset, model_overrides), "eval": {"n_problems": 0}}
    if not counts["sft"]:
        return [stage1 | {"optim": opt | {"warmup_ratio": warmup, "decay_ratio": 1 - stable}}]
    decay2 = min(1.0, (1 - stable) / (1 - f1))
    stage1["optim"] = opt | {"warmup_ratio": min(1.0, warmup / f1), "decay_ratio": 0.0}
    stage2 = base | {"out_dir": f"{out_dir}/stage2_sft",
                     "data": data | {"train_file": f"{out_dir}/stage2_sft.jsonl"},
                     "model": {"init": f"{out_dir}/stage1_pt/model"}, "eval": {"n_problems": 0},
                     "optim": opt | {"warmup_ratio": 0.0, "decay_ratio": decay2}}
    return [stage1, stage2]


def toml_dumps(table: dict[str, Any], prefix: str = "") -> str:
    """A minimal TOML writer for recipe tables (scalars, strings, lists of scalars, nested tables)."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, sub in tables.items():
        inline = {k: v for k, v in sub.items() if isinstance(v, dict)}
        body = {k: v for k, v in sub.items() if not isinstance(v, dict)}
        lines += ["", f"[{prefix}{key}]"] + [f"{k} = {json.dumps(v)}" for k, v in body.items()]
        lines += [f"{k} = {{ {', '.join(f'{a} = {json.dumps(b)}' for a, b in v.items())} }}" for k, v in inline.items()]
    return "\n".join(lines) + "\n"
