"""mathforge.infer: generation engines behind one protocol (`Engine.generate`), and the search on top.

Exports are resolved lazily so that importing the types (or `mathforge.infer.tools`) never pays for
torch, transformers or httpx.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SamplingParams": "types", "Completion": "types", "Engine": "types", "cut_at_stop": "types",
    "HFEngine": "hf_engine", "VLLMEngine": "vllm_engine", "OpenAIEngine": "openai_engine",
    "ICoTKDEngine": "icot_kd_engine", "load_engine": "loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mathforge.infer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mathforge.infer.{_EXPORTS[name]}"), name)
