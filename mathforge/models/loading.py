"""Loading local checkpoints: any HF model folder (from-scratch or pretrained) as (model, tokenizer).

Strictly offline (`local_files_only=True`): mathforge never downloads weights. A named extra
(`smollm2-135m-instruct`) resolves to its cached HF folder through `mathforge.models.pretrained`;
a bare `.gguf` path loads through transformers' GGUF reader when the `gguf` package is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(path_or_spec: str | Path, *, dtype: Any = None, device: str | None = None,
               attn_implementation: str | None = "sdpa"):
    """Load `(model, tokenizer)` from a local HF folder (config.json + weights + tokenizer files),
    a local `.gguf` file, or a named pretrained extra of `mathforge.models.pretrained`.

    Raises FileNotFoundError naming the path when the folder is missing or lacks config.json,
    rather than letting transformers try the Hub with the path as a repo id.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathforge.models import pretrained

    if pretrained.is_pretrained_name(str(path_or_spec)):  # e.g. "smollm2-135m-instruct"
        path_or_spec = pretrained.resolve_model(str(path_or_spec))
    path = Path(path_or_spec).expanduser()
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = _resolve_dtype(dtype)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if path.is_file() and path.suffix == ".gguf":
        folder, gguf = str(path.parent), {"gguf_file": path.name}
        _require_gguf(path)
    else:
        folder, gguf = str(check_model_folder(path)), {}
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs, **gguf)
    if device is not None:
        model = model.to(device)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        # Padding needs an id; pretrained tokenizers often have none and EOS is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def check_model_folder(path: str | Path, what: str = "model folder") -> Path:
    """`path` as a Path if it is an HF model folder (holds config.json); otherwise FileNotFoundError
    saying what is wrong, e.g. a training run folder given where its `model/` is meant. Checked
    before transformers sees the path, which would otherwise take it for a Hub repo id."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_dir():
        raise FileNotFoundError(f"not a {what} (nor a .gguf file): {path}")
    if _is_hf_config(path / "config.json"):
        return path
    for sub in ("model", "best_model"):  # a training run folder has its own config.json (the recipe)
        if _is_hf_config(path / sub / "config.json"):
            raise FileNotFoundError(f"{path} is a training run folder, not a {what}; did you mean {path / sub}?")
    raise FileNotFoundError(f"{what} {path} has no config.json of an HF model (is it a save_pretrained folder?)")


def _is_hf_config(file: Path) -> bool:
    import json

    try:
        return "model_type" in json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _resolve_dtype(dtype: Any):
    import torch

    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(names)} or 'auto'")
    return names[dtype]


def _require_gguf(path: Path) -> None:
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"loading {path} needs the 'gguf' package: pip install 'mathforge[smollm2]'"
        ) from exc
