"""Shared inference types: sampling parameters, one completion, the `Engine` protocol, stop strings.

Every engine (`HFEngine`, `VLLMEngine`, `OpenAIEngine`) returns the same `Completion` record so search
strategies and the evaluation harness never care which backend produced a sample (docs/methods/evaluation.md §g.1).
Stop strings follow §g.2: generation ends at EOS or at the first stop string, and the stop string
itself is cut from the returned text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `temperature == 0` means greedy decoding; `top_k` keeps the k most likely tokens
    (0 = all), `top_p` is nucleus sampling (applied after top-k)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    top_k: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if not self.temperature >= 0.0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"SamplingParams.top_k must be an int >= 0 (0 = off), got {self.top_k!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"SamplingParams.seed must be an int, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    """One generated sample.

    `text` is the decoded sample with the stop string cut off, and `token_ids` are the tokens of that
    text: a trailing EOS is kept, tokens that reach into a stop string are cut (so `decode(token_ids)`
    never contains it). `n_tokens` counts every sampled token, cut ones included (the compute spent).
    `logprob` is the sum over `token_ids` of log-probabilities under the model's unmodified
    distribution (no temperature, no top-k/top-p); `proposal_logprob` the same sum under the
    distribution actually sampled from (after temperature, top-k, top-p; 0 for greedy), which
    importance weights need. `token_logprobs` / `proposal_token_logprobs` (optional) hold the
    per-token terms. Engines that cannot see token ids (HTTP servers do not return them) leave
    `token_ids` empty and count the tokens the server reported in `n_tokens`.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    n_tokens: int = 0
    logprob: float | None = None
    finish_reason: FinishReason = "length"
    token_logprobs: list[float] | None = None
    proposal_logprob: float | None = None
    proposal_token_logprobs: list[float] | None = None

    def __post_init__(self) -> None:
        if self.finish_reason not in ("stop", "length"):
            raise ValueError(f"Completion.finish_reason must be 'stop' or 'length', got {self.finish_reason!r}")


@runtime_checkable
class Engine(Protocol):
    """Anything that turns prompts into `n` completions each, in prompt order."""

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        params: SamplingParams = SamplingParams(),
        stop: list[str] | None = None,
    ) -> list[list[Completion]]: ...


def check_generate_args(prompts: list[str], n: int, stop: list[str] | None) -> list[str]:
    """Validate the arguments every engine shares; returns the cleaned stop list (no empty strings)."""
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise ValueError("generate(prompts=...) must be a list of strings")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"generate(n=...) must be an int >= 1, got {n!r}")
    if stop is None:
        return []
    if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
        raise ValueError("generate(stop=...) must be a list of strings or None")
    return [s for s in stop if s]


def chat_messages(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """A prompt as a chat: one user turn, after a system turn when `system` is given."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest occurrence of any stop string; returns (text, whether one was found)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def left_pad(prompts: list[list[int]], pad_id: int, device=None):
    """Token-id lists as a left-padded batch: (ids [B, W], attention mask [B, W]), int64 on `device`."""
    import torch

    width = max(map(len, prompts))
    ids = torch.tensor([[pad_id] * (width - len(x)) + list(x) for x in prompts], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], dtype=torch.long, device=device)
    return ids, mask
