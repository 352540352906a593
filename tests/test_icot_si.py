"""Stepwise internalization (docs/methods/icot.md §f.10) and the loop seams it runs on: spans, CoT removal at
the scheduled count, the smoothing distribution, optimizer resets at stage changes, SI with nothing
removed equal to SFT, named loss terms, and the running-sum probe targets."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.data.packing import SEGMENTS, collate_packed, collate_padded  # noqa: E402
from mathforge.data.render import render  # noqa: E402
from mathforge.data.tasks import icot_example  # noqa: E402
from mathforge.data.tasks.multiplication import make_example  # noqa: E402
from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.train.config import IcotSIConfig, config_from_dict  # noqa: E402
from mathforge.train.objectives import StepContext, icot_si, running_sum  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok():
    texts = [make_example(12, 34, 2).response, "<<16-3-4=9>> <<9*2=18>> #### 18 q?||"]
    return build_tokenizer(texts, kind="char_spaced")


def _mixed(tok):
    exs = [make_example(12, 34, 2), make_example(123, 456, 3),
           icot_example("How many?", "#### 7"),  # empty CoT
           icot_example("Sum 16-3-4, twice?", "<<16-3-4=9>> <<9*2=18>> #### 18")]
    return exs, [render(e, tok) for e in exs]


def test_spans_and_separators_of_unequal_examples(tok):
    exs, rendered = _mixed(tok)
    for ex, r in zip(exs, rendered, strict=True):
        p, c, a = r.spans["prompt"], r.spans["cot"], r.spans["answer"]
        assert p[0] == 0 and p[1] == c[0] and c[1] == a[0] and a[1] == len(r)
        assert tok.decode(r.input_ids[1 : p[1]]) == ex.prompt
        assert tok.decode(r.input_ids[slice(*c)]).strip() == ex.response.split("####")[0].strip()
        assert tok.decode(r.input_ids[slice(*a)], skip_special_tokens=True).strip() == ex.answer
        s1, s2 = r.separators()
        assert tok.decode([r.input_ids[s1]]) == "|"  # the end of the question
        assert s2 == c[1] and tok.decode([r.input_ids[s2]]).strip() == "#"  # where '####' starts
    assert rendered[2].cot_len == 0
    # padded: one example a row, segments follow each row's own spans
    batch = collate_padded(rendered, tok.pad_token_id)
    for i, r in enumerate(rendered):
        want = [0] * batch["segments"].shape[1]
        for name, code in SEGMENTS.items():
            for t in range(*r.spans[name]):
                want[t] = code
        assert batch["segments"][i].tolist() == want
    # packed: two rows of two examples; spans are offset by each example's start in the row
    packed = collate_packed([rendered[:2], rendered[2:]], 256, tok.pad_token_id)
    for row, pair in enumerate((rendered[:2], rendered[2:])):
        start = 0
        for r in pair:
            for name, code in SEGMENTS.items():
                a, b = r.spans[name]
                assert (packed["segments"][row, start + a : start + b] == code).all()
            start += len(r)
        assert (packed["segments"][row, start:] == 0).all()


def _state(si, max_cot=20, spe=10):
    return icot_si.SIState(steps_per_epoch=spe, max_cot=max_cot, si=si)


def test_schedule_counts():
    si = IcotSIConfig(remove_every_steps=5, pretrain_steps=10, remove_start_from=2, remove_all_when_remove_beyond=6)
    assert [icot_si.scheduled(s, si, 100) for s in (0, 9, 10, 14, 15, 29, 30)] == [0, 0, 2, 2, 3, 5, icot_si.ALL]
    per_epoch = IcotSIConfig(remove_per_epoch=8, pretrain_epochs=1)  # 80 steps an epoch -> 1 token per 10 steps
    assert [icot_si.scheduled(s, per_epoch, 80) for s in (79, 80, 89, 90, 165)] == [0, 0, 0, 1, 8]
    assert icot_si.stage(30, _state(si, max_cot=12, spe=100)) == 12  # capped at the longest CoT


def test_removal_is_exactly_the_scheduled_count(tok):
    exs = [make_example(12 + i, 34 + 3 * i, 2) for i in range(4)] + [make_example(123, 456, 3)]
    rendered = [render(e, tok) for e in exs]
    si = IcotSIConfig(remove_every_steps=3, smoothing_lambda=math.inf)
    state = _state(si, max_cot=max(r.cot_len for r in rendered))
    for step in (0, 3, 7, 20, 60):
        ctx = StepContext(cfg=None, step=step, state=state)
        out = icot_si.transform([rendered[:2], rendered[2:]], ctx)
        n = icot_si.scheduled(step, si, 10)
        for before, after in zip(rendered, [r for row in out for r in row], strict=True):
            k = min(before.cot_len, n)  # a CoT shorter than the schedule goes whole
            assert before.cot_len - after.cot_len == k and len(before) - len(after) == k
            c0 = before.spans["cot"][0]
            assert after.input_ids == before.input_ids[:c0] + before.input_ids[c0 + k :]
            assert after.labels == before.labels[:c0] + before.labels[c0 + k :]
            assert after.input_ids[slice(*after.spans["answer"])] == before.input_ids[slice(*before.spans["answer"])]
    full = icot_si.remove_cot(rendered[0], rendered[0].cot_len)
    nocot = render(make_example(12, 34, 2, cot=False), tok)
    # fully removed = the no-CoT layout (char_spaced: the first answer token keeps its space)
    assert tok.decode(full.input_ids) == tok.decode(nocot.input_ids).replace("||####", "|| ####")
    with pytest.raises(ValueError, match="cannot remove"):
        icot_si.remove_cot(rendered[0], rendered[0].cot_len + 1)


@pytest.mark.parametrize("lam", [0.7, 4.0])
def test_smoothing_offsets_follow_the_distribution(lam):
    g = torch.Generator().manual_seed(0)
    n = 200_000
    draws = icot_si.sample_offsets(n, lam, g)
    probs = icot_si.offset_probs(lam)
    assert sum(probs) == pytest.approx(1.0)
    for o in range(6):
        freq = draws.count(o) / n
        sd = math.sqrt(probs[o] * (1 - probs[o]) / n)
        assert abs(freq - probs[o]) <= 5 * sd + 1e-9, (o, freq, probs[o])
    if lam == 4.0:
        assert probs[0] == pytest.approx(0.9817, abs=1e-4) and probs[1] == pytest.approx(0.0180, abs=1e-4)
    assert max(draws) <= icot_si.MAX_OFFSET
    assert icot_si.sample_offsets(5, math.inf, g) == [0] * 5


def _recipe(tmp_path, objective="icot_si", steps=14, **si):
    table = {
        "out_dir": str(tmp_path / objective), "objective": objective, "seed": 3, "threads": 1, "progress": False,
        "log_every": 1, "checkpoint_every": 0,
        "data": {"task": "multiplication", "task_args": {"k": 2}, "n_train": 64, "n_eval": 0, "seq_len": 64,
                 "tokenizer": "char_spaced", "packing": False},
        "model": {"preset": "nano", "overrides": dict(TINY_TRAIN_OVERRIDES)},
        "optim": {"micro_batch_size": 2, "grad_accum": 2, "max_steps": steps, "lr": 3e-3, "schedule": "constant",
                  "warmup_ratio": 0.0},
        "eval": {"n_problems": 0},
        "icot_si": si,
    }
    return config_from_dict(table)


def test_optimizer_reset_exactly_at_stage_changes(tmp_path):
    from mathforge.train.loop import _Run

    run = _Run(_recipe(tmp_path, remove_every_steps=3, pretrain_steps=2, smoothing_lambda=math.inf))
    run.state = icot_si.SIState(run.state.steps_per_epoch, 3, run.state.si)  # full removal after 3 tokens
    since_reset, resets = 0, []
    for _ in range(14):
        rec = run.train_step()
        since_reset = 1 if rec["optimizer_reset"] else since_reset + 1
        if rec["optimizer_reset"]:
            resets.append(run.step - 1)
        # AdamW's step counter counts the steps since the last reset: the moments really were cleared
        p = next(iter(run.model.parameters()))
        assert int(run.optimizer.state[p]["step"]) == since_reset
    # stage = (s - 2) // 3 from s = 2, capped at 3: changes before steps 5, 8 and 11, none after
    assert resets == [5, 8, 11]


def test_nothing_removed_is_sft_step_for_step(tmp_path):
    from mathforge.train.loop import train

    sft_dir = train(_recipe(tmp_path, objective="sft"))
    si_dir = train(_recipe(tmp_path, pretrain_steps=100, smoothing_lambda=1.0))  # never starts removing
    rows = {name: [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("sft", "icot_si")}
    assert [r["loss"] for r in rows["icot_si"]] == pytest.approx([r["loss"] for r in rows["sft"]], rel=1e-6)
    assert [r["target_tokens"] for r in rows["icot_si"]] == [r["target_tokens"] for r in rows["sft"]]
    from safetensors.torch import load_file

    a, b = load_file(str(sft_dir / "model.safetensors")), load_file(str(si_dir / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=2e-5)  # float order only; a wrong step moves ~lr
    # control: removing from step 0 on does change the run
    other = train(_recipe(tmp_path / "x", remove_every_steps=2, smoothing_lambda=1.0))
    c = load_file(str(other / "model.safetensors"))
    assert any(not torch.allclose(a[k], c[k], atol=1e-4) for k in a)


def test_named_terms_equal_the_single_term_path(tok):
    """One `ce` term normalised by its own count gives the legacy token-mean gradients."""
    from accelerate import Accelerator

    from mathforge.models.presets import build_model
    from mathforge.train.loop import accumulate_gradients
    from mathforge.train.objectives import sft

    _, rendered = _mixed(tok)
    model = build_model(TINY_TRAIN_OVERRIDES, tok, seed=0)
    acc = Accelerator(cpu=True)
    micro = [collate_padded(rendered[:1], tok.pad_token_id), collate_padded(rendered[1:], tok.pad_token_id)]
    cfg = _recipe_cfg_stub()
    state = icot_si.SIState(1, 40, cfg.icot_si)

    def ctx(_k):
        return StepContext(cfg=cfg, state=state)

    loss_a, n_a, _ = accumulate_gradients(model, micro, sft.loss, ctx, acc)
    g_a = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    loss_b, n_b, metrics = accumulate_gradients(model, micro, icot_si.loss, ctx, acc, icot_si.counts)
    assert loss_b == pytest.approx(loss_a, rel=1e-6) and n_a == n_b and metrics["loss_ce"] == pytest.approx(loss_a)
    for ga, p in zip(g_a, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, ga, rtol=1e-5, atol=1e-7)


def _recipe_cfg_stub():
    from mathforge.train.config import RunConfig

    return RunConfig(objective="icot_si")


def test_running_sum_targets_match_the_arithmetic(tok):
    exs = [make_example(4793, 2618, 4, cot=False), make_example(1009, 9999, 4)]
    tok4 = build_tokenizer([e.prompt + e.response for e in exs], kind="char_spaced")
    rendered = [render(e, tok4) for e in exs]
    table = running_sum.digit_table(tok4)
    for batch in (collate_padded(rendered, tok4.pad_token_id), collate_packed([rendered], 256, tok4.pad_token_id)):
        tgt, mask = running_sum.targets(batch, table, 4)
        assert int(mask.sum()) == 16  # 8 answer digits per example
        rows = tgt[mask].view(2, 8, 7)
        for ex, feats in zip(exs, rows, strict=True):
            a, b = ex.meta["a"], ex.meta["b"]
            # the slow obvious way: c_hat_k = (sum of products of weight <= k) // 10^k, before the mod
            for k in range(8):
                low = sum(((a // 10**i) % 10) * ((b // 10**j) % 10) * 10 ** (i + j)
                          for i in range(4) for j in range(4) if i + j <= k)
                assert round(float(feats[k, 0]) * 100) == low // 10**k
                assert round(float(feats[k, 0]) * 100) % 10 == (a * b // 10**k) % 10
    # the probed position is the one that predicts each answer digit
    batch = collate_padded(rendered[:1], tok4.pad_token_id)
    _, mask = running_sum.targets(batch, table, 4)
    nxt = batch["input_ids"][0, 1:][mask[0, :-1]]
    assert tok4.decode(nxt.tolist()).replace(" ", "") == str(4793 * 2618)[::-1]


def test_si_rejects_a_response_without_answer_mark(tmp_path):
    from mathforge.train.loop import _Run

    bad = tmp_path / "train.jsonl"
    bad.write_text("\n".join(json.dumps({"question": f"q{i}", "response": f"just {i}"}) for i in range(8)))
    cfg = _recipe(tmp_path)
    cfg.data.task, cfg.data.train_file, cfg.data.tokenizer = "file", str(bad), "char"
    with pytest.raises(ValueError, match=r"train.jsonl:1: icot_si needs responses 'cot #### answer'"):
        _Run(cfg)


@pytest.mark.parametrize("line, error", [
    ("1 2 * 3 4 3 6 #### 4 0 4", r"bad.txt:9: expected one '\|\|' separating input and target, found 0"),
    ("1 2 * 3 4||3 6 4 0 4", r"bad.txt:9: icot_si needs responses 'cot #### answer'"),
])
def test_si_names_the_bad_line_of_a_text_file(tmp_path, line, error):
    """A `||` line file with a line lacking `||` or `####` fails before training, naming file and line."""
    from mathforge.train.loop import _Run

    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 * 3 4||3 6 #### 4 0 4\n" * 8 + line + "\n")
    cfg = _recipe(tmp_path)
    cfg.data.task, cfg.data.train_file, cfg.data.n_train = "file", str(bad), 9
    with pytest.raises(ValueError, match=error):
        _Run(cfg)


def test_running_sum_term_gets_gradient_and_aux_probe(tmp_path):
    from mathforge.train.loop import _Run

    run = _Run(_recipe(tmp_path, remove_all_when_remove_beyond=0, running_sum_weight=1.0))
    before = run.aux["probe"].weight.detach().clone()
    rec = run.train_step()
    assert rec["loss"] == pytest.approx(rec["loss_ce"] + rec["loss_rsum"])
    assert not torch.equal(before, run.aux["probe"].weight)  # the probe is optimised
