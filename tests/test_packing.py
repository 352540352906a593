"""Packing without cross-sample attention (docs/methods/packing.md §c.8): packed == one-by-one, exactly."""

import random

import pytest
import torch

from mathforge.data.packing import (
    block_causal_mask,
    collate_packed,
    collate_padded,
    model_inputs,
    pack,
    pack_rendered,
    packing_stats,
    unpack_row,
)
from mathforge.data.render import IGNORE_INDEX, Rendered

torch.set_num_threads(1)
VOCAB = 40
PAD = 0


def _rendered(n: int, rng: random.Random, prompt_len: int | None = None) -> Rendered:
    ids = [rng.randrange(1, VOCAB) for _ in range(n)]
    p = rng.randrange(0, n) if prompt_len is None else prompt_len
    labels = [IGNORE_INDEX] * p + ids[p:]
    weights = [0.0] * p + [rng.choice([1.0, 0.5, 2.0])] * (n - p)
    return Rendered(ids, labels, weights, p)


def _llama(**kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=PAD, tie_word_embeddings=True)
    cfg._attn_implementation = kw.pop("attn", "sdpa")
    return LlamaForCausalLM(cfg).eval()


def _token_ce(logits, labels):
    """Per-position CE of the HF shifted loss: entry t scores labels[t] from logits[t-1]; 0 where ignored."""
    shift_logits = logits[:, :-1].float()  # [B,T-1,V]
    shift_labels = labels[:, 1:]  # [B,T-1]
    ce = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="none").view(shift_labels.shape)
    return torch.nn.functional.pad(ce, (1, 0))  # [B,T], aligned with labels


def _examples(seed=0, seq_len=24, n=9):
    rng = random.Random(seed)
    lens = [1, 2, seq_len, 5] + [rng.randrange(1, seq_len + 1) for _ in range(n - 4)]
    return [_rendered(k, rng) for k in lens]


def test_worked_example_from_spec():
    e1 = Rendered([1, 7, 9], [-100, -100, 9], [0, 0, 1.0], 2)
    e2 = Rendered([1, 4], [-100, 4], [0, 1.0], 1)
    b = collate_packed([[e1, e2]], seq_len=6, pad_id=0)
    assert b["input_ids"].tolist() == [[1, 7, 9, 1, 4, 0]]
    assert b["labels"].tolist() == [[-100, -100, 9, -100, 4, -100]]
    assert b["seq_ids"].tolist() == [[0, 0, 0, 1, 1, -1]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0]]
    assert b["weights"].tolist() == [[0, 0, 1, 0, 1, 0]]
    m = b["attention_mask"][0, 0]
    assert m.shape == (6, 6) and m.dtype == torch.bool
    assert m[4].tolist() == [False, False, False, True, True, False]  # e2 sees only e2, causally
    assert m[2].tolist() == [True, True, True, False, False, False]
    assert m[5].tolist() == [False] * 5 + [True]  # pad query: itself only


def test_first_label_of_each_sample_is_forced_ignored():
    # Example without BOS whose first token is labelled: packed, it must not be a target of the
    # previous example's last position.
    a = Rendered([5, 6, 2], [-100, 6, 2], [0, 1, 1], 1)
    b = Rendered([7, 8, 2], [7, 8, 2], [1, 1, 1], 0)
    batch = collate_packed([[a, b]], seq_len=8)
    labels = batch["labels"][0].tolist()
    assert labels[2] == 2  # a's last token keeps its EOS target
    assert labels[3] == IGNORE_INDEX  # b's first token: the position after a's EOS predicts nothing
    assert labels[4:6] == [8, 2]
    assert batch["weights"][0, 3] == 0


@pytest.mark.parametrize("strategy", ["best_fit_decreasing", "first_fit_decreasing", "next_fit"])
def test_pack_places_every_index_once_within_capacity(strategy):
    rng = random.Random(1)
    lengths = [rng.randrange(1, 50) for _ in range(500)]
    rows = pack(lengths, 64, strategy=strategy)
    flat = sorted(i for row in rows for i in row)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    if strategy == "next_fit":
        assert [i for row in rows for i in row] == list(range(len(lengths)))  # data order kept


def test_best_fit_is_fuller_than_next_fit_and_exact_on_known_case():
    rng = random.Random(2)
    lengths = [rng.randrange(1, 400) for _ in range(2000)]
    bfd = packing_stats(lengths, pack(lengths, 512), 512)
    nf = packing_stats(lengths, pack(lengths, 512, strategy="next_fit"), 512)
    assert bfd["tokens"] == nf["tokens"] == sum(lengths)
    assert bfd["rows"] < nf["rows"] and bfd["efficiency"] > 0.97
    # 6+4, 5+5, 3+3+... : best fit puts 4 into the row holding 6 (fullest that fits)
    assert sorted(map(sorted, pack([6, 5, 5, 4, 3, 3], 10))) == [[0, 3], [1, 2], [4, 5]]


def test_pack_rejects_overlong_naming_the_example():
    with pytest.raises(ValueError, match=r"#2 has length 11"):
        pack([3, 4, 11], 10)


def test_packed_logits_losses_and_grads_equal_one_by_one():
    model = _llama()
    seq_len = 24
    exs = _examples()
    rows = pack_rendered(exs, seq_len)
    rows.append([])  # an entirely padded row (I5)
    assert any(sum(len(x) for x in row) == seq_len for row in rows)  # an exactly full row (I4)
    batch = collate_packed(rows, seq_len, PAD)
    out = model(**model_inputs(batch, "sdpa"))
    assert torch.isfinite(out.logits).all()
    packed_ce = _token_ce(out.logits, batch["labels"])  # [B,T]
    packed_ce.sum().backward()
    grads_packed = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    total = torch.zeros(())
    n_targets = 0
    for r, row in enumerate(rows):
        start = 0
        for ex in row:
            n = len(ex)
            ids = torch.tensor([ex.input_ids])
            logits = model(input_ids=ids).logits  # [1,n,V]
            torch.testing.assert_close(out.logits[r, start:start + n], logits[0], atol=1e-5, rtol=1e-5)
            labels = torch.tensor([ex.labels])
            labels[0, 0] = IGNORE_INDEX
            ce = _token_ce(logits, labels)
            torch.testing.assert_close(packed_ce[r, start:start + n], ce[0], atol=1e-5, rtol=1e-5)
            total = total + ce.sum()
            n_targets += int((labels != IGNORE_INDEX).sum())
            start += n
    assert n_targets == int((batch["labels"] != IGNORE_INDEX).sum())  # I2: same target set
    total.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads_packed[name], p.grad, atol=1e-4, rtol=1e-4, msg=name)  # I3


def test_hf_loss_on_packed_batch_equals_mean_of_unpacked_token_losses():
    model = _llama()
    exs = _examples(seed=3)
    batch = collate_packed(pack_rendered(exs, 24), 24, PAD)
    with torch.no_grad():
        loss = model(**model_inputs(batch, "sdpa"), labels=batch["labels"]).loss
        tok = [_token_ce(model(input_ids=torch.tensor([e.input_ids])).logits,
                         torch.tensor([[IGNORE_INDEX] + e.labels[1:]])) for e in exs]
    n = sum(int((torch.tensor(e.labels[1:]) != IGNORE_INDEX).sum()) for e in exs)
    assert torch.allclose(loss, sum(t.sum() for t in tok) / n, atol=1e-5)


def test_changing_sample_a_leaves_sample_b_untouched():
    model = _llama()
    rng = random.Random(4)
    a, b = _rendered(7, rng), _rendered(9, rng)
    a2 = Rendered([(t % (VOCAB - 1)) + 1 for t in a.input_ids[::-1]], a.labels, a.weights, a.prompt_len)
    with torch.no_grad():
        x = model(**model_inputs(collate_packed([[a, b]], 20, PAD), "sdpa")).logits
        y = model(**model_inputs(collate_packed([[a2, b]], 20, PAD), "sdpa")).logits
    assert not torch.allclose(x[0, :7], y[0, :7])
    torch.testing.assert_close(x[0, 7:16], y[0, 7:16], atol=1e-6, rtol=1e-6)


def test_without_isolation_the_same_check_fails():
    # Guards the guard: plain causal attention over the row DOES leak, so the tests above can fail.
    model = _llama()
    rng = random.Random(4)
    a, b = _rendered(7, rng), _rendered(9, rng)
    a2 = Rendered([(t % (VOCAB - 1)) + 1 for t in a.input_ids[::-1]], a.labels, a.weights, a.prompt_len)
    with torch.no_grad():
        x = model(input_ids=collate_packed([[a, b]], 20, PAD)["input_ids"]).logits
        y = model(input_ids=collate_packed([[a2, b]], 20, PAD)["input_ids"]).logits
    assert not torch.allclose(x[0, 7:16], y[0, 7:16], atol=1e-4)


@pytest.mark.parametrize("backend", ["eager", "position_ids_only"])
def test_other_backends_match_sdpa(backend):
    exs = _examples(seed=5)
    batch = collate_packed(pack_rendered(exs, 24) + [[]], 24, PAD)
    ref_model = _llama()
    with torch.no_grad():
        ref = ref_model(**model_inputs(batch, "sdpa")).logits
        if backend == "eager":
            model = _llama(attn="eager")
            got = model(**model_inputs(batch, "eager")).logits
            real = torch.ones_like(batch["seq_ids"], dtype=torch.bool)
        else:
            # transformers 5 derives the packed block mask from position_ids restarting at 0 when
            # no mask and no cache is given: the mechanism the flash-attention varlen path uses.
            inputs = model_inputs(batch, "flash_attention_2")
            assert "attention_mask" not in inputs and inputs["use_cache"] is False
            got = ref_model(**inputs).logits
            real = batch["seq_ids"] >= 0  # pad positions differ (they attend to each other there)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got[real], ref[real], atol=1e-5, rtol=1e-5)


def test_model_inputs_refuses_backend_without_isolation():
    batch = collate_packed([[_rendered(3, random.Random(0))]], 4)
    with pytest.raises(ValueError, match="no isolating"):
        model_inputs(batch, "flex_attention_unknown")
    assert "attention_mask" not in model_inputs(batch, "flash_attention_2")


def test_additive_mask_matches_boolean():
    seq = torch.tensor([[0, 0, 1, -1]])
    b = block_causal_mask(seq)
    a = block_causal_mask(seq, mask="additive", dtype=torch.bfloat16)
    assert a.dtype == torch.bfloat16 and torch.equal(a == 0, b)


def test_unpack_round_trip():
    exs = _examples(seed=6)
    rows = pack_rendered(exs, 24)
    batch = collate_packed(rows, 24, PAD)
    for r, row in enumerate(rows):
        got = unpack_row(batch, r)
        assert [g[0] for g in got] == [e.input_ids for e in row]
        assert [g[1][1:] for g in got] == [e.labels[1:] for e in row]


def test_collate_padded_matches_unpadded_logits():
    model = _llama()
    exs = _examples(seed=7, n=5)
    batch = collate_padded(exs, PAD)
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        for r, ex in enumerate(exs):
            alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
            torch.testing.assert_close(out[r, :len(ex)], alone, atol=1e-5, rtol=1e-5)
    assert (batch["labels"][batch["seq_ids"] < 0] == IGNORE_INDEX).all()


def test_collate_rejects_overfull_row():
    rng = random.Random(0)
    with pytest.raises(ValueError, match="row 0 holds 9 tokens"):
        collate_packed([[_rendered(5, rng), _rendered(4, rng)]], 8)


def test_absolute_position_model_gpt2_matches_one_by_one():
    # Learned absolute positions are where continuous positions would be wrong (§c.6); resetting
    # them per example must give each example its solo logits.
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=2, n_positions=32, bos_token_id=1,
                     eos_token_id=2)
    cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg).eval()
    rows = pack_rendered(_examples(seed=8), 24)
    batch = collate_packed(rows, 24, PAD)
    with torch.no_grad():
        out = model(**model_inputs(batch, "sdpa")).logits
        for r, row in enumerate(rows):
            start = 0
            for ex in row:
                alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
                torch.testing.assert_close(out[r, start:start + len(ex)], alone, atol=1e-5, rtol=1e-5)
                start += len(ex)
