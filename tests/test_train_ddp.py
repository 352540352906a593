"""2-process data parallel training on CPU (gloo, launched with torch.distributed.run, as `accelerate
launch` does) matches single-process training on the same global batch, and a 2-process run killed
after a checkpoint (written by `accelerate`'s `save_state`, one RNG file per process) resumes to the
same weights.

FSDP is not tested here: accelerate (1.16) selects FSDP only for GPU-like distributed types, never
for CPU processes (`AcceleratorState`: `ACCELERATE_USE_FSDP` is read only for MULTI_GPU/NPU/...), so
a gloo run cannot exercise it; the checkpoint code leaves FSDP and DeepSpeed states to `save_state`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
RECIPE = """
objective = "sft"
seed = 11
threads = 1
progress = false
log_every = 1
checkpoint_every = 0
[data]
task = "arithmetic"
task_args = { digits = 1, n_ops = [1, 3] }
n_train = 300
n_eval = 0
seq_len = 96
[model]
preset = "nano"
overrides = { hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2, num_attention_heads = 2, num_key_value_heads = 2 }
[optim]
micro_batch_size = 2
grad_accum = 2
max_steps = 5
lr = 3e-3
[eval]
n_problems = 0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
            "-m", "mathforge", "train", str(recipe), "--out", str(out), *extra]


def test_two_process_ddp_matches_single_process(tmp_path):
    from safetensors.torch import load_file

    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    ddp = _ddp(recipe, tmp_path / "ddp")
    # same global batch in one process: 2 rows x 2 accumulation x 2 processes = 4 rows x 2 accumulation
    single = [sys.executable, "-m", "mathforge", "train", str(recipe), "--out", str(tmp_path / "one"),
              "--set", "optim.micro_batch_size=4"]
    for cmd in (ddp, single):
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(tmp_path / "ddp" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    ra = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in ra] == pytest.approx([r["loss"] for r in rb], rel=1e-5)
    assert [r["tokens"] for r in ra] == [r["tokens"] for r in rb]  # real tokens summed over processes
    # the model moved: equality is not trivially two untouched initialisations
    assert ra[-1]["loss"] < ra[0]["loss"]

    # killed right after step 3 (past the checkpoint of step 2) and resumed: the same weights
    killed = _ddp(recipe, tmp_path / "killed", "--set", "checkpoint_every=2")
    proc = subprocess.run(killed, cwd=REPO, env={**env, "MATHFORGE_TEST_KILL_AT_STEP": "3"}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and not (tmp_path / "killed" / "model").exists()
    ckpt = tmp_path / "killed" / "checkpoints" / "step_0000002"
    assert {"random_states_0.pkl", "random_states_1.pkl", "state.json"} <= {p.name for p in ckpt.iterdir()}
    killed[killed.index("--master_port") + 1] = str(_free_port())
    proc = subprocess.run(killed, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in proc.stderr and "step 2 of 5" in proc.stderr
    c = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(c[key], a[key], rtol=1e-4, atol=1e-6, msg=key)
