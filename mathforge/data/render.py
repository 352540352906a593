"""Rendering: an `Example` becomes `(input_ids, labels, weights)` for causal-LM training.

Layout (docs/methods/README.md §0 and docs/methods/mft.md §a.5, tokenisation boundary [library]):

    input_ids = [bos] + ids(prompt) + ids(response) + [eos]
    labels    = [-100] * (1 + len(ids(prompt))) + ids(response) + [eos]
    weights   = 0.0 where labels == -100, else example.weight

Labels follow the HF convention: they are *unshifted* (labels[t] is the token at t, or -100), and
the model predicts labels[t] from the logits at t-1. Prompt and response are tokenised separately
and concatenated, so a tokenizer that would merge characters across the boundary cannot move it
(the pitfall of tokenising `prompt+response` and measuring the prompt's length). BOS is skipped
for tokenizers that have none. `show_rendered` prints a rendered example with its trained spans
marked `[[...]]`, so anyone can see what the model is trained on.

Spans: every Rendered carries `spans`, token ranges `[start, end)` of `prompt` (BOS included),
`cot` and `answer`. A response in the implicit-CoT layout `cot #### answer` (docs/methods/icot.md §f.2)
splits at its `####`: `cot` holds the tokens that end at or before the stripped CoT text (empty
when the CoT is), `answer` the rest (`####`, answer, EOS). Without `####` the whole response is
`cot` except the final EOS, which alone is `answer`. Token boundaries come from the tokenizer's
offsets, so a token that straddles the boundary counts as answer. `cot_len` is the CoT's token
count; `separators()` gives the §f.4 positions: s1, the last prompt token (the end of the `||`
that closes the question, where the original has its first EOS), and s2, the first token after
the CoT (the start of `####`, where the original has its second EOS; s1 + 1 for an empty CoT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mathforge.data.records import Example

IGNORE_INDEX = -100
OVERLONG = ("error", "truncate", "drop")


@dataclass
class Rendered:
    """One tokenised example; the three lists have equal length."""

    input_ids: list[int]
    labels: list[int]
    weights: list[float]
    prompt_len: int  # tokens before the response, BOS included
    meta: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] | None = None  # prompt / cot / answer token ranges [start, end)

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if len(self.labels) != n or len(self.weights) != n:
            raise ValueError(
                f"Rendered: input_ids/labels/weights lengths differ ({n}, {len(self.labels)}, {len(self.weights)})"
            )

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_targets(self) -> int:
        return sum(1 for lab in self.labels if lab != IGNORE_INDEX)

    @property
    def cot_len(self) -> int:
        start, end = self._span("cot")
        return end - start

    def _span(self, name: str) -> tuple[int, int]:
        if not self.spans or name not in self.spans:
            raise ValueError(f"rendered example {self.meta.get('id', self.meta.get('index'))!s} has no {name!r} span")
        return self.spans[name]

    def separators(self) -> tuple[int, int]:
        """(s1, s2): index of the last prompt token and of the first token after the CoT."""
        return self._span("prompt")[1] - 1, self._span("cot")[1]


def _name(example: Example, index: int | None) -> str:
    parts = []
    if index is not None:
        parts.append(f"#{index}")
    if example.meta.get("id") is not None:
        parts.append(f"id={example.meta['id']}")
    return "example " + (" ".join(parts) if parts else repr(example.prompt[:40]))


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _cot_token_count(tokenizer, response: str, n_ids: int) -> int:
    """Tokens of `response` that belong to its CoT (see the module docstring)."""
    from mathforge.data.tasks import ANSWER_MARK

    if ANSWER_MARK not in response:
        return n_ids
    cot_end = len(response.split(ANSWER_MARK, 1)[0].rstrip())
    if cot_end == 0:
        return 0
    enc = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    return sum(1 for _, end in enc["offset_mapping"] if end <= cot_end)


def render(example: Example, tokenizer, *, max_len: int | None = None, overlong: str = "error",
           index: int | None = None) -> Rendered:
    """Tokenise `example` into a `Rendered` (layout in the module docstring).

    A sequence longer than `max_len` raises ValueError naming the example (`index` and/or
    `meta["id"]`) and its length; `overlong="truncate"` instead cuts it on the right (the
    original GSM8K SFT behaviour, docs/methods/mft.md §a.5), keeping labels aligned.
    """
    if overlong not in ("error", "truncate"):
        raise ValueError(f"render: overlong must be 'error' or 'truncate', got {overlong!r}")
    if not isinstance(example, Example):
        raise TypeError(f"render: expected an Example, got {type(example).__name__}")
    if example.weight < 0:
        raise ValueError(f"{_name(example, index)}: weight must be >= 0, got {example.weight}")
    if tokenizer.eos_token_id is None:
        raise ValueError(f"render: tokenizer {type(tokenizer).__name__} has no eos_token_id")
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = bos + _encode(tokenizer, example.prompt)
    response_ids = _encode(tokenizer, example.response) + [tokenizer.eos_token_id]
    n_cot = _cot_token_count(tokenizer, example.response, len(response_ids) - 1)
    input_ids = prompt_ids + response_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + response_ids
    weights = [0.0] * len(prompt_ids) + [float(example.weight)] * len(response_ids)
    if max_len is not None and len(input_ids) > max_len:
        if overlong == "error":
            raise ValueError(f"{_name(example, index)} has {len(input_ids)} tokens, more than max_len={max_len}")
        input_ids, labels, weights = input_ids[:max_len], labels[:max_len], weights[:max_len]
    meta = {"index": index, **({"id": example.meta["id"]} if "id" in example.meta else {})}
    n, p = len(input_ids), min(len(prompt_ids), len(input_ids))
    c = min(p + n_cot, n)
    spans = {"prompt": (0, p), "cot": (p, c), "answer": (c, n)}
    return Rendered(input_ids, labels, weights, p, meta, spans)


def render_all(examples: Sequence[Example], tokenizer, *, max_len: int | None = None,
               overlong: str = "error") -> list[Rendered]:
    """Render many examples; `overlong="drop"` skips those longer than `max_len` (docs/methods/packing.md §c.2)."""
    if overlong not in OVERLONG:
        raise ValueError(f"render_all: overlong must be one of {OVERLONG}, got {overlong!r}")
    out = []
    for i, ex in enumerate(examples):
        mode = "error" if overlong == "drop" else overlong
        try:
            out.append(render(ex, tokenizer, max_len=max_len, overlong=mode, index=i))
        except ValueError:
            if overlong != "drop":
                raise
    return out


def show_rendered(rendered: Rendered, tokenizer, *, show_weights: bool = True) -> str:
    """The rendered text with every trained run of tokens wrapped in `[[...]]`.

    Special tokens are printed by name (`<bos>`, `<eos>`, `<mask>`); a run whose weight is not 1
    is followed by `{w=...}` so weighted examples are visible too.
    """
    runs: list[tuple[bool, float, list[int]]] = []  # (trained, weight, ids)
    for tok, lab, w in zip(rendered.input_ids, rendered.labels, rendered.weights, strict=True):
        trained = lab != IGNORE_INDEX
        if runs and runs[-1][0] == trained and runs[-1][1] == w:
            runs[-1][2].append(tok)
        else:
            runs.append((trained, w, [tok]))
    parts = []
    for trained, w, ids in runs:
        text = tokenizer.decode(ids, skip_special_tokens=False)
        if trained:
            suffix = f"{{w={w:g}}}" if show_weights and w != 1.0 else ""
            parts.append(f"[[{text}]]{suffix}")
        else:
            parts.append(text)
    return "".join(parts)
