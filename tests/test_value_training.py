"""Value objectives (docs/methods/tsmc.md §e.7) on the one loop: the two-pass CTL surrogate has the gradient of
the closed-form CTL loss for any micro-batching; BCE masks; value data is checked for grouping;
a tiny end-to-end run writes a value model that reloads."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")

from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.train.config import RunConfig, ValueConfig  # noqa: E402
from mathforge.train.objectives import StepContext, value_bce, value_ctl  # noqa: E402
from mathforge.train.value_batches import collate_groups, render_group, step_logits, value_logits  # noqa: E402
from mathforge.value_data import read_value_data, step_end_chars  # noqa: E402

PROMPT = "# Question\n\nCompute: {q}\n\n# Solution\n\n"


def fake_records(n_problems: int, k: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    recs = []
    for p in range(n_problems):
        samples = []
        for _ in range(k):
            steps = [f"{rng.randint(1, 99)} + {rng.randint(1, 9)} = {rng.randint(1, 99)}" for _ in range(rng.randint(1, 4))]
            text = "\n\n".join([*steps, f"# Answer\n\n{rng.randint(1, 9)}"])
            samples.append({"text": text, "eos": rng.random() > 0.1, "correct": int(rng.random() < 0.4),
                            "step_end_chars": step_end_chars(text)})
        if p == 1:
            for s in samples:
                s["correct"] = 0  # a problem CTL must skip
        recs.append({"problem_id": f"p{p}", "prompt": PROMPT.format(q=f"{p} + 1"), "gold": "1", "samples": samples})
    return recs


@pytest.fixture(scope="module")
def setup():
    from tiny_lm import TINY_TRAIN_OVERRIDES

    from mathforge.models.presets import build_model
    from mathforge.models.value import ValueModel

    torch.set_num_threads(1)
    tok = build_tokenizer(["# Question Answer Solution Compute: 0123456789+-*= \n"], kind="char")
    gen = build_model("nano", tok, seed=0, **TINY_TRAIN_OVERRIDES)
    value = ValueModel.from_generator(gen, init="random", seed=3)
    return tok, gen, value


def ctx(**value_kw):
    from mathforge.train.config import DataConfig

    return StepContext(cfg=RunConfig(value=ValueConfig(data_file="x", **value_kw), data=DataConfig(packing=False),
                                     objective="value_ctl"))


def closed_form_ctl(model, groups, short: str = "final"):
    """Mean over problems with a correct sample of Σ_t [logsumexp_i ℓ_it − mean_{i∈C} ℓ_it], one pass."""
    total, count = 0.0, 0
    for g in groups:
        if not g.n_correct:
            continue
        batch = collate_groups([g], 0)
        ell = step_logits(torch.nn.functional.logsigmoid(value_logits(model, batch)), batch)  # [K, T]
        c = batch["correct"].bool()
        lp = 0.0
        for t in range(ell.shape[1]):
            keep = torch.ones(len(c), dtype=torch.bool) if short == "final" else batch["n_steps"] > t
            lp = lp + torch.logsumexp(ell[keep, t], 0) - ell[c & keep, t].sum() / c.sum()
        total, count = total + lp, count + 1
    return total / count


@pytest.mark.parametrize("short", ["final", "exclude"])
def test_ctl_two_pass_gradient_equals_the_closed_form(setup, short):
    tok, _, value = setup
    groups = [render_group(r, tok, i, 256, "t") for i, r in enumerate(fake_records(3, 5))]
    context = ctx(short_samples=short)

    def surrogate_grad(split):
        value.zero_grad()
        chunks = [collate_groups(groups[i:i + split], tok.pad_token_id) for i in range(0, len(groups), split)]
        metrics = value_ctl.prepare_step(value, chunks, context)
        total_n = 0.0
        for b in chunks:
            loss_sum, n, _ = value_ctl.loss(value, b, context)
            loss_sum.backward()
            total_n += float(n)
        for p in value.parameters():
            if p.grad is not None:
                p.grad /= total_n
        assert metrics["ctl_skipped"] == 1 and metrics["ctl_problems"] == 2
        assert total_n == pytest.approx(2.0)  # one per non-skipped problem
        return [p.grad.clone() for p in value.parameters()], metrics["ctl_loss"]

    value.zero_grad()
    ref = closed_form_ctl(value, groups, short)
    ref.backward()
    want = [p.grad.clone() for p in value.parameters()]
    for split in (3, 1, 2):  # one micro-batch, one problem each, uneven
        got, reported = surrogate_grad(split)
        assert reported == pytest.approx(float(ref.detach()), rel=1e-4)
        for a, b in zip(got, want, strict=True):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_bce_masks(setup):
    tok, _, value = setup
    g = render_group(fake_records(1, 3)[0], tok, 0, 256, "t")
    batch = collate_groups([g], tok.pad_token_id)
    every = value_bce.position_mask(batch, "every_token")
    ends = value_bce.position_mask(batch, "step_ends")
    last3 = value_bce.position_mask(batch, "orm_last3")
    for i, seq in enumerate(g.seqs):
        assert int(every[i].sum()) == len(seq) - g.prompt_lens[i]
        assert torch.nonzero(ends[i]).squeeze(1).tolist() == g.step_ends[i]
        assert torch.nonzero(last3[i]).squeeze(1).tolist() == [len(seq) - 3, len(seq) - 2, len(seq) - 1]
        # step ends sit on the delimiter's last newline, the final one on EOS
        assert all(tok.decode([seq[e]]) == "\n" for e in g.step_ends[i][:-1])
    loss_sum, n, _ = value_bce.loss(value, batch, ctx(mask="step_ends"))
    assert float(n) == 3 and torch.isfinite(loss_sum)


def test_value_data_must_be_grouped(tmp_path):
    good = tmp_path / "v.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in fake_records(2, 2)))
    assert len(read_value_data(good)) == 2
    flat = tmp_path / "flat.jsonl"
    flat.write_text(json.dumps({"problem_id": "p0", "prompt": "q", "text": "a", "correct": 1}) + "\n")
    with pytest.raises(ValueError, match=r"flat.jsonl:1: .*grouped"):
        read_value_data(flat)
    split = tmp_path / "split.jsonl"
    rec = fake_records(1, 2)[0]
    split.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(ValueError, match=r"split.jsonl:2: problem 'p0' already appeared on line 1"):
        read_value_data(split)


def test_step_end_chars_follow_the_boundary_rule():
    text = "a\n\nb\n\n\nc\n\n# Answer\n\n7"
    assert step_end_chars(text) == [3, 6, 10]  # not after `# Answer`; the blank line of a run ends a step once


def test_a_saved_value_model_loads_as_it_was_with_or_without_a_gathered_state_dict(setup, tmp_path):
    """The training loop saves with the whole model's state dict (`trunk.*`, `head.weight`); the folder
    must still load the trained trunk, not a freshly initialised one."""
    from mathforge.models.value import load_value_model

    tok, _, value = setup
    ids = torch.tensor([tok("# Question 12+3")["input_ids"]])
    with torch.no_grad():
        want = value(ids).logits
    for name, kwargs in (("plain", {}), ("gathered", {"state_dict": value.state_dict()})):
        value.save_pretrained(tmp_path / name, tokenizer=tok, **kwargs)
        loaded, _ = load_value_model(tmp_path / name)
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids).logits, want)


def test_value_ctl_trains_on_the_loop(setup, tmp_path):
    from mathforge.models.value import load_value_model
    from mathforge.train.config import config_from_dict
    from mathforge.train.loop import train

    tok, gen, _ = setup
    gen.save_pretrained(tmp_path / "gen")
    tok.save_pretrained(tmp_path / "gen")
    data = tmp_path / "v.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in fake_records(10, 4)))
    for objective in ("value_ctl", "value_bce"):
        cfg = config_from_dict({"out_dir": str(tmp_path / objective), "objective": objective, "threads": 1,
                                "progress": False, "log_every": 1, "checkpoint_every": 0,
                                "model": {"init": str(tmp_path / "gen")},
                                "data": {"packing": False, "n_eval": 3, "seq_len": 128},
                                "optim": {"micro_batch_size": 2, "grad_accum": 2, "max_steps": 2, "lr": 1e-3},
                                "value": {"data_file": str(data)}})
        out = train(cfg)
        model, _ = load_value_model(out)
        logs = [json.loads(x) for x in (tmp_path / objective / "metrics.jsonl").read_text().splitlines()]
        assert any("eval_value_auc" in r for r in logs)
        if objective == "value_ctl":
            assert any("ctl_skipped" in r for r in logs)
        ids = torch.tensor([tok("# Question")["input_ids"]])
        with torch.no_grad():
            assert model(ids).logits.abs().max() > 0  # trained away from the zero init


def test_value_objective_config_errors():
    from mathforge.train.config import DataConfig

    with pytest.raises(ValueError, match="value.data_file"):
        RunConfig(objective="value_ctl", data=DataConfig(packing=False))
    with pytest.raises(ValueError, match="packing"):
        RunConfig(objective="value_bce", value=ValueConfig(data_file="x"))
