"""S6 of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.8, [library]): quality filters.

Filters run in order; the first that objects removes the record, which is kept in the removed list
with `filter` and `reason`, and every filter reports how many it removed. Each can be switched off.

- `well_formed`: problem and solution present; the problem has at least `min_problem_words` words.
- `truncated`: a generation that stopped at the token limit (`finish_reason == "length"`).
- `length`: the whole generation has at least `min_tokens` tokens (150, the original's disabled
  threshold) and at most `max_tokens` (0: no cap).
- `answer`: a final answer extractable by a box or an answer phrase (grading styles `boxed`, then
  `answer`); the last-number fallback does not count.
- `degeneration`: no `ngram`-token n-gram (20) occurs more than `max_repeats` (3) times.
- `language`: at least `min_latin_ratio` of the letters are ASCII letters (English-only data).
- `tool` (tool variant only): the ```python blocks, run in order as one program in the grading
  sandbox, finish without error within `code_timeout` seconds, and the last block's output equals the
  boxed answer under the grader.
- `self_consistency` (off by default; needs an engine): `consistency_k` re-solves of the problem; the
  record stays only if the largest cluster of their answers, grouped by the grader, holds its answer.

Tokens are counted with `tokenizer` (a local HF tokenizer folder) when given, else as words and
single symbols (`\\w+|[^\\w\\s]`), which is close to a BPE count for English math text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mathforge.grading import cluster_answers, extract_answer, is_equivalent, majority_vote, run_codes

FILTERS = ("well_formed", "truncated", "length", "answer", "degeneration", "language", "tool", "self_consistency")
DEFAULT_FILTERS = FILTERS[:-1]
_TOKEN = re.compile(r"\w+|[^\w\s]")
_CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)
_MARK = "<<<mathforge-block-{}>>>"


@dataclass
class FilterConfig:
    filters: list[str] = field(default_factory=lambda: list(DEFAULT_FILTERS))
    min_problem_words: int = 5
    min_tokens: int = 150
    max_tokens: int = 0
    ngram: int = 20
    max_repeats: int = 3
    min_latin_ratio: float = 0.9
    code_timeout: float = 5.0
    code_workers: int = 2
    consistency_k: int = 4
    consistency_temperature: float = 0.7
    consistency_max_new_tokens: int = 1024
    consistency_stop: list[str] = field(default_factory=list)  # end a re-solve at any of these strings
    tokenizer: str = ""

    def __post_init__(self) -> None:
        bad = [f for f in self.filters if f not in FILTERS]
        if bad:
            raise ValueError(f"filter.filters: unknown {bad}; choose from {list(FILTERS)}")
        if self.ngram < 1 or self.max_repeats < 1 or self.consistency_k < 1 or self.min_tokens < 0:
            raise ValueError("filter.ngram, max_repeats, consistency_k must be >= 1 and min_tokens >= 0")
        if self.consistency_max_new_tokens < 1 or not self.consistency_temperature > 0:
            raise ValueError("filter.consistency_max_new_tokens must be >= 1 and consistency_temperature > 0 "
                             "(re-solves are samples)")
        if not 0.0 <= self.min_latin_ratio <= 1.0:
            raise ValueError("filter.min_latin_ratio must lie in [0, 1]")


def make_counter(tokenizer: str = "") -> Callable[[str], list]:
    if not tokenizer:
        return _TOKEN.findall
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    return lambda text: tok(text, add_special_tokens=False)["input_ids"]


def final_answer(solution: str) -> str | None:
    """A boxed answer, else one stated by an answer phrase; never the last number."""
    return extract_answer(solution, style="boxed") or extract_answer(solution, style="answer")


def repeated_ngram(tokens: list, n: int, max_repeats: int) -> bool:
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return bool(counts) and max(counts.values()) > max_repeats


def latin_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isascii() for c in letters) / len(letters) if letters else 1.0


def check_record(rec: dict, cfg: FilterConfig, tokens: Callable[[str], list]) -> tuple[str, str] | None:
    """(filter, reason) of the first per-record filter that removes `rec`, else None."""
    on = set(cfg.filters)
    problem, solution = rec.get("problem"), rec.get("solution")
    text = rec.get("generated_text") or f"{problem}\n{solution}"
    if "well_formed" in on:
        if not isinstance(problem, str) or not isinstance(solution, str) or not solution.strip():
            return "well_formed", "missing problem or solution"
        if len(problem.split()) < cfg.min_problem_words:
            return "well_formed", f"problem shorter than {cfg.min_problem_words} words"
    if "truncated" in on and rec.get("finish_reason") == "length":
        return "truncated", "stopped at the token limit"
    toks = tokens(text) if {"length", "degeneration"} & on else []
    if "length" in on and len(toks) < cfg.min_tokens:
        return "length", f"{len(toks)} tokens < {cfg.min_tokens}"
    if "length" in on and cfg.max_tokens and len(toks) > cfg.max_tokens:
        return "length", f"{len(toks)} tokens > {cfg.max_tokens}"
    if "answer" in on:
        rec["answer"] = final_answer(solution or "")
        if not rec["answer"]:
            return "answer", "no boxed or stated final answer"
    if "degeneration" in on and repeated_ngram(toks, cfg.ngram, cfg.max_repeats):
        return "degeneration", f"a {cfg.ngram}-token n-gram occurs more than {cfg.max_repeats} times"
    if "language" in on and latin_ratio(text) < cfg.min_latin_ratio:
        return "language", f"latin-letter ratio {latin_ratio(text):.2f} < {cfg.min_latin_ratio}"
    return None


def tool_program(solution: str) -> str | None:
    """The ```python blocks joined in order, each preceded by a marker print so outputs can be cut
    apart; None when there is no code block."""
    blocks = _CODE.findall(solution)
    if not blocks:
        return None
    return "\n".join(f"print({_MARK.format(i)!r})\n{b}" for i, b in enumerate(blocks))


def check_tool(records: list[dict], cfg: FilterConfig) -> list[str | None]:
    """Per record: None if its code runs and its last block's output equals its boxed answer."""
    programs = [tool_program(r.get("solution") or "") for r in records]
    todo = [i for i, p in enumerate(programs) if p is not None]
    results = run_codes([programs[i] for i in todo], workers=cfg.code_workers, timeout=cfg.code_timeout,
                        max_output=4000)
    reasons: list[str | None] = ["no python code block"] * len(records)
    for i, res in zip(todo, results, strict=True):
        if res.timed_out:
            reasons[i] = f"code ran past {cfg.code_timeout} s"
        elif not res.ok:
            reasons[i] = f"code failed: {(res.error or '')[:200]}"
        else:
            last = res.stdout.split(_MARK.format(len(_CODE.findall(records[i]['solution'])) - 1))[-1].strip()
            last = last.splitlines()[-1].strip() if last else ""
            boxed = extract_answer(records[i]["solution"], style="boxed")
            if not boxed:
                reasons[i] = "no boxed answer"
            elif not last or not is_equivalent(pred=last, gold=boxed):
                reasons[i] = f"last output {last[:60]!r} differs from boxed {boxed[:60]!r}"
            else:
                reasons[i] = None
    return reasons


def check_consistency(records: list[dict], cfg: FilterConfig, engine: Any) -> list[str | None]:
    """Per record: None if the majority of `consistency_k` re-solves agrees with its answer."""
    from mathforge.infer.types import SamplingParams

    params = SamplingParams(cfg.consistency_max_new_tokens, cfg.consistency_temperature, 1.0, 0)
    outs = engine.generate([r["input"] for r in records], n=cfg.consistency_k, params=params,
                           stop=cfg.consistency_stop or None)
    reasons: list[str | None] = []
    for rec, comps in zip(records, outs, strict=True):
        answers = [extract_answer(c.text) for c in comps]
        labels = cluster_answers([rec.get("answer"), *answers])
        win = majority_vote(answers, labels=labels[1:])
        agree = win is not None and labels[0] is not None and labels[1 + win] == labels[0]
        votes = sum(lab == labels[0] for lab in labels[1:]) if labels[0] is not None else 0
        reasons.append(None if agree else f"{votes}/{cfg.consistency_k} re-solves agree; majority "
                                          f"{answers[win] if win is not None else None!r}")
    return reasons


def apply_filters(records: list[dict], cfg: FilterConfig | None = None, engine: Any = None
                  ) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(kept, removed with `filter`/`reason`, counts: input, removed_<filter> for each filter on, kept)."""
    cfg = cfg or FilterConfig()
    if "self_consistency" in cfg.filters and engine is None:
        raise ValueError("filter self_consistency needs a solver engine (--engine)")
    tokens = make_counter(cfg.tokenizer)
    counts = {"input": len(records)} | {f"removed_{f}": 0 for f in cfg.filters}
    removed: list[dict] = []

    def drop(rec: dict, name: str, reason: str) -> None:
        counts[f"removed_{name}"] += 1
        removed.append(rec | {"filter": name, "reason": reason})

    alive = []
    for rec in map(dict, records):  # the caller's records are not changed (`answer` is set here)
        verdict = check_record(rec, cfg, tokens)
        if verdict:
            drop(rec, *verdict)
        else:
            alive.append(rec)
    for name in ("tool", "self_consistency"):
        if name not in cfg.filters:
            continue
        subset = [r for r in alive if name != "tool" or r.get("variant") == "tool"]
        reasons = (check_tool if name == "tool" else lambda rs, c: check_consistency(rs, c, engine))(subset, cfg) \
            if subset else []
        bad = {id(r): why for r, why in zip(subset, reasons, strict=True) if why}
        for rec in alive:
            if id(rec) in bad:
                drop(rec, name, bad[id(rec)])
        alive = [r for r in alive if id(r) not in bad]
    counts["kept"] = len(alive)
    return alive, removed, counts
