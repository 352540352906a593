"""Masked Thought options (docs/methods/mft.md §a.2, §a.3, §a.8): the per-micro-batch ratio, the random
ratio schedule, corrupted positions hidden from attention, and the paper's ablations (embedding
dropout, NEFTune noise, scheduled sampling), each against the slow obvious computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.data.packing import collate_packed, collate_padded  # noqa: E402
from mathforge.data.records import Example  # noqa: E402
from mathforge.data.render import render  # noqa: E402
from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.models.presets import build_model  # noqa: E402
from mathforge.train.config import MFTConfig, RunConfig, config_from_dict, load_recipe, parse_override  # noqa: E402
from mathforge.train.objectives import StepContext, mft, mft_ablations, sft  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _setup(n=6):
    examples = [Example(prompt=f"{i} * {i + 3} = ", response="1 2 3 4 5 6 7 8 9 " * (1 + i % 3)) for i in range(n)]
    tok = build_tokenizer([e.prompt + e.response for e in examples])
    return tok, [render(e, tok) for e in examples]


def _ctx(cfg, tok, step=0, total=10, **kw):
    return StepContext(cfg=cfg, step=step, total_steps=total, pad_id=tok.pad_token_id, mask_id=tok.mask_token_id,
                       vocab_base=len(tok), special_ids=tuple(tok.all_special_ids), **kw)


def _cfg(**mft_kw):
    return RunConfig(objective="mft", mft=MFTConfig(**mft_kw))


# ------------------------------------------------------------------------------ §a.3 schedules
def test_microbatch_ratio_follows_the_per_process_micro_batch_counter():
    cfg = MFTConfig(p_max=0.4, schedule_unit="microbatch", warmup_micro_batches=10)
    A, G = 3, 6
    for g in range(G):
        for k in range(A):
            ctx = StepContext(cfg=None, step=g, total_steps=G, micro_index=k, micro_per_step=A, rank=1)
            s = g * A + k + 1  # micro-batches this process has seen, this one included (the original collator)
            want = 0.4 * s / 10 if s < 10 else 0.4
            assert mft.current_ratio(cfg, ctx) == pytest.approx(want)
    # W defaults to warmup_ratio of the run's micro-batches per process: 0.5 * 18 = 9
    half = MFTConfig(p_max=0.2, schedule_unit="microbatch", warmup_ratio=0.5)
    assert mft.mask_ratio(half, 3, 18) == pytest.approx(0.2 * 3 / 9) and mft.mask_ratio(half, 9, 18) == 0.2
    # the other schedules count micro-batches too, with the absolute warm-up
    late = MFTConfig(p_max=0.4, schedule="late_start", late_start=5, schedule_unit="microbatch", warmup_micro_batches=10)
    assert mft.mask_ratio(late, 4, 100) == 0.0 and mft.mask_ratio(late, 10, 100) == pytest.approx(0.4 * 5 / 10)
    dec = MFTConfig(p_max=0.2, schedule="decreasing", schedule_unit="microbatch", warmup_micro_batches=10)
    assert mft.mask_ratio(dec, 5, 100) == pytest.approx(0.2) and mft.mask_ratio(dec, 12, 100) == 0.2
    # the step unit (default) gives every micro-batch of a step the same ratio
    step = MFTConfig(p_max=0.4)
    ps = {mft.current_ratio(step, StepContext(cfg=None, step=4, total_steps=G, micro_index=k, micro_per_step=A))
          for k in range(A)}
    assert len(ps) == 1 and ps.pop() == pytest.approx(0.4 * 4 / (2 / 3 * G + 1))


def test_random_schedule_draws_are_uniform_on_0_pmax_and_reproducible():
    p_max, n = 0.3, 2000
    cfg = MFTConfig(p_max=p_max, schedule="random_per_batch")
    draws = sorted(mft.current_ratio(cfg, StepContext(cfg=None, seed=7, step=g, total_steps=n)) for g in range(n))
    # Kolmogorov-Smirnov distance to U(0, p_max); 1.63/sqrt(n) is the 1% critical value
    ks = max(max((i + 1) / n - x / p_max, x / p_max - i / n) for i, x in enumerate(draws))
    assert ks < 1.63 / math.sqrt(n)
    assert 0 <= draws[0] and draws[-1] <= p_max
    assert sum(draws) / n == pytest.approx(p_max / 2, abs=4 * p_max / math.sqrt(12 * n))
    # step unit: one draw per optimizer step, shared by its micro-batches and processes
    same = {mft.current_ratio(cfg, StepContext(cfg=None, seed=7, step=3, micro_index=k, micro_per_step=4, rank=r))
            for k in range(4) for r in range(2)}
    assert len(same) == 1
    # micro-batch unit: a draw per micro-batch of each process, the same again on a resumed run
    micro = MFTConfig(p_max=p_max, schedule="random_per_batch", schedule_unit="microbatch")
    ctxs = [StepContext(cfg=None, seed=7, step=3, micro_index=k, micro_per_step=4, rank=r) for k in range(4) for r in (0, 1)]
    got = [mft.current_ratio(micro, c) for c in ctxs]
    assert len(set(got)) == 8 and got == [mft.current_ratio(micro, c) for c in ctxs]


# ------------------------------------------------------------------- §a.2 attend_to_noise=false
@pytest.mark.parametrize("packed", [False, True])
def test_hidden_noise_gives_the_logits_of_the_sequence_with_those_tokens_cut_out(packed):
    tok, rendered = _setup()
    model = build_model(TINY_TRAIN_OVERRIDES, tok, seed=0)
    cfg = _cfg(p_max=0.5, noise="mask", attend_to_noise=False)
    mft.prepare(model, tok, cfg)
    batch = collate_packed([rendered[:3], rendered[3:]], 160, tok.pad_token_id) if packed else \
        collate_padded(rendered, tok.pad_token_id)
    ctx = _ctx(cfg, tok)
    noisy, masked = mft.corrupt(batch["input_ids"], batch["labels"], 0.5, ctx, ctx.generator())
    assert masked.sum() > 20
    with torch.no_grad():
        fast = sft.forward_logits(model, {**batch, "attention_mask": mft.ignore_noise_mask(batch, masked)}, noisy)
        other_noise = torch.where(masked, torch.full_like(noisy, 5), noisy)  # what the hidden tokens are is irrelevant
        fast2 = sft.forward_logits(model, {**batch, "attention_mask": mft.ignore_noise_mask(batch, masked)}, other_noise)
        checked = 0
        for b in range(batch["input_ids"].shape[0]):
            for s in batch["seq_ids"][b].unique().tolist():
                if s < 0:
                    continue
                keep = (batch["seq_ids"][b] == s) & ~masked[b]  # [T]: the example's uncorrupted positions
                ids = batch["input_ids"][b][keep][None]  # the example with the corrupted tokens removed
                pos = batch["position_ids"][b][keep][None]  # at their original positions
                slow = model(input_ids=ids, position_ids=pos).logits[0]  # [kept, V]
                torch.testing.assert_close(fast[b][keep], slow, atol=2e-5, rtol=1e-4)
                checked += int(keep.sum())
    torch.testing.assert_close(fast[~masked & batch["seq_ids"].ge(0)], fast2[~masked & batch["seq_ids"].ge(0)])
    assert checked == int((batch["seq_ids"].ge(0) & ~masked).sum())


def test_hidden_noise_runs_in_mft_loss_and_differs_from_attending_to_it():
    tok, rendered = _setup()
    model = build_model(TINY_TRAIN_OVERRIDES, tok, seed=0)
    batch = collate_padded(rendered, tok.pad_token_id)
    losses = {}
    for attend in (True, False):
        cfg = _cfg(p_max=0.5, schedule="constant", attend_to_noise=attend)
        mft.prepare(model, tok, cfg)
        losses[attend], n, m = mft.loss(model, batch, _ctx(cfg, tok))
        assert torch.isfinite(losses[attend]) and m["masked"] > 0
    assert not torch.allclose(losses[True], losses[False])


def test_hidden_noise_refuses_an_attention_backend_without_a_mask():
    tok, _ = _setup()
    model = build_model(TINY_TRAIN_OVERRIDES, tok, seed=0)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="attend_to_noise"):
        mft.prepare(model, tok, _cfg(attend_to_noise=False))


# ----------------------------------------------------------------------------- §a.8 ablations
def _emb_setup(packed=True):
    tok, rendered = _setup()
    model = build_model(TINY_TRAIN_OVERRIDES, tok, seed=0).train()
    batch = collate_packed([rendered[:3], rendered[3:]], 160, tok.pad_token_id) if packed else \
        collate_padded(rendered, tok.pad_token_id)
    return tok, rendered, model, batch


@pytest.mark.parametrize("scope", ["all", "response", "corrupted"])
def test_neftune_noise_has_the_stated_magnitude_and_scope(scope):
    tok, rendered, model, batch = _emb_setup()
    cfg = _cfg(p_max=0.5, noise="neftune", neftune_alpha=5.0, embed_scope=scope)
    ctx = _ctx(cfg, tok)
    g = ctx.generator()
    noisy_ids, masked = mft.corrupt(batch["input_ids"], batch["labels"], 0.5, ctx, g)
    assert torch.equal(noisy_ids, batch["input_ids"])  # the ids stay clean: the noise is on embeddings
    with torch.no_grad():
        embeds, _ = mft_ablations.inputs_embeds(model, batch, masked, cfg.mft, g)
        delta = embeds - model.get_input_embeddings()(batch["input_ids"])  # [B, T, d]
    d = delta.shape[-1]
    # slow: the bound alpha / sqrt(L d) with L the length of each example, position by position
    bound = torch.zeros(delta.shape[:2])
    where = torch.zeros(delta.shape[:2], dtype=torch.bool)
    rows = [rendered[:3], rendered[3:]]
    for b, row in enumerate(rows):
        t = 0
        for ex in row:
            for j in range(len(ex)):
                bound[b, t] = 5.0 / math.sqrt(len(ex) * d)
                where[b, t] = {"all": True, "response": ex.labels[j] != -100 and j > 0,
                               "corrupted": bool(masked[b, t])}[scope]
                t += 1
    assert not delta[~where].any()
    u = delta[where] / bound[where][:, None]  # should be U(-1, 1)
    assert u.abs().max() <= 1 + 1e-5 and u.abs().max() > 0.99
    assert u.mean().abs() < 0.05 and u.std() == pytest.approx(1 / math.sqrt(3), abs=0.03)


def test_embedding_dropout_rate_scope_and_off_at_eval():
    tok, rendered, model, batch = _emb_setup(packed=False)
    cfg = _cfg(p_max=0.5, noise="embed_dropout", dropout_q=0.25, embed_scope="response")
    ctx = _ctx(cfg, tok, step=3)
    g = ctx.generator()
    _, masked = mft.corrupt(batch["input_ids"], batch["labels"], 0.5, ctx, g)
    clean = model.get_input_embeddings()(batch["input_ids"]).detach()
    with torch.no_grad():
        embeds, _ = mft_ablations.inputs_embeds(model, batch, masked, cfg.mft, g)
    resp = batch["labels"].ne(-100)
    assert torch.equal(embeds[~resp], clean[~resp])  # the prompt is untouched
    kept = embeds[resp] != 0
    assert kept.float().mean().item() == pytest.approx(0.75, abs=0.03)  # ~3,000 entries at rate 0.25
    torch.testing.assert_close(embeds[resp][kept], clean[resp][kept] / 0.75)  # inverted-dropout scaling
    # eval mode: no dropout, and the loss is plain SFT's (scope "all", so the mask ratio plays no part)
    model.eval()
    every = _cfg(p_max=0.5, schedule="constant", noise="embed_dropout", dropout_q=0.25)
    s_mft, n_mft, _ = mft.loss(model, batch, _ctx(every, tok))
    s_sft, n_sft, _ = sft.loss(model, batch, None)
    torch.testing.assert_close(s_mft, s_sft)
    model.train()
    s_train, _, _ = mft.loss(model, batch, _ctx(every, tok))
    assert not torch.allclose(s_train, s_sft)


@pytest.mark.parametrize("sampling", ["argmax", "sample", "soft"])
def test_scheduled_sampling_inserts_the_models_own_predictions_at_the_corrupted_positions(sampling):
    tok, rendered, model, batch = _emb_setup(packed=False)
    cfg = _cfg(p_max=0.4, noise="scheduled_sampling", sampling=sampling, sampling_temperature=1e-4)
    ctx = _ctx(cfg, tok)
    g = ctx.generator()
    _, masked = mft.corrupt(batch["input_ids"], batch["labels"], 0.4, ctx, g)
    resp = batch["labels"].ne(-100)
    assert masked.sum() / resp.sum() == pytest.approx(0.4, abs=0.08)  # the stated rate, ~200 candidates
    with torch.no_grad():
        embeds, metrics = mft_ablations.inputs_embeds(model, batch, masked, cfg.mft, g)
        emb = model.get_input_embeddings()
        ids = batch["input_ids"]
        assert torch.equal(embeds[~masked], emb(ids)[~masked])
        wrong = 0
        for b, t in masked.nonzero().tolist():  # slow: the model on the clean prefix, one position at a time
            logits = model(input_ids=ids[b : b + 1, :t]).logits[0, -1]  # [V]
            pred = int(logits.argmax())
            wrong += pred != int(ids[b, t])
            want = emb.weight[pred]
            if sampling == "soft":
                want = 0.3 * (torch.softmax(logits, -1) @ emb.weight) + 0.7 * emb.weight[ids[b, t]]
            torch.testing.assert_close(embeds[b, t], want, atol=1e-5, rtol=1e-4)
    assert metrics["predicted_wrong"] == wrong > 0  # a random model is wrong most of the time
    # sampling at temperature 1 draws from the model's distribution, reproducibly from the seeded generator
    hot = MFTConfig(noise="scheduled_sampling", sampling="sample", sampling_temperature=1.0)
    with torch.no_grad():
        a = mft_ablations.inputs_embeds(model, batch, masked, hot, _ctx(cfg, tok).generator())[0]
        b_ = mft_ablations.inputs_embeds(model, batch, masked, hot, _ctx(cfg, tok).generator())[0]
    torch.testing.assert_close(a, b_)


# ------------------------------------------------------------------------ config and the loop
@pytest.mark.parametrize(("key", "value"), [("mft.schedule_unit", "minibatch"), ("mft.schedule", "random"),
                                            ("mft.noise", "dropout"), ("mft.dropout_q", 1.0),
                                            ("mft.embed_scope", "prompt"), ("mft.sampling", "greedy"),
                                            ("mft.sampling_temperature", 0.0), ("mft.neftune_alpha", -1.0),
                                            ("mft.warmup_micro_batches", -5), ("mft.soft_weight", 1.5)])
def test_bad_option_values_name_the_field(key, value):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_recipe(REPO / "recipes" / "mft-regime.toml", {key: value})


@pytest.mark.parametrize("text", ["mft.schedule_unit=microbatch", "mft.schedule=random_per_batch",
                                  "mft.attend_to_noise=false", "mft.noise=embed_dropout", "mft.noise=neftune",
                                  "mft.noise=scheduled_sampling", "mft.sampling=soft"])
def test_seeds_compare_flag_selects_each_option(text):
    import argparse

    from mathforge.cli.seeds import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["seeds", "recipes/mft-regime.toml", "--set", "objective=mft", "--compare", text,
                              "--out", "x"])
    key, value = parse_override(args.compare[0])
    base = dict(parse_override(t) for t in args.overrides)
    cfg = load_recipe(REPO / "recipes" / "mft-regime.toml", {**base, key: value}, override_label="--set/--compare")
    assert cfg.objective == "mft" and getattr(cfg.mft, key.split(".")[1]) == value


def _tiny_run(tmp_path, **mft_kw):
    return config_from_dict({
        "out_dir": str(tmp_path / "run"), "objective": "mft", "threads": 1, "progress": False, "log_every": 1,
        "checkpoint_every": 0,
        "data": {"task": "arithmetic", "task_args": {"digits": 1, "n_ops": [1, 2]}, "n_train": 64, "n_eval": 0,
                 "seq_len": 96},
        "model": {"preset": "nano", "overrides": TINY_TRAIN_OVERRIDES},
        "optim": {"micro_batch_size": 2, "grad_accum": 2, "max_steps": 4},
        "mft": mft_kw, "eval": {"n_problems": 0},
    })


@pytest.mark.parametrize("mft_kw", [
    {"schedule_unit": "microbatch", "warmup_micro_batches": 6, "p_max": 0.3},
    {"schedule": "random_per_batch", "attend_to_noise": False},
    {"noise": "embed_dropout", "embed_scope": "corrupted"},
    {"noise": "neftune", "schedule": "constant"},
    {"noise": "scheduled_sampling", "sampling": "sample", "schedule": "constant"},
], ids=["microbatch", "random+hidden", "dropout", "neftune", "sampled"])
def test_each_option_trains_in_the_one_loop(tmp_path, mft_kw):
    from mathforge.train.loop import train

    train(_tiny_run(tmp_path, **mft_kw))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(math.isfinite(r["loss"]) for r in rows)
    if mft_kw.get("schedule_unit") == "microbatch":  # the logged ratio is the last micro-batch's: s = 2g + 2
        assert [r["mask_ratio"] for r in rows] == pytest.approx([min(0.3, 0.3 * (2 * g + 2) / 6) for g in range(4)])
    if mft_kw.get("noise") == "scheduled_sampling":
        assert all("predicted_wrong" in r for r in rows)


def test_options_enter_the_resume_hash_only_when_set():
    from mathforge.train.loop import _MFT_LATER, _config_hash

    base = _cfg()
    assert set(_MFT_LATER) <= set(base.mft.__dict__)
    assert _config_hash(base) == _config_hash(_cfg(attend_to_noise=True, schedule_unit="step"))  # defaults
    # a checkpoint written under one option is not resumed under another
    assert len({_config_hash(_cfg(**kw)) for kw in ({}, {"attend_to_noise": False}, {"noise": "neftune"},
                                                   {"schedule_unit": "microbatch"}, {"neftune_alpha": 1.0})}) == 5
