"""HFEngine against the plain transformers path on a tiny random Llama, plus the shared types."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tiny_lm import tiny_model, tiny_tokenizer  # noqa: E402

from mathforge.infer.hf_engine import HFEngine  # noqa: E402
from mathforge.infer.types import Completion, SamplingParams, cut_at_stop  # noqa: E402

PROMPTS = ["Question: What is 12 + 30?", "The sum", "## Question\nCompute 7 * 6.\n\n## Solution\n",
           "Tom has 3 apples", "Let's think step by step. The answer is"]
GREEDY = SamplingParams(max_new_tokens=24)
SAMPLED = SamplingParams(max_new_tokens=16, temperature=0.9, top_p=0.9, seed=7)


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    tok = tiny_tokenizer(chat=True)
    return tiny_model(tok), tok


def reference_greedy(model, tok, prompt: str, max_new: int) -> list[int]:
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, do_sample=False, max_new_tokens=max_new, pad_token_id=tok.pad_token_id)
    new = out[0, ids.input_ids.shape[1]:].tolist()
    return new[: new.index(tok.eos_token_id) + 1] if tok.eos_token_id in new else new


@pytest.mark.parametrize("shared", [True, False])
def test_greedy_equals_model_generate(lm, shared):
    model, tok = lm
    # batch_size 3 over 5 prompts of different lengths: sorted batches, left padding, a ragged last batch
    got = HFEngine(model, tok, batch_size=3, shared_prefix=shared).generate(PROMPTS, params=GREEDY)
    for prompt, (c,) in zip(PROMPTS, got, strict=True):
        ref = reference_greedy(model, tok, prompt, GREEDY.max_new_tokens)
        assert c.token_ids == ref, prompt
        assert c.n_tokens == len(ref)
        assert c.text == tok.decode(ref, skip_special_tokens=True)
        assert c.finish_reason == ("stop" if ref[-1] == tok.eos_token_id else "length")


def test_stop_strings_cut_text_and_end_generation(lm):
    model, tok = lm
    engine = HFEngine(model, tok, batch_size=8)
    full = [c for (c,) in engine.generate(PROMPTS, params=GREEDY)]
    # A stop string taken from the middle of each greedy text, so each row stops at a different step.
    stops = [c.text[6:9] for c in full]
    assert all(len(s) == 3 for s in stops)
    for prompt, ref, stop in zip(PROMPTS, full, stops, strict=True):
        (c,) = engine.generate([prompt], params=GREEDY, stop=[stop, "never-seen"])[0]
        assert c.text == ref.text[: ref.text.index(stop)]
        assert c.finish_reason == "stop"
        assert c.token_ids == ref.token_ids[: len(c.token_ids)]  # same tokens, ended early
        assert len(c.token_ids) < len(ref.token_ids)
        # token_ids are cut at the stop string; n_tokens still counts the tokens that completed it
        assert stop not in tok.decode(c.token_ids) and c.n_tokens > len(c.token_ids)
        assert stop in tok.decode(ref.token_ids[: c.n_tokens])
        assert c.logprob == pytest.approx(sum(ref.token_logprobs[: len(c.token_ids)]), abs=1e-4)
    # All prompts together with all the stops: rows stop at different steps and are dropped from
    # the batch, which must not disturb the rows still running.
    together = engine.generate(PROMPTS, params=GREEDY, stop=stops)
    for ref, (c,) in zip(full, together, strict=True):
        assert c.text == cut_at_stop(ref.text, stops)[0]


def test_eos_from_generation_config_stops(lm):
    model, tok = lm
    ref = reference_greedy(model, tok, PROMPTS[0], 24)
    eos = ref[4]
    model.generation_config.eos_token_id = [tok.eos_token_id, eos]
    try:
        (c,) = HFEngine(model, tok).generate([PROMPTS[0]], params=GREEDY)[0]
    finally:
        model.generation_config.eos_token_id = tok.eos_token_id
    assert c.token_ids == ref[: ref.index(eos) + 1]
    assert c.finish_reason == "stop"


def test_samples_are_seeded_and_distinct(lm):
    model, tok = lm
    engine = HFEngine(model, tok, batch_size=4)  # n=6 > batch_size: the prompt is split into chunks
    a = engine.generate(PROMPTS[:2], n=6, params=SAMPLED)
    b = engine.generate(PROMPTS[:2], n=6, params=SAMPLED)
    c = engine.generate(PROMPTS[:2], n=6, params=SamplingParams(**{**SAMPLED.__dict__, "seed": 8}))
    assert [[x.token_ids for x in row] for row in a] == [[x.token_ids for x in row] for row in b]
    assert [[x.token_ids for x in row] for row in a] != [[x.token_ids for x in row] for row in c]
    assert all(len(row) == 6 for row in a)
    assert len({tuple(x.token_ids) for x in a[0]}) > 1  # n samples differ from each other


@pytest.mark.parametrize("shared", [True, False])
def test_logprobs_match_a_forward_pass(lm, shared):
    model, tok = lm
    engine = HFEngine(model, tok, batch_size=5, shared_prefix=shared)
    results = engine.generate(PROMPTS[:3], n=3, params=SAMPLED)
    for prompt, row in zip(PROMPTS[:3], results, strict=True):
        p_ids = tok(prompt)["input_ids"]
        for c in row:
            ids = torch.tensor([p_ids + c.token_ids])  # [1, P+G]
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits.float(), -1)[0]  # [P+G, V]
            gen_pos = torch.arange(len(p_ids) - 1, ids.shape[1] - 1)
            per_token = logp[gen_pos, ids[0, len(p_ids):]]  # [G]
            assert c.token_logprobs == pytest.approx(per_token.tolist(), abs=1e-4)
            assert c.logprob == pytest.approx(per_token.sum().item(), abs=1e-3)


def test_shared_prefix_attention_equals_copied_prompt_caches(lm, monkeypatch):
    """Hydragen-style attention (prefix stored once, merged by log-sum-exp) against the plain path
    that copies each prompt's cache to its n rows: same samples, same log-probs."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from mathforge.infer import prefix_attention as pa

    calls = []
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, pa.ATTN_NAME,
                        lambda *a, **k: calls.append(1) or pa.shared_prefix_forward(*a, **k))
    model, tok = lm
    assert HFEngine(model, tok).shared_prefix  # on by default for Llama
    kw = dict(n=5, params=SAMPLED, stop=["e"])
    shared = HFEngine(model, tok, batch_size=12).generate(PROMPTS, **kw)
    assert calls  # the shared-prefix attention really ran
    n_calls = len(calls)
    plain = HFEngine(model, tok, batch_size=12, shared_prefix=False).generate(PROMPTS, **kw)
    assert len(calls) == n_calls  # ... and the plain path did not use it
    assert [[c.token_ids for c in r] for r in shared] == [[c.token_ids for c in r] for r in plain]
    for a, b in zip(sum(shared, []), sum(plain, []), strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    assert model.config._attn_implementation != "mathforge_shared_prefix"  # restored after decoding


def test_shared_prefill_and_finished_rows_leave_the_batch(lm):
    model, tok = lm
    shapes: list[tuple[int, int]] = []
    hook = model.model.register_forward_pre_hook(
        lambda mod, args, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        engine = HFEngine(model, tok, batch_size=8)
        results = engine.generate(PROMPTS[:2], n=4, params=SAMPLED, stop=["e"])
    finally:
        hook.remove()
    longest = max(len(tok(p)["input_ids"]) for p in PROMPTS[:2])
    assert shapes[0] == (2, longest)  # prefill: each prompt once, not n times
    decode_rows = [b for b, t in shapes[1:]]
    assert all(t == 1 for _, t in shapes[1:])
    assert len(set(decode_rows)) > 1  # rows did end at different steps
    n_steps = max(c.n_tokens for row in results for c in row)
    assert len(decode_rows) == n_steps - 1
    # compute tracks live rows: each decode step runs exactly the rows that had not finished
    lengths = [c.n_tokens for row in results for c in row]
    assert decode_rows == [sum(n > step for n in lengths) for step in range(1, n_steps)]


def test_chat_template_is_applied(lm):
    model, tok = lm
    engine = HFEngine(model, tok, chat=True)
    (ids,) = engine.encode(["What is 2 + 2?"])
    assert ids == tok("<bos>user: What is 2 + 2?\nassistant: ", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert HFEngine(model, tok).encode(["What is 2 + 2?"])[0] == tok("What is 2 + 2?")["input_ids"]
    (c,) = engine.generate(["What is 2 + 2?"], params=SamplingParams(max_new_tokens=5))[0]
    assert c.n_tokens >= 1


def test_context_limit(lm):
    model, tok = lm
    engine = HFEngine(model, tok)
    too_long = "7 * 6 = 42 " * 200
    with pytest.raises(ValueError, match="prompt 1 has .* tokens"):
        engine.generate(["ok", too_long], params=GREEDY)
    near = "7 * 6 = 42 " * 90  # leaves fewer than 24 positions
    (c,) = engine.generate([near], params=GREEDY)[0]
    assert len(tok(near)["input_ids"]) + c.n_tokens <= model.config.max_position_embeddings
    assert c.finish_reason in ("length", "stop")


@pytest.mark.parametrize("kw, field", [({"max_new_tokens": 0}, "max_new_tokens"),
                                       ({"temperature": -1.0}, "temperature"),
                                       ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p")])
def test_sampling_params_validation(kw, field):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**kw)


def test_bad_generate_arguments(lm):
    model, tok = lm
    engine = HFEngine(model, tok)
    with pytest.raises(ValueError, match="list of strings"):
        engine.generate("a prompt")
    with pytest.raises(ValueError, match="n="):
        engine.generate(["a"], n=0)
    with pytest.raises(ValueError, match="finish_reason"):
        Completion(text="", finish_reason="eos")


def test_cut_at_stop_earliest_wins():
    assert cut_at_stop("a\n\nQuestion: b ## c", ["## ", "\n\nQuestion:"]) == ("a", True)
    assert cut_at_stop("no stop here", ["###"]) == ("no stop here", False)


def test_vllm_engine_error_without_vllm(monkeypatch):
    import sys

    from mathforge.infer.vllm_engine import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMEngine("/nonexistent/model")


def test_bfloat16_model_runs_on_both_paths(lm):
    model, tok = lm
    low = tiny_model(tok).to(torch.bfloat16)
    for shared in (True, False):
        rows = HFEngine(low, tok, shared_prefix=shared).generate(PROMPTS[:2], n=3, params=SAMPLED)
        assert [len(r) for r in rows] == [3, 3]
        assert all(torch.isfinite(torch.tensor(c.logprob)) and c.n_tokens >= 1 for r in rows for c in r)


def test_top_p_shortcut_equals_full_sort():
    from mathforge.infer.hf_engine import _top_p

    gen = torch.Generator().manual_seed(0)
    peaked = torch.softmax(torch.randn(6, 1000, generator=gen) * 6, -1)  # nucleus inside the top 8
    flat = torch.softmax(torch.randn(6, 1000, generator=gen) * 0.1, -1)  # nucleus beyond the top 8
    for probs in (peaked, flat):
        for top_p in (0.5, 0.9):
            sorted_p, order = probs.sort(-1, descending=True)
            ref = torch.zeros_like(probs).scatter_(
                -1, order, sorted_p.masked_fill(sorted_p.cumsum(-1) - sorted_p >= top_p, 0.0))
            assert torch.equal(_top_p(probs, top_p, k=8), ref)
