"""ICoTKDEngine: the `Engine` of an implicit-CoT model made by knowledge distillation (ICoT-KD; Deng et
al. 2023, "Implicit Chain of Thought Reasoning via Knowledge Distillation"), docs/methods/icot.md §f.9.

A finished coupled stage (`objective = "icot_kd_coupled"`; its `model/` folder holds the student,
`aux_modules.pt` and `mathforge_config.json`) is not a plain causal LM: the emulator reads the
question, and its per-layer vectors, through the student's MLPs, are substituted at the last
question token s1 before the student decodes. `load_engine` recognises such a folder and returns
this engine, so `mathforge eval --model runs/<coupled>/model --style line` runs it like any other
model; answering needs no CoT tokens.

Prompts must end at s1: with the `line` style a prompt is `question||` and s1 is its last token, as
in training (`Rendered.separators()`). Decoding is greedy with one sample per prompt (§f.9); the
engine raises a clear error for sampling or n > 1 instead of returning something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mathforge.infer.types import Completion, SamplingParams, check_generate_args, cut_at_stop

OBJECTIVE = "icot_kd_coupled"


def is_icot_kd_folder(folder: str | Path) -> bool:
    """Whether `folder` is the `model/` of a finished ICoT-KD coupled stage."""
    import json

    folder = Path(folder)
    cfg_file = folder / "mathforge_config.json"
    if not (cfg_file.is_file() and (folder / "aux_modules.pt").is_file()):
        return False
    try:
        return json.loads(cfg_file.read_text()).get("objective") == OBJECTIVE
    except (ValueError, AttributeError):
        return False


class ICoTKDEngine:
    """Greedy implicit-CoT answers from emulator + student (`mathforge.models.icot_kd.implicit_generate`)."""

    def __init__(self, parts: dict[str, Any], *, batch_size: int = 32, chat: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"ICoTKDEngine batch_size must be >= 1, got {batch_size}")
        if chat:
            raise ValueError("ICoTKDEngine: chat templates are not part of the ICoT layout (use --style line)")
        self.parts = parts
        self.tokenizer = parts["tokenizer"]
        self.batch_size = batch_size
        self.device = next(parts["student"].parameters()).device
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    @classmethod
    def from_folder(cls, folder: str | Path, *, device: str | None = None, **kwargs: Any) -> ICoTKDEngine:
        from mathforge.train.objectives.icot_kd_coupled import load_implicit

        parts = load_implicit(folder)
        if device is not None:
            for key in ("student", "emulator_lm", "emulator", "mlps"):
                parts[key] = parts[key].to(device)
        return cls(parts, **kwargs)

    def encode(self, prompts: list[str]) -> list[list[int]]:
        return [self.tokenizer(p)["input_ids"] for p in prompts]

    def generate(self, prompts: list[str], *, n: int = 1, params: SamplingParams = SamplingParams(),
                 stop: list[str] | None = None) -> list[list[Completion]]:
        stop = check_generate_args(prompts, n, stop)
        if n != 1 or not params.greedy:
            raise ValueError(f"ICoT-KD inference is greedy with one sample per prompt (docs/methods/icot.md §f.9); got n={n}, "
                             f"temperature={params.temperature}")
        ids = self.encode(prompts)
        for i, x in enumerate(ids):
            if not x or not self.tokenizer.decode(x[-1:]).strip().endswith("|"):  # "|" or a merged "||"
                raise ValueError(f"prompt {i} {prompts[i][-40:]!r} does not end with the question separator '||' "
                                 "that ICoT-KD substitutes at (use --style line)")
        out: list[list[Completion]] = []
        for start in range(0, len(ids), self.batch_size):
            out.extend([c] for c in self._batch(ids[start:start + self.batch_size], params.max_new_tokens, stop))
        return out

    def _batch(self, ids: list[list[int]], max_new: int, stop: list[str]) -> list[Completion]:
        import torch

        from mathforge.infer.types import left_pad
        from mathforge.models.icot_kd import implicit_generate

        input_ids, mask = left_pad(ids, self.pad_id, self.device)  # [B, W], [B, W]
        width = input_ids.shape[1]
        s1 = torch.tensor([len(x) - 1 for x in ids], device=self.device)  # [B]: last prompt position, unpadded
        p = self.parts
        eos = self.tokenizer.eos_token_id
        seqs = implicit_generate(p["emulator"], p["emulator_lm"], p["student"], p["mlps"], input_ids, mask, s1,
                                 max_new_tokens=max_new, pad_token_id=self.pad_id, eos_token_id=eos)  # [B, W + n]
        result = []
        for row in seqs[:, width:].tolist():
            tokens = row[: row.index(eos) + 1] if eos in row else row
            text, found = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)
            finish = "stop" if found or (tokens and tokens[-1] == eos) else "length"
            result.append(Completion(text=text, token_ids=tokens, n_tokens=len(tokens), finish_reason=finish))
        return result
