"""The value (twist) model of TSMC (Feng et al. 2025, "Step-by-Step Reasoning for Math Problems via
Twisted Sequential Monte Carlo"; docs/methods/tsmc.md §e.5): a causal-LM trunk initialised from the generator
and a scalar head per token, `V = sigmoid(h)`.

The head maps the final normalised hidden state to one logit `h_k` at every position `k`. It is
zero-initialised (so an untrained value model says V = 1/2 everywhere and TSMC starts out as plain
sampling) and has no bias [reconstructed]; `init="random"` is the option of §e.5.

Saved as a folder: the trunk through `save_pretrained` (so `transformers.AutoModel.from_pretrained`
loads it with no mathforge code), the tokenizer, the head in `value_head.safetensors` and
`value_config.json` naming the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

HEAD_FILE = "value_head.safetensors"
CONFIG_FILE = "value_config.json"
FORMAT = "mathforge-value-v1"


@dataclass
class ValueOutput:
    logits: torch.Tensor  # [B, T] the value logit h at every position
    cache: Any = None


class ValueModel(torch.nn.Module):
    """`trunk` is a transformers base model (e.g. `LlamaModel`, the generator without its LM head)."""

    def __init__(self, trunk, *, init: str = "zeros", seed: int = 0) -> None:
        super().__init__()
        if init not in ("zeros", "random"):
            raise ValueError(f"ValueModel init must be 'zeros' or 'random', got {init!r}")
        self.trunk = trunk
        hidden = trunk.config.hidden_size
        self.head = torch.nn.Linear(hidden, 1, bias=False)
        if init == "zeros":
            torch.nn.init.zeros_(self.head.weight)
        else:
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                self.head.weight.copy_(torch.randn(1, hidden, generator=g) * trunk.config.initializer_range)
        self.head.to(next(trunk.parameters()).dtype)
        self.init = init

    @property
    def config(self):
        return self.trunk.config

    @classmethod
    def from_generator(cls, generator, *, init: str = "zeros", seed: int = 0) -> ValueModel:
        """A value model whose trunk is a copy of `generator`'s base model (a model or a folder path)."""
        import copy

        if isinstance(generator, str | Path):
            from mathforge.models.loading import load_model

            generator, _ = load_model(generator)
        return cls(copy.deepcopy(generator.get_decoder() if hasattr(generator, "get_decoder")
                                 else generator.base_model), init=init, seed=seed)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache: bool = False,
                **kwargs) -> ValueOutput:
        out = self.trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state  # [B, T, H], already through the final norm
        h = self.head(hidden).squeeze(-1).float()  # [B, T]
        return ValueOutput(logits=h, cache=out.cache if use_cache else None)

    def save_pretrained(self, path: str | Path, tokenizer=None, state_dict=None, **kwargs) -> None:
        """`state_dict`: the whole model's (the training loop passes the one it gathered across
        processes); split here into the trunk's keys, without their `trunk.` prefix, and the head, so
        the trunk folder loads with `AutoModel` as the model trained."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        head = self.head.weight
        if state_dict is not None:
            head = state_dict["head.weight"]
            kwargs["state_dict"] = {k.removeprefix("trunk."): v for k, v in state_dict.items() if k.startswith("trunk.")}
        self.trunk.save_pretrained(path, **kwargs)
        save_file({"weight": head.detach().contiguous().cpu()}, str(path / HEAD_FILE))
        (path / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, "head": "linear_no_bias",
                                                    "init": self.init, "value": "sigmoid(h)"}, indent=1))
        if tokenizer is not None:
            tokenizer.save_pretrained(path)


def is_value_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def load_value_model(path: str | Path, *, device: str | None = None):
    """`(ValueModel, tokenizer)` from a folder written by `ValueModel.save_pretrained`."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    if not is_value_folder(path):
        raise FileNotFoundError(f"{path} is not a value-model folder (no {CONFIG_FILE}); train one with "
                                "objective value_ctl or value_bce")
    meta = json.loads((path / CONFIG_FILE).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path / CONFIG_FILE}: unknown format {meta.get('format')!r} (expected {FORMAT})")
    trunk = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="sdpa")
    model = ValueModel(trunk, init="zeros")
    model.init = meta.get("init", "zeros")
    with torch.no_grad():
        model.head.weight.copy_(load_file(str(path / HEAD_FILE))["weight"])
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


def check_same_tokenizer(gen_tok, value_tok, *, where: str = "value model") -> None:
    """A value model reads the generator's token ids, so both must use one vocabulary."""
    same = (gen_tok.get_vocab() == value_tok.get_vocab()
            and gen_tok.eos_token_id == value_tok.eos_token_id and gen_tok.bos_token_id == value_tok.bos_token_id)
    if not same:
        raise ValueError(f"{where}: its tokenizer differs from the generator's (vocabulary of {len(value_tok)} vs "
                         f"{len(gen_tok)} tokens, eos {value_tok.eos_token_id} vs {gen_tok.eos_token_id}); "
                         "train the value model from this generator")
