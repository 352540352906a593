"""Implicit chain of thought via knowledge distillation (ICoT-KD; Deng et al. 2023, "Implicit Chain
of Thought Reasoning via Knowledge Distillation"), docs/methods/icot.md §f.6-§f.7: the model-side pieces.

- `teacher_positions` / `teacher_states` (§f.6): which position of the frozen explicit-CoT teacher
  each layer is read at (dynamic diagonal by default; fixed stride; and the ablation subsets with
  the semantics the original intended: `last_column` really reads s2, `top_row` / `bottom_row`
  read one layer at the diagonal positions), and the targets z_l = LN(H_l[t_l]) with H_l the
  *input* of block l and LN without scale or shift.
- `Substitution` (§f.7, pitfall §f.12-4/5): forward pre-hooks on every decoder block that overwrite
  the hidden state at position s1 of each example with a given vector per layer. The hook finds s1
  through the block's `position_ids`, so with a KV cache it fires in the prefill only (later tokens
  see the substituted states through the cache) and without a cache on every forward that
  contains s1: always exactly one position per layer per example, whatever the batch.
- `LayerMLPs`: the student's per-layer `Linear(h, 4h) -> ReLU -> Linear(4h, h)`.

s1 / s2 come from the rendered spans (`Rendered.separators()`): the last token of the `||` that ends
the question and the first token of the `####` that ends the CoT, where the original layout has its
two EOS separators. Decoder blocks are found at `model.model.layers` (Llama, Qwen, Mistral, Phi-3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

SUBSETS = ("diagonal", "first_column", "last_column", "top_row", "bottom_row")


def decoder_layers(model: Any) -> Any:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no decoder blocks at model.model.layers")
    return layers


def teacher_positions(s1: int, s2: int, n_layers: int, *, subset: str = "diagonal",
                      stride: int = 0) -> list[tuple[int, int]]:
    """(layer whose input is read, position) for each student layer l = 0..L-1 (§f.6)."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown teacher subset {subset!r}; known: {', '.join(SUBSETS)}")
    if stride:
        diag = [min(s2, s1 + li * stride) for li in range(n_layers)]
    else:
        delta = (s2 - s1) / (n_layers - 1) if n_layers > 1 else 0.0
        diag = [min(s2, round(s1 + li * delta)) for li in range(n_layers)]
    if subset == "diagonal":
        return list(enumerate(diag))
    if subset == "first_column":
        return [(li, s1) for li in range(n_layers)]
    if subset == "last_column":
        return [(li, s2) for li in range(n_layers)]
    if subset == "top_row":
        return [(n_layers - 1, t) for t in diag]
    return [(0, t) for t in diag]  # bottom_row


def layer_norm_plain(x: Any, eps: float = 1e-5) -> Any:
    """Subtract the mean, divide by sqrt(var + eps), over the last dimension (no learned affine)."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


def teacher_states(teacher: Any, input_ids: Any, attention_mask: Any, separators: list[tuple[int, int]], *,
                   subset: str = "diagonal", stride: int = 0) -> Any:
    """Targets z [B, L, H] of a frozen teacher on full-layout rows (right padded, one example a row)."""
    import torch

    with torch.no_grad():
        out = teacher(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    hidden = out.hidden_states[:-1]  # L tensors [B, T, H]: the input of block l (the last one is post-norm)
    n_layers = len(hidden)
    rows = []
    for b, (s1, s2) in enumerate(separators):
        picks = teacher_positions(s1, s2, n_layers, subset=subset, stride=stride)
        rows.append(torch.stack([hidden[layer][b, t] for layer, t in picks]))  # [L, H]
    return layer_norm_plain(torch.stack(rows).float())  # [B, L, H]


class Substitution(contextlib.AbstractContextManager):
    """Overwrite the state at position s1[b] before every block l with `vectors[b, l]`.

    `vectors` [B, L, H] and `s1` [B] (absolute positions). Records every substitution as
    (layer, row, position) in `self.hits` for inspection.
    """

    def __init__(self, model: Any, vectors: Any, s1: Any):
        self.layers = decoder_layers(model)
        if vectors.shape[1] != len(self.layers):
            raise ValueError(f"substitution: {vectors.shape[1]} vectors per example for {len(self.layers)} blocks")
        self.vectors, self.s1 = vectors, s1
        self.hits: list[tuple[int, int, int]] = []
        self._handles: list[Any] = []

    def _hook(self, layer: int):
        def pre_hook(module: Any, args: tuple, kwargs: dict) -> Any:
            hidden = args[0] if args else kwargs["hidden_states"]  # [B, T, H]
            pos = kwargs.get("position_ids")
            if pos is None:
                raise ValueError("substitution needs the block's position_ids")
            pos = pos.expand(hidden.shape[0], -1)  # [B, T]
            where = pos == self.s1.to(pos.device)[:, None]  # [B, T], at most one True per row
            if not bool(where.any()):
                return None
            rows, cols = where.nonzero(as_tuple=True)
            hidden = hidden.clone()
            hidden[rows, cols] = self.vectors[rows, layer].to(hidden.dtype)
            self.hits.extend((layer, int(r), int(c)) for r, c in zip(rows, cols, strict=True))
            if args:
                return (hidden, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": hidden}

        return pre_hook

    def __enter__(self) -> Substitution:
        for li, block in enumerate(self.layers):
            self._handles.append(block.register_forward_pre_hook(self._hook(li), with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def layer_mlps(hidden: int, n_layers: int, in_dim: int | None = None) -> Any:
    """One `Linear(in_dim, 4h) -> ReLU -> Linear(4h, h)` per layer (§f.7: in_dim = the teacher's h;
    §f.8: 2h)."""
    import torch

    return torch.nn.ModuleList(
        torch.nn.Sequential(torch.nn.Linear(in_dim or hidden, 4 * hidden), torch.nn.ReLU(),
                            torch.nn.Linear(4 * hidden, hidden))
        for _ in range(n_layers))


def apply_mlps(mlps: Any, z: Any) -> Any:
    """[B, L, H] -> [B, L, H]: MLP_l on the l-th vector of every example."""
    import torch

    return torch.stack([mlp(z[:, li]) for li, mlp in enumerate(mlps)], dim=1)


@contextlib.contextmanager
def substituted(model: Any, vectors: Any, s1: Any) -> Iterator[Substitution]:
    with Substitution(model, vectors, s1) as sub:
        yield sub


def _nn() -> Any:
    import torch

    return torch.nn


class Emulator(_nn().Module):
    """The thought emulator of §f.8: a causal LM read up to s1 that predicts the teacher states.
    This module holds the emulator's extra parameters; the LM is passed to `forward`, so the loop
    can optimise and save the LM as its model and this head as an auxiliary module.

    Before every block l, at position s1 of each example: c_l = H_l[s1]; m_l = W_mix[0] (K = 1) or
    softmax(c_l W_mix^T / tau) W_mix; z_hat_l = MLP_l([c_l; m_l]); an LSTM step on z_hat_l + ctx_prev
    gives o_l; k_l = key_proj(o_l); ctx = sum_j<l softmax_j(k_j . query_proj(o_l)) k_j (0 at l = 0);
    H_l[s1] <- out_proj([o_l; ctx]); ctx_prev <- ctx. `forward` returns z_hat [B, L, H]. The
    token-supervised mixture of §f.8 is not implemented (`mixture="soft"` with K >= 1 only).
    """

    def __init__(self, hidden: int, n_layers: int, n_mix: int = 1, tau: float = 0.05):
        import torch

        super().__init__()
        h = hidden
        self.tau, self.n_layers = tau, n_layers
        self.mlps = layer_mlps(h, self.n_layers, in_dim=2 * h)
        self.w_mix = torch.nn.Parameter(torch.randn(n_mix, h) * 0.02)  # [K, H]
        self.lstm = torch.nn.LSTMCell(h, h)
        self.key_proj, self.query_proj = torch.nn.Linear(h, h), torch.nn.Linear(h, h)
        self.out_proj = torch.nn.Linear(2 * h, h)

    def _step(self, layer: int, c: Any, run: dict) -> tuple[Any, Any]:
        """One layer of the recurrence for the s1 states `c` [N, H]; returns (z_hat_l, new state)."""
        import torch

        if self.w_mix.shape[0] == 1:
            m = self.w_mix[0].expand_as(c)  # [N, H]
        else:
            m = torch.softmax(c @ self.w_mix.T / self.tau, -1) @ self.w_mix  # [N, H]
        z_hat = self.mlps[layer](torch.cat([c, m], -1))  # [N, H]
        h, cell = self.lstm(z_hat + run["ctx_prev"], run["state"])  # [N, H] each
        run["state"] = (h, cell)
        key = self.key_proj(h)  # [N, H]
        if run["keys"]:
            keys = torch.stack(run["keys"], 1)  # [N, l, H]
            alpha = torch.softmax((keys * self.query_proj(h)[:, None]).sum(-1), -1)  # [N, l]
            ctx = (alpha[..., None] * keys).sum(1)  # [N, H]
        else:
            ctx = torch.zeros_like(h)
        run["keys"].append(key)
        run["ctx_prev"] = ctx
        return z_hat, self.out_proj(torch.cat([h, ctx], -1))

    def forward(self, model: Any, input_ids: Any, attention_mask: Any, s1: Any) -> Any:
        import torch

        n, h = input_ids.shape[0], model.config.hidden_size
        zero = torch.zeros(n, h, device=input_ids.device)
        run = {"ctx_prev": zero, "state": (zero, zero), "keys": [], "z": []}
        handles = []

        def make_hook(layer: int):
            def pre_hook(module: Any, args: tuple, kwargs: dict) -> Any:
                hidden = args[0]  # [B, T, H]
                pos = kwargs["position_ids"].expand(hidden.shape[0], -1)  # [B, T]
                where = pos == s1.to(pos.device)[:, None]  # [B, T], one True per row
                rows, cols = where.nonzero(as_tuple=True)
                if rows.numel() != n:
                    raise ValueError("emulator: every example needs its position s1 in the input")
                z_hat, new = self._step(layer, hidden[rows, cols], run)
                run["z"].append(z_hat)
                hidden = hidden.clone()
                hidden[rows, cols] = new.to(hidden.dtype)
                return (hidden, *args[1:]), kwargs

            return pre_hook

        layers = decoder_layers(model)
        if len(layers) != self.n_layers:
            raise ValueError(f"emulator head built for {self.n_layers} blocks, the LM has {len(layers)}")
        for layer, block in enumerate(layers):
            handles.append(block.register_forward_pre_hook(make_hook(layer), with_kwargs=True))
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]; left padding as generate does
        try:
            model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
        finally:
            for handle in handles:
                handle.remove()
        return torch.stack(run["z"], 1)  # [B, L, H]


def emulator_loss(z_hat: Any, z: Any) -> Any:
    """§f.8: sum_l 1/2 ||z_hat_l - z_l||^2, summed over hidden units, averaged over the batch."""
    return 0.5 * ((z_hat.float() - z.float()) ** 2).sum((1, 2)).mean()


def implicit_generate(emulator: Emulator, emulator_lm: Any, student: Any, mlps: Any, input_ids: Any,
                      attention_mask: Any, s1: Any, **generate_kwargs: Any) -> Any:
    """§f.9 inference: z_hat from the emulator on the question, then the student decodes greedily with
    MLP_l(z_hat_l) substituted at s1 (prefill only when the KV cache is on). `input_ids` are the
    left-padded prompts through s1; `s1` is each prompt's last position (without padding)."""
    import torch

    with torch.no_grad():
        z_hat = emulator(emulator_lm, input_ids, attention_mask, s1)
        with Substitution(student, apply_mlps(mlps, z_hat), s1):
            return student.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                    **generate_kwargs)
