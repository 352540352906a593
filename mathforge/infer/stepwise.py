"""Step-wise generation with KV-cache reuse for a generator and a value model (TSMC, Feng et al. 2025,
"Step-by-Step Reasoning for Math Problems via Twisted Sequential Monte Carlo"; docs/methods/tsmc.md §e.3, §e.8).

A `StepState` holds `n` rows (particles) per prompt. `extend` runs live rows to their next step
boundary, EOS or token budget (all rows, or, given groups, until some group has no row running);
`score` reads the value model at each row's last token; `select` keeps, drops, reorders or
duplicates rows, reindexing the generator's and the value model's caches together. Each model
reads every token once: each prompt is prefilled once, and each extension feeds only new tokens
(the original re-encodes every prefix for the value model each round).

Rows decode in one batch over the caches of `step_cache.py` (the prompt stored once per prompt
and each row's tokens at its own length, where the architecture allows; else one padded cache).
Rows that finished (EOS or budget) leave the generator's cache at once and the value model's
cache once scored.

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

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from mathforge.infer.sampling import row_generator, sample_rows
from mathforge.infer.step_cache import make_store
from mathforge.infer.types import SamplingParams


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
    round_start: int = 0  # len(tokens) when its current step began
    waiting: bool = True  # not decoding: at a boundary (or not begun, or finished)
    scored: int = 0  # tokens the value model has read

    def copy(self) -> Row:
        return Row(**{k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()})

    @property
    def new_tokens(self) -> int:
        return len(self.tokens) - self.round_start


@dataclass
class StepState:
    prompts: list[list[int]]
    rows: list[Row]
    gen: Any  # step_cache store of the generator
    val: Any  # ... and of the value model (None without one)
    gens: dict[tuple, torch.Generator]
    generated_tokens: int = 0  # every token sampled (compute)
    value_tokens: int = 0  # every token the value model read, prompts included
    value_seconds: float = 0.0  # wall time spent in value-model reads (`score`)

    @property
    def finished(self) -> bool:
        return all(r.finish is not None for r in self.rows)


class StepGenerator:
    """Step-wise sampling from an HF causal LM, optionally with a `ValueModel` reading along."""

    def __init__(self, model, tokenizer, *, value_model=None, params: SamplingParams = SamplingParams(),
                 steps: StepConfig = StepConfig(), split_cache: bool | None = None) -> None:
        """`split_cache`: the prompt-once cache of `step_cache.SplitStore` (default: where the
        architecture allows it exactly); False forces the padded cache of stock attention."""
        from mathforge.infer.hf_engine import _eos_ids

        self.model, self.tok, self.value = model.eval(), tokenizer, value_model
        if value_model is not None:
            value_model.eval()
        self.params, self.steps, self.split = params, steps, split_cache
        self.device = next(model.parameters()).device
        self.eos = torch.tensor(sorted(_eos_ids(model, tokenizer)) or [-1], device=self.device)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(self.eos[0])
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        self._tails: dict[tuple[int, ...], bool] = {}  # token tail -> does its text hold the delimiter

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
        store = dict(pad_id=self.pad_id, capacity=self.params.max_new_tokens + 1, device=self.device, split=self.split)
        with torch.inference_mode():
            gen = make_store(self.model, prompts, expand, lm=True, **store)
            val = make_store(self.value, prompts, expand, lm=False, **store) if self.value is not None else None
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

    # ---------------------------------------------------------------------------------------- extend
    def begin(self, state: StepState, rows: list[int]) -> None:
        """Rows `rows` begin a new step: the next `extend(..., groups=...)` runs them."""
        for i in rows:
            r = state.rows[i]
            r.waiting, r.round_start = r.finish is not None, len(r.tokens)

    def extend(self, state: StepState, *, allow_boundary: list[bool] | None = None,
               groups: list[list[int]] | None = None, min_ready: float = 0.0, patience: int = 0) -> list[int]:
        """Decode rows to their next boundary (where `allow_boundary[row]`, default all), EOS or budget.

        Without `groups`: every unfinished row begins a new step and all run until none is left
        running; returns the rows that generated tokens. With `groups` (lists of rows): only rows
        begun (`begin`) and not yet at a boundary run, and the call returns as soon as some groups
        have no running row, with their indices in `groups`: once a `min_ready` fraction of the
        groups is ready, or `patience` decoding steps after the first one was (so that scoring
        and resampling run in fewer, larger batches); the other rows keep their progress
        and go on at the next call. So a group waits for its own slowest row only (TSMC resamples
        within groups), not for the slowest row of the batch.

        Boundaries are looked for only while allowed: a delimiter completed while a row's boundaries
        are off never fires later."""
        rows = state.rows
        allow = [True] * len(rows) if allow_boundary is None else list(allow_boundary)
        if len(allow) != len(rows):
            raise ValueError(f"allow_boundary has {len(allow)} entries for {len(rows)} rows")
        if groups is None:
            self.begin(state, list(range(len(rows))))
        running = {i for i, r in enumerate(rows) if not r.waiting}
        waited = 0  # decoding steps since the first group became ready
        with torch.inference_mode():
            while running:
                running = self._decode_step(state, running, allow)
                if groups is not None:
                    ready = [g for g, members in enumerate(groups) if running.isdisjoint(members)]
                    waited += bool(ready)
                    if ready and (len(ready) >= min_ready * len(groups) or waited > patience):
                        return ready
        if groups is not None:
            return list(range(len(groups)))
        return [i for i, r in enumerate(rows) if r.new_tokens > 0]

    def _decode_step(self, state: StepState, running: set[int], allow: list[bool]) -> set[int]:
        """Sample one token for the running rows, then feed those that go on. Returns the rows still
        running (not at a boundary, not finished). Finished rows leave the cache at once."""
        g = state.gen
        where = g.where()
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
                r.finish, r.waiting, finished = ("eos" if is_eos[j] else "length"), True, True
                continue
            feed[i] = tokens[j]  # its next logits are needed (now or after the boundary)
            if allow[i] and self._boundary(r):
                r.waiting = True
            else:
                still.add(i)
        if finished:
            self._drop_finished(state)
        if feed:
            where = g.where()
            crow = [where[i] for i in feed]
            logits = g.feed(crow, [[t] for t in feed.values()])  # [A, V]
            g.logits[torch.tensor(crow, device=self.device)] = logits
        return still

    def _boundary(self, r: Row) -> bool:
        """Did the last token complete a step delimiter (§e.3, text rule)? Records it when it fires."""
        d = self.steps.delimiter
        # Fast path: a delimiter completed by the last token lies within its last len(d) + 1 tokens
        # (their decoding memoised: a few distinct tails recur all the time).
        tail = tuple(r.tokens[max(r.step_start, len(r.tokens) - len(d) - 1):])
        hit = self._tails.get(tail)
        if hit is None:
            if len(self._tails) > 100_000:
                self._tails.clear()
            hit = self._tails[tail] = d in self.tok.decode(list(tail), skip_special_tokens=True)
        if not hit:
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
        t0 = time.perf_counter()
        with torch.inference_mode():
            h = self._reencode(state, rows) if reencode else self._score_cached(state, rows)
            if not reencode:
                self._drop_scored(state)
        state.value_seconds += time.perf_counter() - t0
        return h

    def _score_cached(self, state: StepState, rows: list[int]) -> torch.Tensor:
        v = state.val
        where = v.where()
        todo = [i for i in rows if state.rows[i].scored < len(state.rows[i].tokens)]
        gone = [i for i in todo if i not in where]  # left the cache unscored (truncated rows): read them whole
        if gone:
            v.h.update(zip(gone, self._reencode(state, gone), strict=True))
            for i in gone:
                state.rows[i].scored = len(state.rows[i].tokens)
            todo = [i for i in todo if i in where]
        if todo:
            new = [state.rows[i].tokens[state.rows[i].scored:] for i in todo]
            h = v.feed([where[i] for i in todo], new)  # [A]
            v.h.update(zip(todo, h, strict=True))
            state.value_tokens += sum(len(t) for t in new)
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
            r = old[j] if j == i and keys[i] == old[j].key else old[j].copy()  # rows that stay are not copied
            r.key = keys[i]
            if r.key not in state.gens and not self.params.greedy:
                state.gens[r.key] = row_generator(self.params.seed, *r.key, device=self.device)
            new.append(r)
        for cache in (state.gen, state.val):
            if cache is None:
                continue
            where = cache.where()
            pairs = [(where[j], i) for i, j in enumerate(indices) if j in where]
            with torch.inference_mode():  # the caches are inference tensors, updated in place
                cache.keep([c for c, _ in pairs], [i for _, i in pairs])
            cache.h = {i: cache.h[j] for i, j in enumerate(indices) if j in cache.h}
        state.rows = new

    def text(self, state: StepState, i: int) -> str:
        return self.tok.decode(state.rows[i].tokens, skip_special_tokens=True)
