"""From-scratch model presets: small Llama-architecture decoders (Touvron et al. 2023) as HF configs.

A preset is a plain dict of `LlamaConfig` fields; `build_model` fills in the vocabulary and the
special-token ids from the tokenizer, applies overrides and returns a randomly initialised
`LlamaForCausalLM` on the SDPA attention backend. Everything is a stock HF model, so it saves with
`save_pretrained` and reloads with `AutoModelForCausalLM` with no mathforge code involved.

Sizes are chosen to train fast on CPU: head_dim 32 or 64, few layers, tied embeddings, SwiGLU
width about 3-4x hidden. Approximate non-embedding parameter counts: nano 1.0M, micro 5.2M,
small 25M (the embedding adds hidden x vocab on top: 13K-2M for char/4K-BPE vocabularies).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "nano": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4),  # head_dim 32
    "micro": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=5, num_attention_heads=8,
                  num_key_value_heads=8),  # head_dim 32
    "small": dict(hidden_size=512, intermediate_size=1344, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=8),  # head_dim 64
}
# Shared by every preset; any of these can be overridden too.
_COMMON: dict[str, Any] = dict(
    max_position_embeddings=1024,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    attention_dropout=0.0,
    hidden_act="silu",
    initializer_range=0.02,
)


def preset_config(preset: str | dict[str, Any], tokenizer=None, **overrides: Any):
    """The `LlamaConfig` for `preset` (a name in PRESETS or a dict of config fields).

    Overrides must be `LlamaConfig` fields; an unknown one raises ValueError naming it, because
    `LlamaConfig` itself would silently keep a misspelt key as an unused attribute.
    """
    from transformers import LlamaConfig

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
        fields = dict(_COMMON, **PRESETS[preset])
    elif isinstance(preset, dict):
        fields = dict(_COMMON, **preset)
    else:
        raise TypeError(f"preset must be a name or a dict, got {type(preset).__name__}")
    known = set(LlamaConfig().to_dict()) | {"head_dim", "attn_implementation"}
    unknown = sorted(k for k in [*fields, *overrides] if k not in known)
    if unknown:
        raise ValueError(f"unknown LlamaConfig field(s) for preset {preset!r}: {', '.join(unknown)}")
    if tokenizer is not None:
        fields.update(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    mha = fields.get("num_key_value_heads") == fields.get("num_attention_heads")
    fields.update(overrides)
    if mha and "num_attention_heads" in overrides and "num_key_value_heads" not in overrides:
        fields["num_key_value_heads"] = fields["num_attention_heads"]  # the presets are multi-head: stay so
    heads, kv = fields["num_attention_heads"], fields.get("num_key_value_heads", fields["num_attention_heads"])
    if heads % kv:
        raise ValueError(f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}")
    fields.setdefault("head_dim", fields["hidden_size"] // fields["num_attention_heads"])
    if fields["hidden_size"] % fields["num_attention_heads"]:
        raise ValueError(
            f"hidden_size {fields['hidden_size']} is not divisible by num_attention_heads "
            f"{fields['num_attention_heads']}"
        )
    fields.pop("attn_implementation", None)
    return LlamaConfig(**fields)


def build_model(preset: str | dict[str, Any], tokenizer, *, seed: int | None = None,
                attn_implementation: str = "sdpa", **overrides: Any):
    """A randomly initialised `LlamaForCausalLM` for `preset`, sized to `tokenizer`'s vocabulary.

    `seed` makes the initial weights reproducible (it seeds torch's global generator, since HF
    initialisation draws from it).
    """
    import torch
    from transformers import LlamaForCausalLM

    if tokenizer is None:
        raise ValueError("build_model needs the tokenizer (vocabulary size and special-token ids)")
    config = preset_config(preset, tokenizer, **overrides)
    config._attn_implementation = attn_implementation
    if seed is not None:
        torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model


def count_params(model, *, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
    """Number of distinct parameters (tied input/output embeddings are counted once)."""
    seen: set[int] = set()
    total = 0
    embed_ids = set()
    if exclude_embeddings:
        embed_ids = {id(p) for p in model.get_input_embeddings().parameters()}
        out = model.get_output_embeddings()
        if out is not None:
            embed_ids |= {id(p) for p in out.parameters()}
    for p in model.parameters():  # .parameters() already de-duplicates shared tensors
        if id(p) in seen or id(p) in embed_ids or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
