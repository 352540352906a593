"""Gradient accumulation is normalised by the true token count of the whole global batch.

1 micro-batch of 8 examples and 8 micro-batches of 1 (unequal lengths) must give the same gradients
and, through the real loop, the same weights; the naive per-micro-batch mean must not (the control
that shows the test can fail).
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.data.packing import collate_padded  # noqa: E402
from mathforge.data.records import Example  # noqa: E402
from mathforge.data.render import render  # noqa: E402
from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.models.presets import build_model  # noqa: E402
from mathforge.train.config import config_from_dict  # noqa: E402
from mathforge.train.loop import accumulate_gradients, train  # noqa: E402
from mathforge.train.objectives import StepContext, sft  # noqa: E402

TINY = TINY_TRAIN_OVERRIDES


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _examples(n: int = 8) -> list[Example]:
    # Responses of very different lengths: a per-micro-batch mean would weight them differently.
    return [Example(prompt=f"{i}+{i * 7}=", response=" ".join(str(i + i * 7) * (1 + 3 * (i % 4))) + " #### ok",
                    answer="ok") for i in range(1, n + 1)]


def _grads(model) -> list:
    return [p.grad.detach().clone() for p in model.parameters()]


def test_one_by_eight_equals_eight_by_one():
    from accelerate import Accelerator

    examples = _examples()
    tok = build_tokenizer([e.prompt + e.response for e in examples])
    rendered = [render(e, tok) for e in examples]
    assert len({r.n_targets for r in rendered}) > 2  # genuinely unequal lengths
    model = build_model(TINY, tok, seed=0, max_position_embeddings=256)
    acc = Accelerator(cpu=True)

    def ctx(_k):
        return StepContext(cfg=None)

    whole = [collate_padded(rendered, tok.pad_token_id)]
    loss_a, n_a, _ = accumulate_gradients(model, whole, sft.loss, ctx, acc)
    g_a = _grads(model)
    model.zero_grad(set_to_none=True)
    singles = [collate_padded([r], tok.pad_token_id) for r in rendered]
    loss_b, n_b, _ = accumulate_gradients(model, singles, sft.loss, ctx, acc)
    g_b = _grads(model)
    assert n_a == n_b == sum(r.n_targets for r in rendered)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    # Control: averaging per-micro-batch means gives a different gradient on these lengths.
    model.zero_grad(set_to_none=True)
    for batch in singles:
        s, n, _ = sft.loss(model, batch, None)
        (s / n / len(singles)).backward()
    worst = max(float((a - c).abs().max() / (a.abs().max() + 1e-12)) for a, c in zip(g_a, _grads(model), strict=True))
    assert worst > 1e-2


def _write_data(path, n=24):
    with open(path, "w") as f:
        for e in _examples(n):
            f.write(json.dumps({"question": e.prompt, "response": e.response}) + "\n")


def _cfg(tmp_path, name, micro, accum, packing):
    return config_from_dict({
        "out_dir": str(tmp_path / name), "threads": 1, "progress": False, "checkpoint_every": 0, "seed": 3,
        "data": {"task": "file", "train_file": str(tmp_path / "d.jsonl"), "n_eval": 0, "seq_len": 128,
                 "packing": packing, "prompt_template": "{question}"},
        "model": {"preset": "nano", "overrides": TINY},
        "optim": {"micro_batch_size": micro, "grad_accum": accum, "max_steps": 3, "lr": 1e-2, "warmup_ratio": 0.0},
        "eval": {"n_problems": 0},
    })


@pytest.mark.parametrize("packing", [False, True])
def test_loop_accumulation_equivalence(tmp_path, packing):
    from transformers import AutoModelForCausalLM

    _write_data(tmp_path / "d.jsonl")
    a = AutoModelForCausalLM.from_pretrained(train(_cfg(tmp_path, "a", 8, 1, packing)))
    b = AutoModelForCausalLM.from_pretrained(train(_cfg(tmp_path, "b", 1, 8, packing)))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)
    metrics = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 3 and metrics[-1]["loss"] > 0
