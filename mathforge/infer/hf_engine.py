"""HFEngine: batched sampling from a transformers causal LM with a KV cache and shared-prefix decoding.

The decoding loop is written out (rather than calling `model.generate`) for reasons that the
bench (`bench/generation.py`) measures:

* **Shared prefill and shared-prefix attention.** With `n > 1` samples per prompt the prompt is
  encoded once (`num_return_sequences` in `model.generate` prefills `n` identical copies), and
  while decoding its KV cache is stored and read once for all `n` rows (Hydragen, Juravsky et al.
  2024; see `prefix_attention.py`). Architectures that attention cannot split exactly (sliding
  windows, soft-capping) copy the prompt cache to the `n` rows instead (`shared_prefix=False`).
* **Per-row stopping.** Rows that hit EOS, a stop string or their length limit are dropped from
  the batch and its cache, so they stop costing compute; `generate` keeps them until the last row ends.
* **Length-sorted batches.** Prompts are grouped by length so left padding wastes little.

Greedy decoding (temperature 0) reproduces `model.generate(do_sample=False)`; sampling applies
temperature, top-k then top-p (`sampling.py`) with one random stream per (seed, prompt, sample), so a
sample does not depend on the batch size or on the other prompts of the call.
Stop strings follow docs/methods/evaluation.md §g.2 (EOS always stops; the stop string is cut from the text).
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mathforge.infer.prefix_attention import KWARG as PREFIX_KWARG
from mathforge.infer.prefix_attention import SharedPrefixCache, shared_prefix_attention, supports
from mathforge.infer.sampling import row_generator, sample_rows
from mathforge.infer.sampling import top_p_filter as _top_p  # noqa: F401  (tested under this name)
from mathforge.infer.types import Completion, SamplingParams, chat_messages, check_generate_args, cut_at_stop


@dataclass
class _Row:
    """Python-side state of one sample row while it decodes."""

    prompt_idx: int
    sample_idx: int
    limit: int  # max new tokens for this row (clamped by the model's context length)
    gen: torch.Generator | None = None  # this row's random stream
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    proposal: list[float] = field(default_factory=list)
    finish: str | None = None


class HFEngine:
    """Generate with any `transformers` causal LM on CPU or GPU.

    `batch_size` bounds the number of sample rows decoded together (prompts x samples). With
    `chat=True` and a tokenizer that has a chat template, each prompt is sent as one user turn
    (after a `system` turn when one is set).
    Not safe for concurrent `generate` calls on one model (decoding switches the model's attention
    implementation for its duration); the server serialises requests.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 32, chat: bool = False,
                 shared_prefix: bool = True, system: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"HFEngine batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.chat = chat
        self.system = system
        # Shared-prefix attention where the architecture allows it exactly; copies of the prompt cache otherwise.
        self.shared_prefix = shared_prefix and supports(model)
        if chat and not getattr(tokenizer, "chat_template", None):
            warnings.warn("HFEngine(chat=True) but the tokenizer has no chat template: prompts are sent as is",
                          stacklevel=2)
        self.device = next(model.parameters()).device
        self.eos_ids = sorted(_eos_ids(model, tokenizer))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        # transformers 5 renamed `past_key_values` to `cache`; support both spellings.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" in params

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | None = None, dtype: str | None = None,
                        **kwargs) -> HFEngine:
        """Load a local HF folder (model + tokenizer) offline; `dtype` like "bfloat16" (default: as saved)."""
        from mathforge.models import load_model

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer = load_model(path, dtype=dtype or "auto", device=device)
        return cls(model, tokenizer, **kwargs)

    # ------------------------------------------------------------------------------------------------
    def encode(self, prompts: list[str]) -> list[list[int]]:
        return encode_prompts(self.tokenizer, prompts, chat=self.chat, system=self.system)

    def generate(self, prompts: list[str], *, n: int = 1, params: SamplingParams = SamplingParams(),
                 stop: list[str] | None = None) -> list[list[Completion]]:
        check_generate_args(prompts, n, stop)
        return self.generate_ids(self.encode(prompts), n=n, params=params, stop=stop)

    def generate_ids(self, ids: list[list[int]], *, n: int = 1, params: SamplingParams = SamplingParams(),
                     stop: list[str] | None = None) -> list[list[Completion]]:
        """`generate` from already tokenized prompts (the server renders multi-turn chats itself)."""
        stop = check_generate_args([""] * len(ids), n, stop)
        limits = [self._row_limit(i, len(x), params.max_new_tokens) for i, x in enumerate(ids)]
        out: list[list[Completion | None]] = [[None] * n for _ in ids]
        for batch in self._plan(ids, n):
            # The random stream of a sample is keyed by its prompt's tokens and its index, not by its batch.
            rows = [_Row(p, s, limits[p], None if params.greedy else row_generator(params.seed, tuple(ids[p]), s))
                    for p, first, count in batch for s in range(first, first + count)]
            with torch.inference_mode():
                self._decode([ids[p] for p, _, _ in batch], [c for _, _, c in batch], rows, params, stop)
            for row in rows:
                out[row.prompt_idx][row.sample_idx] = self._completion(row, stop)
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------------
    def _row_limit(self, idx: int, prompt_len: int, max_new: int) -> int:
        if prompt_len == 0:
            raise ValueError(f"prompt {idx} encodes to zero tokens")
        if self.max_positions is None:
            return max_new
        if prompt_len >= self.max_positions:
            raise ValueError(f"prompt {idx} has {prompt_len} tokens, the model's context is {self.max_positions}")
        return min(max_new, self.max_positions - prompt_len)

    def _plan(self, ids: list[list[int]], n: int) -> list[list[tuple[int, int, int]]]:
        """Group (prompt, first sample, sample count) units into batches of <= batch_size rows.

        Longest prompts first (memory peaks early, padding stays small); a prompt whose n exceeds
        the batch size is split into chunks, each with its own prefill.
        """
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        units = [(p, s, min(self.batch_size, n - s)) for p in order for s in range(0, n, self.batch_size)]
        batches: list[list[tuple[int, int, int]]] = []
        rows = 0
        for unit in units:
            if not batches or rows + unit[2] > self.batch_size:
                batches.append([])
                rows = 0
            batches[-1].append(unit)
            rows += unit[2]
        return batches

    def _forward(self, input_ids, attention_mask, position_ids, cache, **extra):
        kw = {self._cache_kw: cache, "use_cache": True, **extra}
        if self._keep_kw:
            kw["logits_to_keep"] = 1  # only the last position's logits are needed
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kw)
        return out.logits[:, -1, :].float()  # [B, V]

    def _prefill(self, prompt_ids: list[list[int]], counts: list[int], capacity: int):
        """Encode each distinct prompt once; its samples share that cache (shared-prefix attention)
        or get copies of it (the plain path). Returns (cache, logits [R, V], mask [R, T], position [R])."""
        from transformers import DynamicCache

        width = max(len(x) for x in prompt_ids)
        padded = [[self.pad_id] * (width - len(x)) + x for x in prompt_ids]  # left padding
        input_ids = torch.tensor(padded, device=self.device)  # [P, T]
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompt_ids], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [P, T]; pads get position 0, as generate does
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(input_ids, mask, positions, cache)  # [P, V]
        expand = torch.repeat_interleave(torch.arange(len(counts), device=self.device),
                                         torch.tensor(counts, device=self.device))  # [R]
        if self.shared_prefix:
            cache = SharedPrefixCache(cache, mask, counts, capacity)
        elif len(expand) != len(counts):
            cache.batch_select_indices(expand)  # [P, H, T, D] -> [R, H, T, D]
        return cache, logits[expand], mask[expand], positions[expand, -1]

    def _decode(self, prompt_ids, counts, rows: list[_Row], params: SamplingParams, stop: list[str]) -> None:
        cache, logits, mask, last_pos = self._prefill(prompt_ids, counts, max(r.limit for r in rows))
        active = list(range(len(rows)))  # indices into `rows` of the rows still in the batch
        eos = torch.tensor(self.eos_ids or [-1], device=self.device)
        window = max((len(s) for s in stop), default=0) + 8  # tokens to re-decode for stop checks
        with shared_prefix_attention(self.model) if self.shared_prefix else contextlib.nullcontext():
            while True:
                token, token_lp, prop_lp = sample_rows(logits, params, [rows[r].gen for r in active])  # [A] x3
                self._record(rows, active, token, token_lp, prop_lp, torch.isin(token, eos), stop, window)
                keep = [j for j, r in enumerate(active) if rows[r].finish is None]
                if not keep:
                    return
                if len(keep) < len(active):  # drop finished rows from the batch and the cache
                    sel = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(sel)
                    token, mask, last_pos = token[sel], mask[sel], last_pos[sel]
                    active = [active[j] for j in keep]
                last_pos = last_pos + 1
                if self.shared_prefix:
                    # A ready 4D mask passes through transformers untouched; the shared-prefix
                    # attention masks the prompt padding itself, so this is only a placeholder.
                    placeholder = torch.ones(len(active), 1, 1, 1, dtype=torch.bool, device=self.device)
                    logits = self._forward(token[:, None], placeholder, last_pos[:, None], cache,
                                           **{PREFIX_KWARG: cache})  # [A, V]
                else:
                    mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)  # [A, L+1]
                    logits = self._forward(token[:, None], mask, last_pos[:, None], cache)  # [A, V]

    def _record(self, rows, active, token, token_lp, prop_lp, is_eos, stop, window) -> None:
        """Append each active row's new token and decide whether the row is finished."""
        for j, (t, lp, pl, e) in enumerate(zip(token.tolist(), token_lp.tolist(), prop_lp.tolist(), is_eos.tolist(),
                                               strict=True)):
            row = rows[active[j]]
            row.tokens.append(t)
            row.logprobs.append(lp)
            row.proposal.append(pl)
            if e or (stop and self._hit_stop(row.tokens[-window:], stop)):
                row.finish = "stop"
            elif len(row.tokens) >= row.limit:
                row.finish = "length"

    def _hit_stop(self, tail: list[int], stop: list[str]) -> bool:
        text = self.tokenizer.decode(tail, skip_special_tokens=True)
        return any(s in text for s in stop)

    def _completion(self, row: _Row, stop: list[str]) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        text, found = cut_at_stop(text, stop)
        keep = len(row.tokens)
        if found:  # drop the tokens that reach into the stop string (the last one at least completed it)
            while keep > 0 and len(self.tokenizer.decode(row.tokens[:keep], skip_special_tokens=True)) > len(text):
                keep -= 1
        lps, prop = row.logprobs[:keep], row.proposal[:keep]
        return Completion(text=text, token_ids=row.tokens[:keep], n_tokens=len(row.tokens),
                          logprob=float(sum(lps)), finish_reason=row.finish or "length", token_logprobs=lps,
                          proposal_logprob=float(sum(prop)), proposal_token_logprobs=prop)


def encode_prompts(tokenizer, prompts: list[str], *, chat: bool, system: str | None = None) -> list[list[int]]:
    """Token ids of each prompt, through the chat template (one user turn, after a `system` turn when
    given) when `chat` is on and one exists."""
    if chat and getattr(tokenizer, "chat_template", None):
        return [chat_ids(tokenizer, chat_messages(p, system)) for p in prompts]
    return [tokenizer(p)["input_ids"] for p in prompts]


# For a model whose tokenizer has no chat template (every model mathforge trains from scratch): the
# turns' texts back to back with no role markers, so one user message is exactly the prompt the model
# was trained on (the tokenizer adds BOS as it does for any prompt).
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}{% if m['role'] != 'user' %}\n\n{% endif %}{% endfor %}"
)


def chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Render a conversation with the tokenizer's chat template, ready for the assistant's turn; a
    tokenizer without one gets `PLAIN_CHAT_TEMPLATE`."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already carries BOS and role markers: add no special tokens twice.
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = tokenizer.apply_chat_template(messages, chat_template=PLAIN_CHAT_TEMPLATE, tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text)["input_ids"]


def _eos_ids(model, tokenizer) -> set[int]:
    """EOS ids from the tokenizer and the model's generation config (which may list several)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_cfg = getattr(model, "generation_config", None)
    extra = getattr(gen_cfg, "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(int(x) for x in extra)
    return ids
