"""Difficulty estimation for sample-difficulty-adaptive SFT (SDAT; the SDAT project report, 2024;
docs/methods/sdat.md): how often the *base* model solves each training example, from samples with
in-context exemplars of the same source, turned into the levels the `difficulty` objective reads.

* Exemplars: per source, one set drawn once in random order until the instruction plus exemplars
  first exceeds half the base model's context (the exemplar that crosses it is kept, or dropped
  with `drop_crossing_exemplar`); exemplars leave the training set.
* Sampling: `k` samples per example at temperature 0.7 (default 16), or adaptively in batches of
  8 until the Student-t margin of error `t_{0.975, n-1} * sqrt(p(1-p)/(n-1))` is at most 0.15, or 64
  samples. Each sample's answer is graded against the example's gold by `mathforge.grading`.
* Level (L = 5): 1 where err = 0, else floor(L * err - 1e-6) + 1 (the released data's rule); the
  report's formula floor(L * err) is the option `level_rule="report"`.

Writes `OUT/difficulty.jsonl` (each training record with `n_samples`, `n_correct`, `err_rate`,
`difficulty_level` and its `source_line` added; resumable: records already there are skipped) and
`OUT/exemplars.jsonl` (the exemplars, which leave the training set).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mathforge.seeds import t975
from mathforge.train.objectives.difficulty import level_of

INSTRUCTION = "Solve each problem step by step and end with the final answer."


@dataclass(frozen=True)
class EstimateConfig:
    k: int = 16
    temperature: float = 0.7
    max_new_tokens: int = 256
    adaptive: bool = False
    batch: int = 8
    max_samples: int = 64
    moe_target: float = 0.15
    levels: int = 5
    level_rule: str = "code"  # "code" (the released code and data) | "report"
    context_tokens: int = 4096  # the base model's training context; exemplars fill up to half of it
    drop_crossing_exemplar: bool = False
    seed: int = 0
    # how an exemplar and the question are written: "{question}" is filled, and an exemplar continues
    # with its response and a blank line; the default suits pretrained models, a model trained from
    # scratch wants its own training layout (e.g. "{question}\n")
    template: str = "Question: {question}\nAnswer:"
    instruction: str = INSTRUCTION  # put before the exemplars ("" for none)

    def __post_init__(self) -> None:
        for name in ("k", "max_new_tokens", "batch", "max_samples", "levels", "context_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 0 < self.temperature:
            raise ValueError(f"--temperature must be > 0 for sampling, got {self.temperature}")
        if "{question}" not in self.template:
            raise ValueError(f"--template must contain {{question}}, got {self.template!r}")
        if self.level_rule not in ("code", "report"):
            raise ValueError(f"--level-rule must be 'code' or 'report', got {self.level_rule!r}")


def margin_of_error(p: float, n: int) -> float:
    """Student-t margin of error of a pass rate p from n samples (95%); infinite for n <= 1."""
    return math.inf if n <= 1 else t975(n - 1) * math.sqrt(p * (1 - p) / (n - 1))


def _fields(rec: dict[str, Any], where: str) -> tuple[str, str, str]:
    """(question, response, gold answer) of a training record."""
    from mathforge.train.dataset import QUESTION_KEYS, RESPONSE_KEYS, _answer_of, _first

    q, r = _first(rec, QUESTION_KEYS), _first(rec, RESPONSE_KEYS)
    if not isinstance(q, str) or not isinstance(r, str):
        raise ValueError(f"{where}: needs a question ({'/'.join(QUESTION_KEYS)}) and a response "
                         f"({'/'.join(RESPONSE_KEYS)}) as strings")
    gold = str(rec["answer"]) if rec.get("answer") is not None else _answer_of(r)
    if not gold:
        raise ValueError(f"{where}: no gold answer (no `answer` field and none extractable from the response)")
    return q, r, gold


def shot(question: str, response: str | None = None, template: str = "Question: {question}\nAnswer:") -> str:
    """One exemplar (with its response) or the question to answer (without)."""
    head = template.replace("{question}", question)
    if response is None:
        return head
    return head + ("" if head.endswith(("\n", " ")) else " ") + response + "\n\n"


def _head(cfg: EstimateConfig) -> str:
    return cfg.instruction + "\n\n" if cfg.instruction else ""


def split_exemplars(records: list[dict[str, Any]], count_tokens, cfg: EstimateConfig
                    ) -> tuple[dict[str, list[int]], list[int]]:
    """Per source, the indices of its exemplars (random order, until instruction + exemplars first
    exceed half the context), and the indices left for training."""
    rng = random.Random(cfg.seed)
    by_source: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        by_source.setdefault(str(rec.get("source", "")), []).append(i)
    budget = cfg.context_tokens // 2
    exemplars: dict[str, list[int]] = {}
    for source, idx in by_source.items():
        order = list(idx)
        rng.shuffle(order)
        used, chosen = count_tokens(_head(cfg)), []
        for i in order[:-1]:  # at least one example of each source stays for training
            q, r, _ = _fields(records[i], f"record {i}")
            used += count_tokens(shot(q, r, cfg.template))
            chosen.append(i)
            if used > budget:
                if cfg.drop_crossing_exemplar:
                    chosen.pop()
                break
        exemplars[source] = chosen
    taken = {i for ids in exemplars.values() for i in ids}
    return exemplars, [i for i in range(len(records)) if i not in taken]


def estimate(engine, data: str | Path, out: str | Path, cfg: EstimateConfig = EstimateConfig()) -> Path:
    """Annotate every training record of `data` (JSONL) with its base-model pass rate and level."""
    from mathforge.data.files import iter_jsonl
    from mathforge.grading import extract_answer, grade
    from mathforge.infer.types import SamplingParams

    rows = list(iter_jsonl(data))
    if not rows:
        raise ValueError(f"{data}: no records")
    lines, records = [ln for ln, _ in rows], [rec for _, rec in rows]
    for ln, rec in rows:
        _fields(rec, f"{data}:{ln}")  # every record checked before any generation
    tok = getattr(engine, "tokenizer", None)  # HTTP engines have none: about 4 characters per token

    def count_tokens(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"]) if tok is not None else -(-len(text) // 4)

    exemplars, train_idx = split_exemplars(records, count_tokens, cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"data": str(data), **asdict(cfg)}, indent=1))
    with (out / "exemplars.jsonl").open("w") as f:
        for source, ids in exemplars.items():
            for i in ids:
                f.write(json.dumps({**records[i], "source": source, "source_line": lines[i]}) + "\n")
    heads = {source: _head(cfg) + "".join(shot(*_fields(records[i], "")[:2], cfg.template) for i in ids)
             for source, ids in exemplars.items()}
    path = out / "difficulty.jsonl"
    done = {json.loads(x)["source_line"] for x in path.read_text().splitlines() if x.strip()} if path.exists() else set()
    with path.open("a") as f:
        for i in train_idx:
            if lines[i] in done:
                continue
            rec = records[i]
            q, _, gold = _fields(rec, "")
            prompt = heads[str(rec.get("source", ""))] + shot(q, template=cfg.template)
            n = correct = 0
            while True:
                want = cfg.batch if cfg.adaptive else cfg.k
                params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                        seed=cfg.seed * 1_000_003 + i * 1_009 + n)
                (samples,) = engine.generate([prompt], n=want, params=params, stop=["\n\nQuestion:"])
                for c in samples:
                    pred = extract_answer(c.text)
                    correct += bool(pred is not None and grade(pred=pred, gold=gold, question=q).correct)
                n += want
                p = correct / n
                if not cfg.adaptive or n >= cfg.max_samples or margin_of_error(p, n) <= cfg.moe_target:
                    break
            err = 1 - correct / n
            f.write(json.dumps({**rec, "source_line": lines[i], "n_samples": n, "n_correct": correct, "err_rate": err,
                                "difficulty_level": level_of(err, cfg.levels, cfg.level_rule)}) + "\n")
            f.flush()
    return path
