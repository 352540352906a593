"""Step-wise generation with KV-cache reuse for a generator and a value model (TSMC, Feng et al. 2025,
"Step-by-Step Reasoning for Math Problems via Twisted Sequential Monte Carlo"; methods.md §e.3, §e.8).

A `StepState` holds `n` rows (particles) per prompt. `extend` runs every live row to its next step
boundary, EOS or token budget; `score` reads the value model at each row's last token; `select`
keeps, drops, reorders or duplicates rows, reindexing the generator's and the value model's caches
together. Each model reads every token once: the prompt is prefilled once per prompt and copied to
its rows, and each extension feeds only new tokens (the original re-encodes every prefix for the
value model each round).

Rows decode in one batch. A row that waits at a boundary while others continue gets a masked hole
in its cache (attention mask 0), so caches of rows at different lengths stay one tensor; positions
are tracked per row. Rows that finished (EOS or budget) leave the generator's cache at once and the
value model's cache once scored.

Step boundaries (§e.3, text rule, the mathforge Default): a step ends at the token that completes
the delimiter (`"\\n\\n"` by default, any string) in the decoded text of the step, unless the text
before it is empty (runs of blank lines do not make empty steps) or ends with the answer header
(`# Answer`: the answer runs to EOS). Detection is token-exact: the boundary is the very token whose
decoding completes the delimiter.

Randomness: each row draws from the stream of its key `(problem key, particle)` (`sampling.py`),
so a row's tokens depend only on its own history, not on batching; `select` takes the keys of the
new rows so copies made by resampling draw from their own streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from mathforge.infer.sampling import row_generator, sample_rows
from mathforge.infer.types import SamplingParams


class _GrowingLayer(DynamicLayer):
    """Keys/values of each row in a preallocated buffer [R, H, capacity, D], written in place (no
    concatenation of the whole cache at every decoding step); the capacity doubles when full."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, extra: int) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        self.keys = keys.new_empty(rows, heads, length + extra, dim)
        self.values = values.new_empty(rows, heads, length + extra, dim)
        self.keys[:, :, :length], self.values[:, :, :length] = keys, values
        self.length = length
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[2]
        if end > self.keys.shape[2]:
            grow = max(end, 2 * self.keys.shape[2]) - self.keys.shape[2]
            pad = (0, 0, 0, grow)
            self.keys = torch.nn.functional.pad(self.keys, pad)
            self.values = torch.nn.functional.pad(self.values, pad)
        self.keys[:, :, self.length:end] = key_states  # [R, H, new, D]
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if len(indices) == self.keys.shape[0]:  # resampling: rewrite only the rows that change, in place
            changed = torch.nonzero(indices != torch.arange(len(indices), device=indices.device)).squeeze(1)
            if len(changed):
                src, n = indices[changed], self.length
                self.keys[changed, :, :n] = self.keys[src, :, :n]  # the gather copies first: overlaps are safe
                self.values[changed, :, :n] = self.values[src, :, :n]
            return
        self.keys, self.values = self.keys[indices], self.values[indices]  # duplicates are plain copies


class _GrowingCache(Cache):
    """A prefilled cache expanded to rows (`rows[r]` = the prompt of row r), with room to grow."""

    def __init__(self, prefill: Cache, rows: torch.Tensor, extra: int) -> None:
        super().__init__(layers=[_GrowingLayer(layer.keys[rows], layer.values[rows], extra) for layer in prefill.layers])


@dataclass(frozen=True)
class StepConfig:
    """Where steps end. `warmup`: no boundary fires before this many tokens are generated (per row)."""

    delimiter: str = "\n\n"
    answer_header: str = "# Answer"
    warmup: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.delimiter, str) or not self.delimiter:
            raise ValueError(f"StepConfig.delimiter must be a non-empty string, got {self.delimiter!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"StepConfig.warmup must be an int >= 0, got {self.warmup!r}")


@dataclass
class Row:
    """One particle: its generated tokens, log-probs and where its steps ended."""

    problem: int  # index of its prompt in `start`
    key: tuple  # (problem key, particle): its random stream
    limit: int  # token budget
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # raw model log-probs
    proposal: list[float] = field(default_factory=list)  # log-probs under the sampling distribution
    boundaries: list[int] = field(default_factory=list)  # index in `tokens` of each step's last token
    finish: str | None = None  # "eos" | "length" once finished
    step_start: int = 0  # index in `tokens` where the current step began
    scan_from: int = 0  # characters of the current step's text already checked for the delimiter
    round_start: int = 0  # len(tokens) when the last `extend` began
    scored: int = 0  # tokens the value model has read

    def copy(self) -> Row:
        return Row(**{k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()})

    @property
    def new_tokens(self) -> int:
        return len(self.tokens) - self.round_start


@dataclass
class _Cache:
    """One model's KV cache over the live rows: cache row c holds state row `owner[c]`."""

    cache: Any
    mask: torch.Tensor  # [C, L] attention mask (0 on left padding and holes)
    pos: torch.Tensor  # [C] position id of the next real token
    owner: list[int]
    logits: torch.Tensor | None = None  # [C, V] next-token logits (generator only)
    h: dict[int, torch.Tensor] = field(default_factory=dict)  # state row -> last value logit read (value only)

    def keep(self, sel: list[int], owners: list[int]) -> None:
        idx = torch.tensor(sel, dtype=torch.long, device=self.mask.device)
        if len(sel) != len(self.owner) or sel != list(range(len(sel))):
            self.cache.batch_select_indices(idx)
            self.mask, self.pos = self.mask[idx], self.pos[idx]
            if self.logits is not None:
                self.logits = self.logits[idx]
        self.owner = owners


@dataclass
class StepState:
    prompts: list[list[int]]
    rows: list[Row]
    gen: _Cache
    val: _Cache | None
    gens: dict[tuple, torch.Generator]
    generated_tokens: int = 0  # every token sampled (compute)
    value_tokens: int = 0  # every token the value model read, prompts included

    @property
    def finished(self) -> bool:
        return all(r.finish is not None for r in self.rows)


class StepGenerator:
    """Step-wise sampling from an HF causal LM, optionally with a `ValueModel` reading along."""

    def __init__(self, model, tokenizer, *, value_model=None, params: SamplingParams = SamplingParams(),
                 steps: StepConfig = StepConfig()) -> None:
        from mathforge.infer.hf_engine import _eos_ids

        self.model, self.tok, self.value = model.eval(), tokenizer, value_model
        if value_model is not None:
            value_model.eval()
        self.params, self.steps = params, steps
        self.device = next(model.parameters()).device
        self.eos = torch.tensor(sorted(_eos_ids(model, tokenizer)) or [-1], device=self.device)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(self.eos[0])
        self.max_positions = getattr(model.config, "max_position_embeddings", None)

    # ---------------------------------------------------------------------------------------- start
    def start(self, prompts: list[list[int]], n: int, *, keys: list[Any] | None = None) -> StepState:
        """`n` rows per prompt (token ids). `keys[p]` identifies problem p's random streams (default:
        its token ids), so the same problem gets the same samples in any batch."""
        if n < 1 or not prompts:
            raise ValueError(f"StepGenerator.start needs prompts and n >= 1 (got {len(prompts)} prompts, n={n})")
        keys = [tuple(p) for p in prompts] if keys is None else list(keys)
        rows = [Row(problem=p, key=(keys[p], j), limit=self._limit(p, len(ids)))
                for p, ids in enumerate(prompts) for j in range(n)]
        expand = [r.problem for r in rows]
        with torch.inference_mode():
            gen = self._prefill(self.model, prompts, expand, lm=True)
            val = self._prefill(self.value, prompts, expand, lm=False) if self.value is not None else None
        gens = {} if self.params.greedy else {r.key: row_generator(self.params.seed, *r.key, device=self.device)
                                              for r in rows}
        state = StepState(prompts=[list(p) for p in prompts], rows=rows, gen=gen, val=val, gens=gens)
        state.value_tokens = sum(len(p) for p in prompts) if val is not None else 0
        return state

    def _limit(self, idx: int, prompt_len: int) -> int:
        if prompt_len == 0:
            raise ValueError(f"prompt {idx} encodes to zero tokens")
        if self.max_positions is not None and prompt_len >= self.max_positions:
            raise ValueError(f"prompt {idx} has {prompt_len} tokens, the model's context is {self.max_positions}")
        room = self.max_positions - prompt_len if self.max_positions is not None else self.params.max_new_tokens
        return min(self.params.max_new_tokens, room)

    def _prefill(self, model, prompts: list[list[int]], expand: list[int], *, lm: bool) -> _Cache:
        from transformers import DynamicCache

        width = max(len(x) for x in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(x)) + x for x in prompts], device=self.device)  # [P, T]
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], device=self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [P, T]
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        sel = torch.tensor(expand, device=self.device)  # [R] prompt of each row
        cache = _GrowingCache(cache, sel, extra=self.params.max_new_tokens)  # [P, H, T, D] -> [R, H, T + extra, D]
        logits = out.logits[:, -1, :].float()[sel] if lm else None  # [R, V]
        return _Cache(cache=cache, mask=mask[sel], pos=pos[sel, -1] + 1, owner=list(range(len(expand))), logits=logits)

    # ---------------------------------------------------------------------------------------- extend
    def extend(self, state: StepState, *, allow_boundary: list[bool] | None = None) -> list[int]:
        """Run every unfinished row to its next boundary (where `allow_boundary[row]`, default all),
        EOS or budget. Returns the rows that generated tokens.

        Boundaries are looked for only while allowed: a delimiter completed while a row's boundaries
        are off never fires later."""
        rows = state.rows
        allow = [True] * len(rows) if allow_boundary is None else list(allow_boundary)
        if len(allow) != len(rows):
            raise ValueError(f"allow_boundary has {len(allow)} entries for {len(rows)} rows")
        for r in rows:
            r.round_start = len(r.tokens)
        running = {i for i, r in enumerate(rows) if r.finish is None}  # state rows
        with torch.inference_mode():
            while running:
                running = self._decode_step(state, running, allow)
        return [i for i, r in enumerate(rows) if r.new_tokens > 0]

    def _decode_step(self, state: StepState, running: set[int], allow: list[bool]) -> set[int]:
        """Sample one token for the running rows, then feed those that go on. Returns the rows still
        running (not at a boundary, not finished). Finished rows leave the cache at once."""
        g = state.gen
        where = {i: c for c, i in enumerate(g.owner)}
        owners = sorted(running)
        act = [where[i] for i in owners]  # their cache rows
        gens = [state.gens.get(state.rows[i].key) for i in owners]
        token, raw, prop = sample_rows(g.logits[act], self.params, gens)  # [A] x3
        is_eos = torch.isin(token, self.eos).tolist()
        tokens, raw, prop = token.tolist(), raw.tolist(), prop.tolist()
        state.generated_tokens += len(act)
        still, feed, finished = set(), {}, False
        for j, i in enumerate(owners):
            r = state.rows[i]
            r.tokens.append(tokens[j])
            r.logprobs.append(raw[j])
            r.proposal.append(prop[j])
            if is_eos[j] or len(r.tokens) >= r.limit:
                r.finish, finished = ("eos" if is_eos[j] else "length"), True
                continue
            feed[i] = tokens[j]  # its next logits are needed (now or after the boundary)
            if not (allow[i] and self._boundary(r)):
                still.add(i)
        if finished:
            self._drop_finished(state)
        if feed:
            where = {i: c for c, i in enumerate(g.owner)}
            self._feed_one(g, [where[i] for i in feed], list(feed.values()))
        return still

    def _boundary(self, r: Row) -> bool:
        """Did the last token complete a step delimiter (§e.3, text rule)? Records it when it fires."""
        d = self.steps.delimiter
        # Fast path: a delimiter completed by the last token lies within its last len(d) + 1 tokens.
        if d not in self.tok.decode(r.tokens[max(r.step_start, len(r.tokens) - len(d) - 1):], skip_special_tokens=True):
            return False
        text = self.tok.decode(r.tokens[r.step_start:], skip_special_tokens=True)
        i = text.rfind(d)
        if i < r.scan_from:
            return False  # that delimiter was completed (and judged) at an earlier token
        before = text[:i]
        if not before.strip() or before.rstrip().endswith(self.steps.answer_header) or len(r.tokens) < self.steps.warmup:
            r.scan_from = i + len(d)  # an empty step, the answer's blank line, or still warming up
            return False
        r.boundaries.append(len(r.tokens) - 1)
        r.step_start, r.scan_from = len(r.tokens), 0
        return True

    def _feed_one(self, g: _Cache, feed: list[int], tokens: list[int]) -> None:
        """One forward step over the whole cache: cache rows `feed` read `tokens`, the others a hole."""
        n = len(g.owner)
        ids = torch.full((n, 1), self.pad_id, device=self.device)
        col = torch.zeros(n, 1, dtype=g.mask.dtype, device=self.device)
        idx = torch.tensor(feed, device=self.device)
        ids[idx, 0] = torch.tensor(tokens, device=self.device)
        col[idx, 0] = 1
        g.mask = torch.cat([g.mask, col], dim=1)  # [C, L+1]
        out = self.model(input_ids=ids, attention_mask=g.mask, position_ids=g.pos[:, None], cache=g.cache,
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()  # [C, V]
        g.logits[idx] = logits[idx]
        g.pos = g.pos + col[:, 0].to(g.pos.dtype)

    def _drop_finished(self, state: StepState) -> None:
        g = state.gen
        keep = [c for c, i in enumerate(g.owner) if state.rows[i].finish is None]
        g.keep(keep, [g.owner[c] for c in keep])

    # ---------------------------------------------------------------------------------------- score
    def score(self, state: StepState, rows: list[int], *, reencode: bool = False) -> torch.Tensor:
        """The value logit h at the last token of each of `rows` ([len(rows)], float32).

        Each row's unread tokens are fed to the value model's cache once; `reencode=True` instead
        runs the value model over prompt + generation from scratch (what the original does)."""
        if self.value is None:
            raise ValueError("StepGenerator.score needs a value model")
        if any(not state.rows[i].tokens for i in rows):
            raise ValueError("score: a row has generated no token yet")
        with torch.inference_mode():
            h = self._reencode(state, rows) if reencode else self._score_cached(state, rows)
            if not reencode:
                self._drop_scored(state)
        return h

    def _score_cached(self, state: StepState, rows: list[int]) -> torch.Tensor:
        v = state.val
        where = {i: c for c, i in enumerate(v.owner)}
        todo = [i for i in rows if state.rows[i].scored < len(state.rows[i].tokens)]
        gone = [i for i in todo if i not in where]  # left the cache unscored (truncated rows): read them whole
        if gone:
            v.h.update(zip(gone, self._reencode(state, gone), strict=True))
            for i in gone:
                state.rows[i].scored = len(state.rows[i].tokens)
            todo = [i for i in todo if i in where]
        if todo:
            width = max(len(state.rows[i].tokens) - state.rows[i].scored for i in todo)
            n = len(v.owner)
            ids = torch.full((n, width), self.pad_id, device=self.device)  # [C, S]
            cols = torch.zeros(n, width, dtype=v.mask.dtype, device=self.device)
            for i in todo:
                r = state.rows[i]
                new = r.tokens[r.scored:]
                ids[where[i], : len(new)] = torch.tensor(new, device=self.device)
                cols[where[i], : len(new)] = 1
            v.mask = torch.cat([v.mask, cols], dim=1)  # [C, L+S]
            pos = v.pos[:, None] + cols.cumsum(1) - 1  # [C, S] real positions (holes reuse the last one)
            out = self.value(input_ids=ids, attention_mask=v.mask, position_ids=pos.clamp(min=0), cache=v.cache,
                             use_cache=True)
            last = (cols.sum(1) - 1).clamp(min=0)  # [C] index of each row's last new token
            h_all = out.logits.gather(1, last[:, None].long()).squeeze(1)  # [C]
            v.pos = v.pos + cols.sum(1).to(v.pos.dtype)
            v.h.update({i: h_all[where[i]] for i in todo})
            state.value_tokens += int(cols.sum())
            for i in todo:
                state.rows[i].scored = len(state.rows[i].tokens)
        return torch.stack([v.h[i] for i in rows]).float()

    def _drop_scored(self, state: StepState) -> None:
        v = state.val
        # Finished rows are never read again once scored; truncated ones are rarely scored at all.
        keep = [c for c, i in enumerate(v.owner) if not (state.rows[i].finish == "length" or (
            state.rows[i].finish and state.rows[i].scored == len(state.rows[i].tokens)))]
        v.keep(keep, [v.owner[c] for c in keep])

    def _reencode(self, state: StepState, rows: list[int]) -> torch.Tensor:
        seqs = [state.prompts[state.rows[i].problem] + state.rows[i].tokens for i in rows]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([[self.pad_id] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        state.value_tokens += sum(len(s) for s in seqs)
        return self.value(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].float()  # [len(rows)]

    # ---------------------------------------------------------------------------------------- select
    def select(self, state: StepState, indices: list[int], *, keys: list[tuple] | None = None) -> None:
        """Make new row i a copy of old row `indices[i]` (duplicates allowed), with random-stream key
        `keys[i]` (default: the ancestor's key; keys must end up distinct). Both caches follow."""
        old = state.rows
        if any(not 0 <= j < len(old) for j in indices):
            raise ValueError(f"select: an index is out of range 0..{len(old) - 1}")
        keys = [old[j].key for j in indices] if keys is None else list(keys)
        if len(keys) != len(indices):
            raise ValueError(f"select: {len(keys)} keys for {len(indices)} rows")
        if len(set(keys)) != len(keys):
            raise ValueError("select: duplicate row keys; pass keys= so each copy draws from its own random stream")
        new = []
        for i, j in enumerate(indices):
            r = old[j].copy()
            r.key = keys[i]
            if r.key not in state.gens and not self.params.greedy:
                state.gens[r.key] = row_generator(self.params.seed, *r.key, device=self.device)
            new.append(r)
        for cache in (state.gen, state.val):
            if cache is None:
                continue
            where = {i: c for c, i in enumerate(cache.owner)}
            pairs = [(where[j], i) for i, j in enumerate(indices) if j in where]
            with torch.inference_mode():  # the caches are inference tensors, updated in place
                cache.keep([c for c, _ in pairs], [i for _, i in pairs])
            cache.h = {i: cache.h[j] for i, j in enumerate(indices) if j in cache.h}
        state.rows = new

    def text(self, state: StepState, i: int) -> str:
        return self.tok.decode(state.rows[i].tokens, skip_special_tokens=True)
