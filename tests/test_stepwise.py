"""Step-wise generation: caches after duplicate-heavy selects equal a from-scratch forward pass, the
value model's cached reads equal re-encoding, boundaries are token-exact, samples ignore batching."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tiny_lm import tiny_model, tiny_tokenizer  # noqa: E402

from mathforge.infer.hf_engine import HFEngine  # noqa: E402
from mathforge.infer.stepwise import StepConfig, StepGenerator  # noqa: E402
from mathforge.infer.types import SamplingParams  # noqa: E402
from mathforge.models.value import ValueModel  # noqa: E402

PROMPTS = ["Question: What is 12 + 30?", "The sum", "Tom has 3 apples and buys"]
PARAMS = SamplingParams(max_new_tokens=30, temperature=1.0, top_k=40, seed=3)


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    model = tiny_model(tok, init=0.05)  # a flatter distribution: many distinct samples
    value = ValueModel.from_generator(model, init="random")  # a non-constant head, so reads are checked
    return model, tok, value


def forward_logprobs(model, ids: list[int], start: int) -> torch.Tensor:
    """Teacher-forced log-probs of ids[start:] (the slow obvious computation)."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits.float(), -1)[0]  # [T, V]
    pos = torch.arange(start - 1, len(ids) - 1)
    return logp[pos, torch.tensor(ids[start:])]


def test_shared_prefix_cache_with_duplicated_rows_matches_a_plain_forward(lm):
    """Resampling duplicates rows; each copy must keep its own query slot (the bug: off by 6.56)."""
    from mathforge.infer.prefix_attention import KWARG, shared_prefix_attention

    model, tok, _ = lm
    engine = HFEngine(model, tok)
    assert engine.shared_prefix
    prompt_ids = [tok(p)["input_ids"] for p in PROMPTS[:2]]
    with torch.inference_mode():
        cache, logits, _, last_pos = engine._prefill(prompt_ids, [3, 3], capacity=16)
        seqs = [list(prompt_ids[0])] * 3 + [list(prompt_ids[1])] * 3
        gen = torch.Generator().manual_seed(0)

        def step(logits, last_pos, seqs):
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)  # [R]
            seqs = [s + [int(t)] for s, t in zip(seqs, token, strict=True)]
            last_pos = last_pos + 1
            ones = torch.ones(len(seqs), 1, 1, 1, dtype=torch.bool)
            with shared_prefix_attention(model):
                logits = engine._forward(token[:, None], ones, last_pos[:, None], cache, **{KWARG: cache})
            return logits, last_pos, seqs

        for _ in range(3):
            logits, last_pos, seqs = step(logits, last_pos, seqs)
        sel = [0, 0, 0, 4, 4, 1, 5, 0]  # duplicate-heavy, mixing prompts, more rows than before
        cache.batch_select_indices(torch.tensor(sel))
        logits, last_pos, seqs = logits[sel], last_pos[sel], [seqs[i] for i in sel]
        for _ in range(3):
            logits, last_pos, seqs = step(logits, last_pos, seqs)
    for row, seq in enumerate(seqs):
        with torch.no_grad():
            ref = model(torch.tensor([seq])).logits[0, -1].float()
        assert torch.allclose(logits[row], ref, atol=1e-4), (row, (logits[row] - ref).abs().max())


@pytest.mark.parametrize("split", [True, False])
def test_continuing_after_duplicate_select_matches_a_forward_pass(lm, split):
    """Both caches (prompt once + per-row lengths; padded with holes) against the plain forward pass."""
    model, tok, value = lm
    sg = StepGenerator(model, tok, value_model=value, params=PARAMS, steps=StepConfig(delimiter=" "),
                       split_cache=split)
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    state = sg.start(prompts, 4)
    for rnd in range(4):
        moved = sg.extend(state)
        if not moved:
            break
        h = sg.score(state, moved)
        assert torch.allclose(h, sg.score(state, moved, reencode=True), atol=1e-4)  # cached read == re-encode
        n = len(state.rows)
        # every row copied from row 0 of its problem, twice, then shuffled problems; keys stay positional
        idx = [(i // 4) * 4 + (0 if i % 4 < 2 else (rnd + i) % 4) for i in range(n)]
        sg.select(state, idx, keys=[r.key for r in state.rows])
    sg.extend(state)
    assert any(len(r.boundaries) >= 2 for r in state.rows)
    for r in state.rows:
        ids = state.prompts[r.problem] + r.tokens
        ref = forward_logprobs(model, ids, len(state.prompts[r.problem]))
        assert torch.allclose(torch.tensor(r.logprobs), ref, atol=1e-4)
    live = [i for i, r in enumerate(state.rows) if r.finish != "length"]
    if live:
        assert torch.allclose(sg.score(state, live), sg.score(state, live, reencode=True), atol=1e-4)


def test_group_rounds_match_a_forward_pass_and_the_padded_cache(lm):
    """`extend(groups=...)` returns when some group has no row running; the others keep decoding at
    the next call. Each row's log-probs and value reads still equal the plain computation, and the
    split cache gives the same tokens as the padded one (same random streams)."""
    model, tok, value = lm
    prompts = [tok(p)["input_ids"] for p in PROMPTS]

    def run(split):
        sg = StepGenerator(model, tok, value_model=value, params=PARAMS, steps=StepConfig(delimiter=" "),
                           split_cache=split)
        state = sg.start(prompts, 4)
        groups = [list(range(g * 2, g * 2 + 2)) for g in range(6)]  # groups of 2 rows
        sg.begin(state, list(range(len(state.rows))))
        partial, calls = False, 0
        while not state.finished and calls < 200:
            calls += 1
            ready = sg.extend(state, groups=groups)
            assert ready
            busy = [i for i, r in enumerate(state.rows) if not r.waiting]
            partial |= bool(busy)  # some rows were still mid-step when the call returned
            rows = [i for g in ready for i in groups[g] if state.rows[i].new_tokens and state.rows[i].finish != "length"]
            if rows:
                assert torch.allclose(sg.score(state, rows), sg.score(state, rows, reencode=True), atol=1e-4)
            idx = list(range(len(state.rows)))
            for g in ready:  # resample within each ready group: its first row twice
                a, b = groups[g]
                idx[b] = a
            sg.select(state, idx, keys=[r.key for r in state.rows])
            sg.begin(state, [i for g in ready for i in groups[g]])
        assert partial and state.finished
        return state

    state = run(True)
    for r in state.rows:
        ids = state.prompts[r.problem] + r.tokens
        assert torch.allclose(torch.tensor(r.logprobs), forward_logprobs(model, ids, len(state.prompts[r.problem])),
                              atol=1e-4)
    padded = run(False)
    assert [r.tokens for r in state.rows] == [r.tokens for r in padded.rows]


def test_select_rejects_shared_random_streams(lm):
    model, tok, _ = lm
    sg = StepGenerator(model, tok, params=PARAMS)
    state = sg.start([tok("The sum")["input_ids"]], 2)
    with pytest.raises(ValueError, match="keys="):
        sg.select(state, [0, 0])


def test_samples_do_not_depend_on_batching(lm):
    model, tok, _ = lm
    sg = StepGenerator(model, tok, params=PARAMS, steps=StepConfig(delimiter=" "))
    prompts = [tok(p)["input_ids"] for p in PROMPTS]

    def run(ps, n):
        state = sg.start(ps, n)
        while sg.extend(state):
            pass
        return [r.tokens for r in state.rows]

    together = run(prompts, 3)
    alone = run([prompts[1]], 3)
    assert together[3:6] == alone
    assert len({tuple(t) for t in together[3:6]}) > 1
    # the HF engine keys its streams the same way: batch size does not change a sample
    e1 = HFEngine(model, tok, batch_size=2).generate(PROMPTS, n=3, params=PARAMS)
    e2 = HFEngine(model, tok, batch_size=9).generate(PROMPTS[1:2], n=3, params=PARAMS)
    assert [c.token_ids for c in e1[1]] == [c.token_ids for c in e2[0]]


def test_proposal_logprobs_follow_temperature_and_top_k(lm):
    from mathforge.infer.sampling import proposal_probs

    model, tok, _ = lm
    params = SamplingParams(max_new_tokens=6, temperature=0.7, top_k=5, seed=1)
    (c,) = HFEngine(model, tok).generate([PROMPTS[0]], params=params)[0]
    ids = tok(PROMPTS[0])["input_ids"]
    seq = ids + c.token_ids
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0].float()  # [T, V]
    pos = torch.arange(len(ids) - 1, len(seq) - 1)
    probs = proposal_probs(logits[pos], 0.7, 5)
    ref = torch.log(probs.gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1))
    assert c.proposal_token_logprobs == pytest.approx(ref.tolist(), abs=1e-4)
    assert all((probs > 0).sum(-1) <= 5)


def test_boundaries_are_token_exact_and_skip_the_answer_header():
    from mathforge.data.tokenizer import build_tokenizer

    tok = build_tokenizer(["# Question\n\n# Answer\n\n0123456789+-*= abcdefghijklmnopqrstuvwxyz"], kind="char")
    model = tiny_model(tok)
    sg = StepGenerator(model, tok, params=SamplingParams(max_new_tokens=50))
    text = "a b\n\nc\n\n\nd\n\n# Answer\n\n14"
    from mathforge.infer.stepwise import Row

    row = Row(problem=0, key=(0, 0), limit=100)
    fired = []
    for t in tok(text, add_special_tokens=False)["input_ids"]:
        row.tokens.append(t)
        if sg._boundary(row):
            fired.append(tok.decode(row.tokens, skip_special_tokens=True))
    assert fired == ["a b\n\n", "a b\n\nc\n\n", "a b\n\nc\n\n\nd\n\n"]  # none after `# Answer`
    assert len(row.boundaries) == 3
    warm = StepGenerator(model, tok, params=SamplingParams(max_new_tokens=50), steps=StepConfig(warmup=6))
    row = Row(problem=0, key=(0, 0), limit=100)
    for t in tok(text, add_special_tokens=False)["input_ids"]:
        row.tokens.append(t)
        warm._boundary(row)
    assert [len(row.tokens[: b + 1]) for b in row.boundaries][0] >= 6


def test_value_model_save_load_round_trip(lm, tmp_path):
    from transformers import AutoModel

    from mathforge.models.value import check_same_tokenizer, load_value_model

    model, tok, value = lm
    value.save_pretrained(tmp_path / "v", tokenizer=tok)
    again, tok2 = load_value_model(tmp_path / "v")
    ids = torch.tensor([tok("The sum of 12")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, value(ids).logits, atol=1e-6)
        assert value(ids).logits.abs().max() > 0  # the random head really was saved
    trunk = AutoModel.from_pretrained(tmp_path / "v")  # plain transformers loads the trunk
    with torch.no_grad():
        assert torch.allclose(trunk(ids).last_hidden_state, value.trunk(ids).last_hidden_state, atol=1e-6)
    fresh = ValueModel.from_generator(model)
    assert float(fresh(ids).logits.detach().abs().max()) == 0.0  # zero-initialised head: V = 1/2 everywhere
    check_same_tokenizer(tok, tok2)
    from mathforge.data.tokenizer import build_tokenizer

    with pytest.raises(ValueError, match="tokenizer differs"):
        check_same_tokenizer(tok, build_tokenizer(["0123456789"], kind="char"))


def test_growing_cache_layer_equals_concatenation():
    from mathforge.infer.step_cache import _GrowingLayer

    g = torch.Generator().manual_seed(0)
    k0, v0 = torch.randn(3, 2, 5, 4, generator=g), torch.randn(3, 2, 5, 4, generator=g)
    layer = _GrowingLayer(k0, v0, extra=2)
    ks, vs = [k0], [v0]
    for width in (1, 3, 1, 4):  # grows past its capacity twice
        k, v = torch.randn(3, 2, width, 4, generator=g), torch.randn(3, 2, width, 4, generator=g)
        ks.append(k)
        vs.append(v)
        out_k, out_v = layer.update(k, v)
        assert torch.equal(out_k, torch.cat(ks, 2)) and torch.equal(out_v, torch.cat(vs, 2))
    layer.batch_select_indices(torch.tensor([2, 2, 0]))  # same row count: rewritten in place
    assert torch.equal(layer.keys[:, :, : layer.length], torch.cat(ks, 2)[[2, 2, 0]])
    layer.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.values[:, :, : layer.length], torch.cat(vs, 2)[[2]])
