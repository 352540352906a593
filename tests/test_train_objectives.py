"""Masked Thought (docs/methods/mft.md §a) and difficulty-adaptive SFT (docs/methods/sdat.md §b) against hand-computed values."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.data.packing import collate_packed, collate_padded  # noqa: E402
from mathforge.data.records import Example  # noqa: E402
from mathforge.data.render import render  # noqa: E402
from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.models.presets import build_model  # noqa: E402
from mathforge.train.config import DifficultyConfig, MFTConfig, RunConfig  # noqa: E402
from mathforge.train.objectives import StepContext, difficulty, mft, sft  # noqa: E402

TINY = TINY_TRAIN_OVERRIDES


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _setup(examples):
    tok = build_tokenizer([e.prompt + e.response for e in examples])
    return tok, [render(e, tok) for e in examples]


def _ctx(cfg, tok, step=0, total=10, **kw):
    return StepContext(cfg=cfg, step=step, total_steps=total, pad_id=tok.pad_token_id, mask_id=tok.mask_token_id,
                       vocab_base=len(tok), special_ids=tuple(tok.all_special_ids), **kw)


# ------------------------------------------------------------------------------------------ MFT
def test_mask_ratio_linear_warmup_values():
    cfg = MFTConfig(p_max=0.4, warmup_ratio=2 / 3)
    G = 30  # r*G + 1 = 21
    assert mft.mask_ratio(cfg, 0, G) == 0.0  # the first step trains with p = 0
    assert mft.mask_ratio(cfg, 7, G) == pytest.approx(0.4 * 7 / 21)
    assert mft.mask_ratio(cfg, 20, G) == pytest.approx(0.4 * 20 / 21)
    assert mft.mask_ratio(cfg, 21, G) == pytest.approx(0.4)
    assert mft.mask_ratio(cfg, 29, G) == pytest.approx(0.4)
    assert mft.mask_ratio(MFTConfig(p_max=0.3, schedule="constant"), 0, G) == 0.3
    late = MFTConfig(p_max=0.4, schedule="late_start", late_start=10)
    assert mft.mask_ratio(late, 9, G) == 0.0 and mft.mask_ratio(late, 10, G) == 0.0
    assert mft.mask_ratio(late, 15, G) == pytest.approx(0.4 * 5 / (2 / 3 * 20 + 1))
    dec = MFTConfig(p_max=0.2, schedule="decreasing", warmup_ratio=0.5)  # W = 15
    assert mft.mask_ratio(dec, 0, G) == pytest.approx(0.4) and mft.mask_ratio(dec, 15, G) == 0.2


@pytest.mark.parametrize("noise", ["mask", "random", "pad", "mixed"])
def test_mft_corrupts_only_response_tokens_and_keeps_labels(noise):
    examples = [Example(prompt=f"{i} * {i + 3} = ", response="1 2 3 4 5 6 7 8 9 " * (1 + i % 3)) for i in range(6)]
    tok, rendered = _setup(examples)
    cfg = RunConfig(objective="mft", mft=MFTConfig(p_max=0.5, noise=noise))
    batch = collate_packed([rendered[:3], rendered[3:]], 256, tok.pad_token_id)
    labels_before = batch["labels"].clone()
    ctx = _ctx(cfg, tok)
    noisy, masked = mft.corrupt(batch["input_ids"], batch["labels"], 0.5, ctx, ctx.generator())
    response = batch["labels"].ne(-100)
    assert torch.equal(batch["labels"], labels_before)  # labels are never changed
    assert not masked[~response].any()  # prompt, BOS and pad never corrupted
    assert torch.equal(noisy[~response], batch["input_ids"][~response])
    assert torch.equal(noisy[~masked], batch["input_ids"][~masked])
    frac = masked.sum().item() / response.sum().item()
    assert 0.35 < frac < 0.65  # Bernoulli(0.5) over ~150 candidates
    if noise == "mask":
        assert (noisy[masked] == tok.mask_token_id).all()
    if noise == "pad":
        assert (noisy[masked] == tok.pad_token_id).all()
    if noise == "random":
        assert (noisy[masked] < len(tok)).all() and (noisy[masked] != tok.mask_token_id).float().mean() > 0.9
    # p = 1 corrupts every response token; p = 0 none
    _, all_masked = mft.corrupt(batch["input_ids"], batch["labels"], 1.0, ctx, ctx.generator())
    assert torch.equal(all_masked, response)
    _, none = mft.corrupt(batch["input_ids"], batch["labels"], 0.0, ctx, ctx.generator())
    assert not none.any()


def test_mft_masks_are_reproducible_per_step_and_differ_between_steps():
    tok, rendered = _setup([Example(prompt="q", response="0123456789" * 5)])
    cfg = RunConfig(objective="mft")
    batch = collate_padded(rendered, tok.pad_token_id)
    draw = [mft.corrupt(batch["input_ids"], batch["labels"], 0.5, c, c.generator())[1]
            for c in (_ctx(cfg, tok, step=3), _ctx(cfg, tok, step=3), _ctx(cfg, tok, step=4))]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])


def test_mft_loss_at_p0_equals_sft_and_mask_token_starts_at_mean():
    examples = [Example(prompt="2+2=", response="4"), Example(prompt="3*3=", response="9 #### 9")]
    tok, rendered = _setup(examples)
    model = build_model(TINY, tok, seed=0)
    cfg = RunConfig(objective="mft", mft=MFTConfig(noise="mask"))
    mft.prepare(model, tok, cfg)
    emb = model.get_input_embeddings().weight
    others = torch.cat([emb[: tok.mask_token_id], emb[tok.mask_token_id + 1 :]])
    torch.testing.assert_close(emb[tok.mask_token_id], others.mean(0))
    batch = collate_padded(rendered, tok.pad_token_id)
    s_sft, n_sft, _ = sft.loss(model, batch, None)
    s_mft, n_mft, m = mft.loss(model, batch, _ctx(cfg, tok, step=0, total=10))
    assert m["mask_ratio"] == 0.0 and m["masked"] == 0
    torch.testing.assert_close(s_sft, s_mft)
    assert n_sft == n_mft == sum(r.n_targets for r in rendered)


def test_mft_adds_mask_token_to_a_tokenizer_without_one():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, **{str(d): d + 2 for d in range(10)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    assert tok.mask_token_id is None and len(tok) == 12
    model = build_model(TINY, tok, seed=0)
    before = model.get_input_embeddings().weight.detach().clone()  # [12, d]
    mft.prepare(model, tok, RunConfig(objective="mft"))
    assert tok.mask_token_id == 12 and len(tok) == 13
    emb = model.get_input_embeddings().weight  # [13, d], tied with the output projection
    assert emb.shape[0] == 13 and model.get_output_embeddings().weight.shape[0] == 13
    torch.testing.assert_close(emb[:12], before)  # old rows untouched
    torch.testing.assert_close(emb[12], before.mean(0))  # new row = mean of the pre-existing rows


# ----------------------------------------------------------------------------------- difficulty
def test_level_check_values():
    table = {0.0: 1, 0.2: 1, 0.2308: 2, 0.5: 3, 0.7: 4, 0.9143: 5, 1.0: 5}
    for err, level in table.items():
        assert difficulty.level_of(err) == level, err
    assert [difficulty.level_of(e, formula="report") for e in (0.0, 0.5, 0.99, 1.0)] == [0, 2, 4, 5]
    with pytest.raises(ValueError, match="error rate"):
        difficulty.level_of(1.5)


def test_upsampling_counts():
    exs = [Example(prompt=f"q{i}", response="r", difficulty=d) for i, d in enumerate([1, 2, 3, 4, 5])]
    for b, w, expect in [(1, 2, [3, 5, 7, 9, 11]), (0, 0.5, [0, 1, 1, 2, 2]), (1, 0.25, [1, 1, 1, 2, 2]),
                         (-2, 1, [0, 0, 1, 2, 3])]:
        cfg = RunConfig(objective="difficulty", difficulty=DifficultyConfig(base=b, factor=w))
        out = difficulty.expand(exs, cfg)
        assert [sum(o is e for o in out) for e in exs] == expect, (b, w)
    # error rates given: levels computed with the code formula; per-source override wins
    rates = [Example(prompt=f"e{i}", response="r", difficulty=e, meta={"source": s})
             for i, (e, s) in enumerate([(0.0, "a"), (0.5, "a"), (1.0, "CoT/number_comparison")])]
    cfg = RunConfig(objective="difficulty", difficulty=DifficultyConfig(
        given="err_rate", base=1, factor=1, overrides={"CoT/number_comparison": 1}))
    assert [sum(o is e for o in difficulty.expand(rates, cfg)) for e in rates] == [2, 4, 1]
    # continuous column (b=0, w=1 keeps only err_rate == 1, pitfall b.8-1)
    cfg = RunConfig(objective="difficulty", difficulty=DifficultyConfig(given="err_rate", column="err_rate",
                                                                         base=0, factor=1))
    assert [sum(o is e for o in difficulty.expand(rates, cfg)) for e in rates] == [0, 0, 1]


def test_weighting_variant_matches_formula():
    exs = [Example(prompt="a=", response="1 2 3 4 5 6", difficulty=1), Example(prompt="b=", response="7", difficulty=4),
           Example(prompt="c=", response="8 9", difficulty=2)]
    cfg = RunConfig(objective="difficulty", difficulty=DifficultyConfig(mode="weight", base=0.5, factor=1.0))
    weighted = difficulty.expand(exs, cfg)
    assert [e.weight for e in weighted] == [1.5, 4.5, 2.5]
    tok, rendered = _setup(weighted)
    model = build_model(TINY, tok, seed=0)
    batch = collate_packed([rendered], 64, tok.pad_token_id)
    with torch.no_grad():
        per_ex = []
        for r in rendered:  # each example alone: summed token loss and target count
            s, n, _ = sft.loss(model, collate_padded([r.__class__(r.input_ids, r.labels, [1.0] * len(r), r.prompt_len)],
                                                     tok.pad_token_id), None)
            per_ex.append((float(s), float(n)))
        c = [1.5, 4.5, 2.5]
        s_tok, n_tok, _ = difficulty.loss(model, batch, _ctx(cfg, tok))
        want = sum(ci * s for ci, (s, _) in zip(c, per_ex, strict=True)) / sum(ci * n for ci, (_, n) in zip(c, per_ex, strict=True))
        assert float(s_tok) / float(n_tok) == pytest.approx(want, rel=1e-4)
        cfg.difficulty.weight_norm = "sequence"
        s_seq, n_seq, m = difficulty.loss(model, batch, _ctx(cfg, tok))
        want = sum(ci * s / n for ci, (s, n) in zip(c, per_ex, strict=True)) / sum(c)
        assert m["examples"] == 3 and float(n_seq) == pytest.approx(sum(c))
        assert float(s_seq) / float(n_seq) == pytest.approx(want, rel=1e-4)
    assert not math.isnan(float(s_seq))
