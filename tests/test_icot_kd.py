"""ICoT-KD model pieces (docs/methods/icot.md §f.6-§f.7): teacher states at the documented positions, and a
substitution that hits exactly one position per layer per example with and without a KV cache."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.data.packing import collate_padded  # noqa: E402
from mathforge.data.render import render  # noqa: E402
from mathforge.data.tasks.multiplication import make_example  # noqa: E402
from mathforge.data.tokenizer import build_tokenizer  # noqa: E402
from mathforge.models.icot_kd import (  # noqa: E402
    Substitution,
    apply_mlps,
    layer_mlps,
    teacher_positions,
    teacher_states,
)
from mathforge.models.presets import build_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_positions_table():
    # s1 = 10, s2 = 40, 4 layers: delta = 10 -> 10, 20, 30, 40 (layer 0 at s1, the last at s2)
    assert teacher_positions(10, 40, 4) == [(0, 10), (1, 20), (2, 30), (3, 40)]
    assert teacher_positions(10, 40, 4, stride=12) == [(0, 10), (1, 22), (2, 34), (3, 40)]  # capped at s2
    assert teacher_positions(10, 40, 4, subset="first_column") == [(li, 10) for li in range(4)]
    assert teacher_positions(10, 40, 4, subset="last_column") == [(li, 40) for li in range(4)]  # fixed bug
    assert teacher_positions(10, 40, 4, subset="top_row") == [(3, 10), (3, 20), (3, 30), (3, 40)]
    assert teacher_positions(10, 40, 4, subset="bottom_row") == [(0, 10), (0, 20), (0, 30), (0, 40)]
    assert teacher_positions(5, 6, 3) == [(0, 5), (1, 6), (2, 6)]  # round(5.5) = 6 (round half to even)
    with pytest.raises(ValueError, match="unknown teacher subset"):
        teacher_positions(1, 2, 2, subset="middle")


@pytest.fixture(scope="module")
def setup():
    exs = [make_example(12, 34, 2), make_example(123, 456, 3)]  # unequal lengths and CoTs
    tok = build_tokenizer([e.prompt + e.response for e in exs], kind="char_spaced")
    rendered = [render(e, tok) for e in exs]
    model = build_model(dict(TINY_TRAIN_OVERRIDES, num_hidden_layers=3), tok, seed=0).eval()
    return tok, rendered, model


@pytest.mark.parametrize("subset", ["diagonal", "last_column", "top_row"])
def test_teacher_states_read_documented_positions(setup, subset):
    tok, rendered, model = setup
    batch = collate_padded(rendered, tok.pad_token_id)
    seps = [r.separators() for r in rendered]
    z = teacher_states(model, batch["input_ids"], batch["attention_mask"], seps, subset=subset)
    assert z.shape == (2, 3, model.config.hidden_size)
    for b, r in enumerate(rendered):  # the slow way: run each example alone, read by hand
        with torch.no_grad():
            hs = model(input_ids=torch.tensor([r.input_ids]), output_hidden_states=True).hidden_states
        s1, s2 = r.separators()
        for li, (layer, t) in enumerate(teacher_positions(s1, s2, 3, subset=subset)):
            x = hs[layer][0, t]
            want = (x - x.mean()) / (x.var(unbiased=False) + 1e-5).sqrt()
            torch.testing.assert_close(z[b, li], want, rtol=1e-4, atol=1e-4)
    assert seps[0] != seps[1]


@pytest.mark.parametrize("use_cache", [True, False])
def test_substitution_one_position_per_layer_per_example(setup, use_cache):
    tok, rendered, model = setup
    prompts = [r.input_ids[: r.prompt_len] for r in rendered]
    width = max(map(len, prompts))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])  # left padded
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
    s1 = torch.tensor([r.separators()[0] for r in rendered])  # positions without the padding
    vec = torch.randn(2, 3, model.config.hidden_size) * 5
    new = 4
    with Substitution(model, vec, s1) as sub, torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                             do_sample=False, use_cache=use_cache, pad_token_id=tok.pad_token_id)
    forwards = 1 if use_cache else new
    assert len(sub.hits) == forwards * 3 * 2
    for layer in range(3):
        for b in range(2):
            cols = [c for li, r, c in sub.hits if li == layer and r == b]
            assert cols == [width - len(prompts[b]) + int(s1[b])] * forwards  # the padded index of s1
    # substitution changes the continuation, and the cache path equals the no-cache path
    with Substitution(model, vec, s1), torch.no_grad():
        other = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                               do_sample=False, use_cache=not use_cache, pad_token_id=tok.pad_token_id)
    assert torch.equal(out, other)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits[:, -1]
        with Substitution(model, vec, s1):
            subst = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    assert not torch.allclose(plain, subst)


def test_gradients_reach_mlps_and_student(setup):
    tok, rendered, model = setup
    mlps = layer_mlps(model.config.hidden_size, 3)
    z = torch.randn(2, 3, model.config.hidden_size)
    batch = collate_padded(rendered, tok.pad_token_id)
    s1 = torch.tensor([r.separators()[0] for r in rendered])
    model.zero_grad()
    with Substitution(model, apply_mlps(mlps, z), s1):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mlps.parameters())
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0


def _kd_cfg(tmp_path, objective, **extra):
    from mathforge.train.config import config_from_dict

    table = {
        "out_dir": str(tmp_path / objective), "objective": objective, "seed": 4, "threads": 1, "progress": False,
        "log_every": 1, "checkpoint_every": 0,
        "data": {"task": "multiplication", "task_args": {"k": 2}, "n_train": 64, "n_eval": 0, "seq_len": 64,
                 "tokenizer": "char_spaced", "packing": False},
        "model": {"preset": "nano", "overrides": dict(TINY_TRAIN_OVERRIDES)},
        "optim": {"micro_batch_size": 2, "grad_accum": 2, "max_steps": 6, "lr": 3e-3},
        "eval": {"n_problems": 0},
        **extra,
    }
    return config_from_dict(table)


def test_student_stage_trains_student_and_mlps_not_teacher(tmp_path):
    from mathforge.models.icot_kd import decoder_layers
    from mathforge.train.loop import _Run, train

    teacher_dir = train(_kd_cfg(tmp_path, "sft"))
    run = _Run(_kd_cfg(tmp_path, "icot_kd_student", icot_kd={"teacher": str(teacher_dir)}))
    teacher, mlps = run.aux["teacher"], run.aux["mlps"]
    before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    mlp_before = [p.detach().clone() for p in mlps.parameters()]
    student_before = [p.detach().clone() for p in run.model.parameters()]
    hits = []
    for block in decoder_layers(run.model):  # count substitutions through the student's blocks
        block.register_forward_pre_hook(lambda m, a, k: hits.append(1), with_kwargs=True)
    run.train_step()
    assert all(torch.equal(before[n], p) for n, p in teacher.named_parameters())  # frozen
    assert all(not torch.equal(a, b) for a, b in zip(mlp_before, mlps.parameters(), strict=True))
    assert sum(not torch.equal(a, b) for a, b in zip(student_before, run.model.parameters(), strict=True)) > 0
    assert len(hits) == 2 * len(decoder_layers(run.model))  # 2 micro-batches, one forward each
    batch = run.micro_batches(0)[0][0]
    from mathforge.train.objectives.icot_kd_student import drop_cot, separators

    s1, s2 = separators(batch)
    nocot = drop_cot(batch, run.tok.pad_token_id)
    for b in range(2):
        assert run.tok.decode([int(batch["input_ids"][b, s1[b]])]) == "|"
        assert run.tok.decode([int(batch["input_ids"][b, s2[b]])]).strip() == "#"
        text = run.tok.decode(nocot["input_ids"][b][nocot["attention_mask"][b].bool()].tolist())
        assert "||" in text and "+" not in text and text.count("#") == 4


def test_student_refuses_a_mismatched_vocabulary(tmp_path):
    from mathforge.train.loop import _Run, train

    teacher_dir = train(_kd_cfg(tmp_path, "sft"))
    other = _kd_cfg(tmp_path / "o", "sft")
    other.data.tokenizer = "char"  # another vocabulary
    other_dir = train(other)
    cfg = _kd_cfg(tmp_path, "icot_kd_student", icot_kd={"teacher": str(teacher_dir)})
    cfg.model.init = str(other_dir)
    with pytest.raises(ValueError, match="differs from the teacher's"):
        _Run(cfg)


def _prompts(setup):
    tok, rendered, _ = setup
    prompts = [r.input_ids[: r.prompt_len] for r in rendered]
    width = max(map(len, prompts))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])  # [B, W] left padded
    mask = (ids != tok.pad_token_id).long()
    s1 = torch.tensor([len(p) - 1 for p in prompts])
    return ids, mask, s1, prompts


def test_emulator_batch_equals_one_at_a_time(setup):
    from mathforge.models.icot_kd import Emulator

    tok, _, model = setup
    lm = build_model(dict(TINY_TRAIN_OVERRIDES, num_hidden_layers=3), tok, seed=1).eval()
    emu = Emulator(lm.config.hidden_size, 3, n_mix=3)
    ids, mask, s1, prompts = _prompts(setup)
    z = emu(lm, ids, mask, s1)
    assert z.shape == (2, 3, model.config.hidden_size)
    for b, p in enumerate(prompts):  # per-example indexing (the original crashed for batch > 1)
        alone = emu(lm, torch.tensor([p]), torch.ones(1, len(p), dtype=torch.long), s1[b : b + 1])
        torch.testing.assert_close(z[b], alone[0], rtol=1e-4, atol=1e-5)


def test_coupled_stage_sends_gradients_into_both_modules(setup):
    from mathforge.models.icot_kd import Emulator, emulator_loss, implicit_generate

    tok, rendered, student = setup
    lm = build_model(dict(TINY_TRAIN_OVERRIDES, num_hidden_layers=3), tok, seed=1)
    emu = Emulator(lm.config.hidden_size, 3)
    mlps = layer_mlps(student.config.hidden_size, 3)
    ids, mask, s1, _ = _prompts(setup)
    student.zero_grad()
    z_hat = emu(lm, ids, mask, s1)
    with Substitution(student, apply_mlps(mlps, z_hat), s1):
        logits = student(input_ids=ids, attention_mask=mask,
                         position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits  # [B, W, V]
    torch.nn.functional.cross_entropy(logits[:, -1], torch.tensor([5, 6])).backward()
    for name, module in (("emulator LM", lm), ("LSTM", emu.lstm), ("emulator MLPs", emu.mlps),
                         ("student", student), ("student MLPs", mlps)):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    assert float(emulator_loss(z_hat.detach(), z_hat.detach())) == 0.0
    out = implicit_generate(emu, lm.eval(), student, mlps, ids, mask, s1, max_new_tokens=3, min_new_tokens=3,
                            pad_token_id=tok.pad_token_id)
    assert out.shape == (2, ids.shape[1] + 3)


@pytest.fixture(scope="module")
def kd_stages(tmp_path_factory):
    """Teacher -> student -> emulator -> coupled, each trained 6 steps on the loop into its own folder;
    returns (the coupled stage's config, its finished `model/` folder)."""
    from mathforge.train.loop import train

    tmp = tmp_path_factory.mktemp("kd")
    teacher = train(_kd_cfg(tmp, "sft"))
    kd = {"teacher": str(teacher)}
    student = train(_kd_cfg(tmp, "icot_kd_student", icot_kd=kd))
    emulator = train(_kd_cfg(tmp, "icot_kd_emulator", icot_kd={**kd, "n_mix": 2}))

    def coupled(out):
        cfg = _kd_cfg(out, "icot_kd_coupled", icot_kd={**kd, "student": str(student), "emulator": str(emulator)})
        cfg.model.init = str(student)
        return cfg

    return coupled(tmp / "fresh"), train(coupled(tmp))


def test_three_stages_on_the_loop_and_the_loader(kd_stages):
    """The coupled step moves both the student and the emulator; `load_implicit` reassembles a model
    that answers with no CoT tokens."""
    from mathforge.models.icot_kd import implicit_generate
    from mathforge.train.loop import _Run
    from mathforge.train.objectives.icot_kd_coupled import load_implicit

    coupled_cfg, done = kd_stages
    run = _Run(coupled_cfg)
    lm_before = [p.detach().clone() for p in run.aux["emulator_lm"].parameters()]
    head_before = [p.detach().clone() for p in run.aux["emulator"].parameters()]
    st_before = [p.detach().clone() for p in run.model.parameters()]
    run.train_step()
    for name, before, module in (("emulator LM", lm_before, run.aux["emulator_lm"]),
                                 ("emulator head", head_before, run.aux["emulator"]),
                                 ("student", st_before, run.model)):
        assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)), name
    parts = load_implicit(done)
    tok = parts["tokenizer"]
    r = render(make_example(23, 45, 2), tok)
    ids = torch.tensor([r.input_ids[: r.prompt_len]])
    out = implicit_generate(parts["emulator"], parts["emulator_lm"], parts["student"], parts["mlps"], ids,
                            torch.ones_like(ids), torch.tensor([r.prompt_len - 1]), max_new_tokens=20,
                            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    assert out.shape[1] > ids.shape[1]


def test_mathforge_eval_runs_a_kd_result(kd_stages, tmp_path):
    """`load_engine` turns a coupled stage's folder into the ICoT-KD engine, whose batched answers equal
    `implicit_generate` run one prompt at a time (the slow obvious path), and `mathforge eval` grades
    them like any other model's."""
    import json

    from mathforge.cli import main
    from mathforge.data import load_benchmark
    from mathforge.data.prompts import build_prompt, get_style
    from mathforge.infer import ICoTKDEngine, SamplingParams, load_engine
    from mathforge.models.icot_kd import implicit_generate

    _, done = kd_stages
    engine = load_engine(done, batch_size=3)
    assert isinstance(engine, ICoTKDEngine)
    problems = load_benchmark("multiplication-4x4", "test", limit=5)
    prompts = [build_prompt(p.question, get_style("line"), benchmark="multiplication-4x4") for p in problems]
    got = engine.generate(prompts, params=SamplingParams(max_new_tokens=12))
    p, tok = engine.parts, engine.tokenizer
    for prompt, (completion,) in zip(prompts, got, strict=True):
        ids = torch.tensor([tok(prompt)["input_ids"]])
        assert tok.decode(ids[0, -1:]) == "|"  # s1 = the prompt's last token, the end of `||`
        seq = implicit_generate(p["emulator"], p["emulator_lm"], p["student"], p["mlps"], ids, torch.ones_like(ids),
                                torch.tensor([ids.shape[1] - 1]), max_new_tokens=12, pad_token_id=tok.pad_token_id,
                                eos_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
        if tok.eos_token_id in seq:
            seq = seq[: seq.index(tok.eos_token_id) + 1]
        assert completion.token_ids == seq
    with pytest.raises(ValueError, match="greedy with one sample"):
        engine.generate(prompts[:1], n=2)
    with pytest.raises(ValueError, match="does not end with the question separator"):
        engine.generate(["1 2 * 3 4"])
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(done), "--benchmark", "multiplication-4x4", "--style", "line", "--limit", "4",
                 "--max-new-tokens", "12", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["benchmarks"]["multiplication-4x4"]["n_problems"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"] == "ICoTKDEngine"
