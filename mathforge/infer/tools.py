"""Tool-integrated reasoning and program-of-thought execution (docs/methods/evaluation.md §g.2, §g.3).

The `tora` loop of Gou et al. 2024 ("ToRA: A Tool-Integrated Reasoning Agent for Mathematical Problem
Solving"), as run by the math-evaluation-harness: generate until the model closes a ```python block
(the stop string ```output ends the round), run the program in the sandbox, append the result as an
```output block and continue, for at most `max_rounds` executions. Program styles (`pal`, `pot`) run
one program per sample. Every (problem, sample) is batched: each round sends all still-open contexts
to the engine at once and all their programs to the sandbox pool at once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from mathforge.data.prompts import PromptStyle
from mathforge.infer.types import Completion, SamplingParams

_BLOCK = re.compile(r"```(python|output)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_FAILED = ("error", "exception", "cannot", "nan", "...")
MAX_REPORT = 400  # §g.3: executor output kept (first 200 ... last 200)
LIMIT_NOTE = "\nReach max function call limit."


@dataclass
class Trace:
    """Everything one sample produced: the text after the prompt (model text plus appended outputs),
    the programs run, their reports, and the cost."""

    generation: str = ""
    programs: list[str] = field(default_factory=list)
    exec_reports: list[dict] = field(default_factory=list)
    n_tokens: int = 0
    logprob: float | None = None
    finish_reason: str = "length"
    rounds: int = 0
    hit_call_limit: bool = False
    generate_s: float = 0.0
    exec_s: float = 0.0
    answer_text: str | None = None  # program styles: the executed program's result

    def absorb(self, c: Completion, text: str, seconds: float) -> None:
        self.generation += text
        self.n_tokens += c.n_tokens
        if c.logprob is not None:
            self.logprob = (self.logprob or 0.0) + c.logprob
        self.finish_reason = c.finish_reason
        self.rounds += 1
        self.generate_s += seconds


def extract_program(text: str) -> str:
    """The program to run next (§g.2): all ```python blocks in order; a block whose following ```output
    looks failed keeps only its imports; every block but the last loses its print lines."""
    blocks: list[str] = []
    for m in _BLOCK.finditer(text):
        kind, body = m.group(1), m.group(2)
        if kind == "python":
            blocks.append(body)
        elif blocks and any(w in body.lower() for w in _FAILED):
            # The preceding block failed: keep its imports so later blocks still see them.
            blocks[-1] = "\n".join(ln for ln in blocks[-1].splitlines() if ln.lstrip().startswith(("import ", "from ")))
    kept = [
        "\n".join(ln for ln in b.splitlines() if "print(" not in ln) if i < len(blocks) - 1 else b
        for i, b in enumerate(blocks)
    ]
    return "\n".join(b.strip("\n") for b in kept if b.strip()).strip("\n")


def program_of(generation: str) -> str:
    """The program in a PoT/PAL generation: its fenced blocks, or the whole text when it has no fence."""
    if "```python" in generation:
        return extract_program(generation)
    return generation.split("###")[0].strip("\n")  # §g.3 mammoth: the text before the first ###


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REPORT else text[:200] + "..." + text[-200:]


def exec_report(res, seconds: float) -> dict:
    """A plain-dict report of one sandbox run; `shown` is what the model sees in the ```output block."""
    timed_out = bool(getattr(res, "timed_out", False))
    ok = bool(getattr(res, "ok", False)) and not timed_out
    result = getattr(res, "result", None)
    stdout = getattr(res, "stdout", "") or ""
    value = str(result or stdout).strip() if ok else ""
    error = getattr(res, "error", None) or ""
    if timed_out:
        shown = "Timeout Error"
    elif not ok:
        lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
        shown = lines[-1] if lines else "Error"
    else:
        shown = value
    return {"ok": ok, "timed_out": timed_out, "result": _clip(value), "error": str(error)[-2000:] or None,
            "shown": _clip(shown), "seconds": round(seconds, 4)}


def _run_programs(programs: list[str], mode: str, timeout: float, workers: int | None) -> list[dict]:
    from mathforge.grading import run_codes

    t0 = time.perf_counter()
    results = run_codes(programs, workers=workers, timeout=timeout, mode=mode)
    per = (time.perf_counter() - t0) / max(1, len(programs))  # pool wall time shared out per program
    return [exec_report(r, per) for r in results]


def generate_traces(engine, prompts: list[str], *, style: PromptStyle, n: int, params: SamplingParams,
                    stop: list[str], max_rounds: int | None = None, exec_timeout: float = 5.0,
                    workers: int | None = None) -> list[list[Trace]]:
    """Generate `n` samples per prompt under `style`, running code as the style asks.

    Text styles: one generation each. Program styles: one generation, then its program runs once
    (mode `style.exec_mode`) and the result becomes `answer_text`. Tool styles: the §g.2 loop.
    Returns traces in prompt order, `n` per prompt. Generation time of a batched call is shared
    equally among the completions it produced.
    """
    t0 = time.perf_counter()
    first = engine.generate(prompts, n=n, params=params, stop=stop)
    share = (time.perf_counter() - t0) / max(1, len(prompts) * n)
    traces = [[Trace() for _ in range(n)] for _ in prompts]
    if len(first) != len(prompts) or any(len(row) != n for row in first):
        raise ValueError(f"engine returned {[len(r) for r in first]} completions for {len(prompts)} prompts x n={n}")
    for row, comps in zip(traces, first, strict=True):
        for tr, c in zip(row, comps, strict=True):
            tr.absorb(c, c.text.rstrip() if style.kind == "tool" else c.text, share)
    flat = [tr for row in traces for tr in row]
    if style.kind == "program":
        _execute_once(flat, style, exec_timeout, workers)
    elif style.kind == "tool":
        _tool_loop(engine, prompts, traces, style, params, stop, max_rounds or style.max_rounds,
                   exec_timeout, workers)
    return traces


def _execute_once(flat: list[Trace], style: PromptStyle, timeout: float, workers: int | None) -> None:
    programs = [program_of(tr.generation) for tr in flat]
    runnable = [i for i, p in enumerate(programs) if p.strip()]
    reports = _run_programs([programs[i] for i in runnable], style.exec_mode or "print", timeout, workers)
    for i, rep in zip(runnable, reports, strict=True):
        flat[i].programs.append(programs[i])
        flat[i].exec_reports.append(rep)
        flat[i].exec_s += rep["seconds"]
        flat[i].answer_text = rep["result"] if rep["ok"] else None


def _needs_code(new_text: str) -> bool:
    return "boxed" not in new_text and new_text.endswith("```")


def _tool_loop(engine, prompts, traces, style, params, stop, max_rounds, timeout, workers) -> None:
    """§g.2: `max_rounds` generation rounds (the first already done), each that ends in a closed code
    block followed by one execution; as in the harness, the output of the last allowed execution is
    appended with the limit note and not generated from."""
    open_: list[tuple[int, Trace]] = [
        (i, tr) for i, row in enumerate(traces) for tr in row if _needs_code(tr.generation)
    ]
    for rnd in range(max_rounds):
        if not open_:
            return
        programs = [extract_program(tr.generation) for _, tr in open_]
        reports = _run_programs(programs, style.exec_mode or "harness", timeout, workers)
        for (_, tr), prog, rep in zip(open_, programs, reports, strict=True):
            tr.programs.append(prog)
            tr.exec_reports.append(rep)
            tr.exec_s += rep["seconds"]
            tr.generation += "\n```output\n" + rep["shown"] + "\n```\n"
        if rnd == max_rounds - 1:
            break
        contexts = [prompts[i] + tr.generation for i, tr in open_]
        t0 = time.perf_counter()
        outs = engine.generate(contexts, n=1, params=params, stop=stop)
        share = (time.perf_counter() - t0) / max(1, len(contexts))
        still: list[tuple[int, Trace]] = []
        for (i, tr), comps in zip(open_, outs, strict=True):
            new = comps[0].text.rstrip()
            tr.absorb(comps[0], new, share)
            if _needs_code(new):
                still.append((i, tr))
        open_ = still
    for _, tr in open_:  # the model still wanted to run code after the last allowed execution
        tr.generation += LIMIT_NOTE
        tr.hit_call_limit = True
