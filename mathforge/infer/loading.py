"""`load_engine(spec)`: one string names any generation backend.

| spec | engine |
|---|---|
| `PATH` or `hf:PATH` (a local HF folder) | `HFEngine` |
| a pretrained name, e.g. `smollm2-135m-instruct` | `HFEngine` over the cached conversion (models/pretrained.py) |
| `openai:URL#MODEL` (`openai-chat:` for /v1/chat/completions) | `OpenAIEngine`; without `#MODEL` the server's only model |
| `vllm:PATH` | `VLLMEngine` (needs vllm) |
| the `model/` folder of an ICoT-KD coupled stage | `ICoTKDEngine` (emulator + student, no CoT tokens) |

Keyword arguments go to the engine's constructor (e.g. `chat=True`, `batch_size=64`).
"""

from __future__ import annotations

from pathlib import Path

from mathforge.infer.types import Engine


def load_engine(spec: str | Path, **kw) -> Engine:
    spec = str(spec)
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in ("openai", "openai-chat"):
        return _openai(rest, chat=scheme == "openai-chat", **kw)
    if sep and scheme == "vllm":
        folder = _existing(rest, spec)
        from mathforge.infer.vllm_engine import VLLMEngine

        return VLLMEngine(folder, **kw)
    from mathforge.models.pretrained import is_pretrained_name, resolve_model

    path = rest if sep and scheme == "hf" else spec
    if is_pretrained_name(path) and not Path(path).exists():
        folder = resolve_model(path)
    else:
        folder = _existing(path, spec)  # checked before importing torch: a typo fails fast
        from mathforge.infer.icot_kd_engine import ICoTKDEngine, is_icot_kd_folder

        if is_icot_kd_folder(folder):  # an implicit-CoT (KD) result: emulator + student
            return ICoTKDEngine.from_folder(folder, **kw)
        from mathforge.models.loading import check_model_folder

        if folder.is_dir():  # a run folder given for its model/: say so (a .gguf file is checked later)
            folder = check_model_folder(folder)
    from mathforge.infer.hf_engine import HFEngine

    return HFEngine.from_pretrained(folder, **kw)


def _openai(rest: str, *, chat: bool, **kw) -> Engine:
    from mathforge.infer.openai_engine import OpenAIEngine

    url, _, model = rest.partition("#")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"engine spec 'openai:{rest}': expected openai:http(s)://HOST[:PORT]/v1#MODEL")
    kw.setdefault("chat", chat)
    engine = OpenAIEngine(url, model, **kw)
    if not model:
        names = engine.models()
        if len(names) != 1:
            raise ValueError(f"engine spec 'openai:{rest}': name the model with #MODEL; server has {names}")
        engine.model = names[0]
    return engine


def _existing(path: str, spec: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"engine spec {spec!r}: no such model folder {p} "
                                "(or use openai:URL#MODEL, vllm:PATH, or a pretrained name)")
    return p
