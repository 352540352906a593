"""Training checkpoints that make a resumed run continue exactly where a killed one stopped.

A checkpoint folder `checkpoints/step_NNNNNNN/` is written by `accelerate`'s `save_state`: the
model, the optimizer, the objects registered with `register_for_checkpointing` (the LR scheduler,
the objective's trained auxiliary modules) and one RNG file per process (python, numpy, torch,
CUDA), with FSDP and DeepSpeed states saved the way those engines shard them. Beside it,
`state.json` holds the optimizer step, the data position (epoch + index into that epoch's seeded
permutation of rows) and the config hash. It is written to a temporary folder and renamed into
place, and `latest` is rewritten only after the rename, so a SIGKILL at any moment leaves either
the old or the new checkpoint, never half of one. Checkpoints of the earlier layout (`model.pt`,
`optimizer.pt`, `scheduler.pt`, `aux.pt`, `rng_rankN.pt`) still load.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

LATEST = "latest"
FORMAT = "accelerate-save-state"  # state.json marker of this layout


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: Path, accelerator: Any, *, step: int, meta: dict[str, Any], keep: int = 2) -> Path:
    """Collective: every process calls it (sharded engines write their shards, each process its RNG
    state); the model, optimizer and registered objects are those `accelerator` prepared or
    registered. Returns the folder."""
    root = Path(root)
    final = root / f"step_{step:07d}"
    tmp = root / f".tmp_step_{step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # torch.save keeps tied weights tied (safetensors drops the alias, with a warning per checkpoint)
    accelerator.save_state(str(tmp), safe_serialization=False)
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps({"step": step, "format": FORMAT, **meta}, indent=1))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _write_atomic(root / LATEST, final.name)
        _prune(root, keep)
    accelerator.wait_for_everyone()
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _prune(root: Path, keep: int) -> None:
    folders = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: Path) -> Path | None:
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(root) / pointer.read_text().strip()
    if not (folder / "state.json").is_file():
        raise FileNotFoundError(f"checkpoint pointer {pointer} names {folder}, which is incomplete")
    return folder


def load_checkpoint(folder: Path, accelerator: Any, *, model: Any, optimizer: Any, scheduler: Any,
                    aux: Any = None) -> dict:
    """Restore model, optimizer, scheduler, auxiliary modules and this process's RNG; returns state.json.
    Collective, like `save_checkpoint`; `scheduler` and `aux` must be the registered objects."""
    folder = Path(folder)
    state = json.loads((folder / "state.json").read_text())
    if state.get("format") != FORMAT:
        _load_legacy(folder, accelerator, model=model, optimizer=optimizer, scheduler=scheduler, aux=aux)
        return state
    # accelerate only logs a missing RNG file; a resume that redraws other noise is not exact
    rng_file = folder / f"random_states_{accelerator.process_index}.pkl"
    if not rng_file.is_file():
        raise FileNotFoundError(f"{rng_file}: missing (was the run saved with a different process count?)")
    n_custom = len(list(folder.glob("custom_checkpoint_*.pkl")))
    if n_custom != 1 + (aux is not None):
        raise FileNotFoundError(f"{folder}: holds {n_custom} registered objects; this run has "
                                f"{1 + (aux is not None)} (scheduler{' and auxiliary modules' if aux is not None else ''})")
    accelerator.load_state(str(folder))
    return state


def _load_legacy(folder: Path, accelerator: Any, *, model: Any, optimizer: Any, scheduler: Any, aux: Any) -> None:
    """A checkpoint written before `save_state` was used (single process or DDP only)."""
    import torch

    accelerator.unwrap_model(model).load_state_dict(torch.load(folder / "model.pt", map_location="cpu"))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu"))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu"))
    if aux is not None:
        if not (folder / "aux.pt").is_file():
            raise FileNotFoundError(f"{folder / 'aux.pt'}: missing, but the objective has auxiliary modules")
        aux.load_state_dict(torch.load(folder / "aux.pt", map_location="cpu"))
    rng_file = folder / f"rng_rank{accelerator.process_index}.pt"
    if not rng_file.is_file():
        raise FileNotFoundError(f"{rng_file}: missing (was the run saved with a different process count?)")
    # Our own file: RNG states hold numpy arrays and tuples, which the weights-only loader refuses.
    set_rng_state(torch.load(rng_file, weights_only=False))
