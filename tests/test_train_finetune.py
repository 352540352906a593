"""Fine-tuning a saved checkpoint through `model.init`: a bf16 folder trains with fp32 weights (like
the same weights saved in fp32), the model is in training mode at every step, and over-long
examples are an error, cut or dropped (`data.overlong`), and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.train.config import config_from_dict  # noqa: E402
from mathforge.train.loop import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROWS = [("7+5=", "7 + 5 = 12 #### 12"), ("3*4=", "3 * 4 = 12 #### 12"), ("9-2=", "9 - 2 = 7 #### 7"),
        ("6*6=", "6 * 6 = 36 #### 36")]


def _data(tmp_path: Path, rows=ROWS, name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"question": q, "response": r}) + "\n" for q, r in rows))
    return path


def _cfg(tmp_path: Path, out: str, **sections) -> object:
    table = {"out_dir": str(tmp_path / out), "threads": 1, "progress": False, "log_every": 1, "checkpoint_every": 0,
             "data": {"task": "file", "train_file": str(_data(tmp_path)), "n_eval": 0, "seq_len": 64,
                      "prompt_template": "{question}", "packing": False},
             "model": {"preset": "nano", "overrides": TINY_TRAIN_OVERRIDES},
             "optim": {"micro_batch_size": 2, "max_steps": 3, "lr": 1e-5, "schedule": "constant", "warmup_ratio": 0.0},
             "eval": {"n_problems": 0}}
    for name, values in sections.items():
        table[name] = {**table.get(name, {}), **values} if isinstance(values, dict) else values
    return config_from_dict(table)


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A briefly trained tiny model saved twice with the same (bf16-representable) weights: in bf16
    and in fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = tmp_path_factory.mktemp("ckpt")
    base = train(_cfg(tmp, "base", optim={"max_steps": 2, "lr": 1e-2}))
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    model.save_pretrained(tmp / "bf16")
    model.float().save_pretrained(tmp / "fp32")
    for folder in ("bf16", "fp32"):
        tok.save_pretrained(tmp / folder)
    assert next(iter(_weights(tmp / "bf16").values())).dtype == torch.bfloat16
    return tmp


def _finetune(tmp_path: Path, init: Path, out: str, **model) -> tuple[dict, dict, list]:
    folder = train(_cfg(tmp_path, out, model={"init": str(init), **model}))
    losses = [json.loads(x)["loss"] for x in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
    return _weights(init), _weights(folder), losses


def _moved(before: dict, after: dict) -> float:
    """Fraction of the weights that changed (in the layers every step updates: not the embeddings,
    whose rows of unseen tokens get no gradient)."""
    keys = [k for k in before if "embed" not in k and "lm_head" not in k]
    changed = sum(int((before[k].float() != after[k].float()).sum()) for k in keys)
    return changed / sum(before[k].numel() for k in keys)


def test_bf16_checkpoint_finetunes_like_the_fp32_one(tmp_path, checkpoints):
    b0, b1, b_loss = _finetune(tmp_path, checkpoints / "bf16", "from_bf16")
    f0, f1, f_loss = _finetune(tmp_path, checkpoints / "fp32", "from_fp32")
    assert all(v.dtype == torch.float32 for v in b1.values())  # trained (and saved) with fp32 weights
    assert _moved(f0, f1) > 0.99  # lr 1e-5 for 3 steps moves every fp32 weight ...
    assert _moved(b0, b1) == pytest.approx(_moved(f0, f1))  # ... and every weight of the bf16 folder
    assert b_loss == pytest.approx(f_loss, rel=1e-5)
    for key in f1:
        torch.testing.assert_close(b1[key], f1[key], rtol=1e-5, atol=1e-7, msg=key)
    # the control: training the bf16 weights themselves loses most of these updates
    _, h1, _ = _finetune(tmp_path, checkpoints / "bf16", "pure_bf16", dtype="bfloat16")
    assert _moved(b0, h1) < 0.5


def test_model_is_in_training_mode_at_every_step(tmp_path, checkpoints, monkeypatch, capsys):
    from mathforge.train.objectives import get_objective

    sft, modes = get_objective("sft"), []
    loss = sft.loss

    def spy(model, batch, ctx):
        if torch.is_grad_enabled():  # a training step, not the held-out loss
            modes.append(model.training)
        return loss(model, batch, ctx)

    monkeypatch.setattr(sft, "loss", spy)
    # from_pretrained returns a model in eval mode; an in-loop evaluation also leaves eval mode
    train(_cfg(tmp_path, "modes", model={"init": str(checkpoints / "fp32")},
               data={"n_eval": 1}, eval={"every": 1, "n_problems": 1, "max_new_tokens": 4}))
    assert modes == [True, True, True]
    assert "mathforge train: step 2: eval_loss" in capsys.readouterr().err  # in-loop evals are shown too


def test_overlong_examples_error_truncate_or_drop(tmp_path):
    rows = [*ROWS, ("1+1=", "1 + 1 = 2, " * 20 + "#### 2")]  # the last one is ~230 characters
    data = _data(tmp_path, rows, "long.jsonl")
    with pytest.raises(ValueError, match=r"long\.jsonl:5: .*more than max_len=64.*data\.overlong"):
        train(_cfg(tmp_path, "error", data={"train_file": str(data)}))
    for mode, kept, counts in (("truncate", 5, {"truncated": 1, "dropped": 0}),
                               ("drop", 4, {"truncated": 0, "dropped": 1})):
        train(_cfg(tmp_path, mode, data={"train_file": str(data), "overlong": mode}))
        stats = json.loads((tmp_path / mode / "data_stats.json").read_text())
        assert stats["train_rows"] == kept and stats["overlong"]["train"] == counts
        assert stats["train_tokens"] <= kept * 64


def test_checkpoint_of_the_earlier_layout_still_resumes(tmp_path, capsys):
    """A run whose checkpoint was written before `save_state` (model.pt, optimizer.pt, scheduler.pt,
    rng_rank0.pt) resumes to the weights of the uninterrupted run."""
    cfg = _cfg(tmp_path, "run", optim={"max_steps": 4, "lr": 3e-3, "schedule": "cosine"}, checkpoint_every=2)
    full = _weights(train(cfg))
    ckpt = tmp_path / "run" / "checkpoints" / "step_0000002"
    # rewrite the step-2 checkpoint in the earlier layout, then resume from it
    rng = torch.load(ckpt / "random_states_0.pkl", weights_only=False)
    torch.save({"python": rng["random_state"], "numpy": rng["numpy_random_seed"], "torch": rng["torch_manual_seed"]},
               ckpt / "rng_rank0.pt")
    for new, old in (("pytorch_model.bin", "model.pt"), ("optimizer.bin", "optimizer.pt"),
                     ("custom_checkpoint_0.pkl", "scheduler.pt")):
        torch.save(torch.load(ckpt / new, weights_only=False), ckpt / old)
        (ckpt / new).unlink()
    (ckpt / "random_states_0.pkl").unlink()
    state = json.loads((ckpt / "state.json").read_text())
    del state["format"]
    (ckpt / "state.json").write_text(json.dumps(state))
    (tmp_path / "run" / "done.json").unlink()
    capsys.readouterr()
    resumed = _weights(train(cfg))
    assert f"resuming from {ckpt} (step 2 of 4)" in capsys.readouterr().err
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-7, msg=key)
