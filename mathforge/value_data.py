"""Value-training data for TSMC (Feng et al. 2025; docs/methods/tsmc.md §e.6): K sampled solutions per training
problem from the generator, graded, kept grouped per problem with their step-end offsets.

One JSON object per problem (samples must stay together: contrastive twist learning needs them):

    {"problem_id": "...", "prompt": "# Question\\n\\n...\\n\\n# Solution\\n\\n", "gold": "14",
     "samples": [{"text": "...\\n\\n# Answer\\n\\n14", "eos": true, "correct": 1,
                  "step_end_chars": [57, 102, 131]}, ...]}

`step_end_chars` are the character offsets (in `text`) just after each intermediate step's delimiter
(§e.3 text rule: not the blank line after `# Answer`); the final step ends at EOS. A sample that
hits the token limit without EOS is labelled 0. Problems with no correct sample stay in the file.
The file is appended per batch and flushed, so a killed run resumes where it stopped (problems already
written are skipped, a torn last line is dropped), like `mathforge eval`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mathforge.data.steps import ANSWER_HEADER, DELIMITER


@dataclass
class ValueDataConfig:
    model: str
    out: str
    task: str = "arith_steps"
    task_args: dict[str, Any] | None = None
    n_problems: int = 2000
    seed: int = 1  # problems drawn with this seed (the generator's training data used another)
    k: int = 16
    temperature: float = 0.8
    top_k: int = 200
    max_new_tokens: int = 256
    batch_size: int = 8  # problems per generate call
    sample_seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("n_problems", "k", "max_new_tokens", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"ValueDataConfig.{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not self.temperature > 0:
            raise ValueError("ValueDataConfig.temperature must be > 0 (K samples per problem)")


def step_end_chars(text: str, delimiter: str = DELIMITER, answer_header: str = ANSWER_HEADER) -> list[int]:
    """Offsets just after each step-ending delimiter (the rule `StepGenerator` applies while sampling)."""
    out, start, i = [], 0, text.find(delimiter)
    while i >= 0:
        before = text[start:i]
        end = i + len(delimiter)
        if before.strip() and not before.rstrip().endswith(answer_header):
            out.append(end)
            start = end
        i = text.find(delimiter, end)
    return out


def make_value_data(cfg: ValueDataConfig, *, progress: bool = False) -> Path:
    """Sample, grade and append; returns the output file."""
    from mathforge.data.steps import check_step_format
    from mathforge.data.tasks import get_task
    from mathforge.grading import grade
    from mathforge.infer.hf_engine import HFEngine
    from mathforge.infer.search import answer_of
    from mathforge.infer.types import SamplingParams

    problems = get_task(cfg.task)(cfg.n_problems, seed=cfg.seed, **(cfg.task_args or {}))
    check_step_format(problems, where=f"task {cfg.task!r}")  # before any generation
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = out.with_suffix(".config.json")
    if meta.exists() and out.exists() and json.loads(meta.read_text()) != asdict(cfg):
        raise ValueError(f"{out}: written with other settings ({meta}); use another --out")
    meta.write_text(json.dumps(asdict(cfg), indent=1))
    done = {rec["problem_id"] for rec in read_value_data(out, repair=True)} if out.exists() else set()
    todo = [p for p in problems if p.meta["id"] not in done]
    engine = HFEngine.from_pretrained(cfg.model, batch_size=max(cfg.k, 64))
    params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                            seed=cfg.sample_seed)
    batches = range(0, len(todo), cfg.batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"value data ({len(todo)} problems left)", unit="batch")
    for start in batches:
        batch = todo[start:start + cfg.batch_size]
        rows = engine.generate([p.prompt for p in batch], n=cfg.k, params=params)
        lines = []
        for p, comps in zip(batch, rows, strict=True):
            samples = []
            for c in comps:
                eos = c.finish_reason == "stop"
                pred = answer_of(c.text, ANSWER_HEADER + DELIMITER) if eos else None
                ok = bool(eos and pred is not None and grade(pred=pred, gold=p.answer).correct)
                samples.append({"text": c.text, "eos": eos, "correct": int(ok), "step_end_chars": step_end_chars(c.text)})
            lines.append(json.dumps({"problem_id": p.meta["id"], "prompt": p.prompt, "gold": p.answer,
                                     "samples": samples}) + "\n")
        with out.open("a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
    return out


def read_value_data(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Records of a value-data file, checked: one object per problem with its samples grouped.

    A torn last line (a kill mid-write) is dropped (and cut from the file with `repair`); anything
    else malformed, a sample outside a `samples` list, or a problem on two lines is an error naming
    file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"value data {path}: no such file")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out, seen = [], {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                if repair:
                    path.write_text("".join(lines[:-1]), encoding="utf-8")
                break
            raise ValueError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict) or not isinstance(rec.get("samples"), list):
            raise ValueError(f"{where}: expected one object per problem with a 'samples' list (samples must stay "
                             "grouped per problem: contrastive twist learning needs them together)")
        for key in ("problem_id", "prompt"):
            if not isinstance(rec.get(key), str):
                raise ValueError(f"{where}: field {key!r} must be a string")
        if rec["problem_id"] in seen:
            raise ValueError(f"{where}: problem {rec['problem_id']!r} already appeared on line "
                             f"{seen[rec['problem_id']]}; its samples must be grouped on one line")
        seen[rec["problem_id"]] = lineno
        for j, s in enumerate(rec["samples"]):
            if not isinstance(s, dict) or not isinstance(s.get("text"), str) or s.get("correct") not in (0, 1, True, False):
                raise ValueError(f"{where}: sample {j} needs 'text' (string) and 'correct' (0/1)")
            ends = s.get("step_end_chars", [])
            if not isinstance(ends, list) or any(not isinstance(c, int) or not 0 < c <= len(s["text"]) for c in ends):
                raise ValueError(f"{where}: sample {j}: step_end_chars must be offsets within its text")
        out.append(rec)
    return out
