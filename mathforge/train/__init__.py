"""mathforge.train: one training loop on accelerate, objectives as small functions, typed recipes.

`load_recipe(path) -> RunConfig` (config.py), `train(cfg) -> Path` (loop.py), `OBJECTIVES`
(objectives/: sft, mft, difficulty). Names resolve lazily so loading a recipe never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"RunConfig": "config", "load_recipe": "config", "config_from_dict": "config", "train": "loop",
            "OBJECTIVES": "objectives"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mathforge.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mathforge.train.{module}"), name)
    globals()[name] = value
    return value
