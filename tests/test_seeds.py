"""Seed-averaged comparisons (`mathforge seeds`): the paired statistics against a hand computation,
the t quantiles, and a tiny two-arm run end to end through the CLI."""

from __future__ import annotations

import json

import pytest

from mathforge.seeds import paired, summarize, t975


def test_paired_comparison_matches_a_hand_computation():
    p = paired([0.30, 0.25, 0.40], [0.35, 0.20, 0.50])
    # differences 0.05, -0.05, 0.10: mean 1/30; squared deviations 1/3600 + 25/3600 + 16/3600 = 42/3600
    assert p["differences"] == pytest.approx([0.05, -0.05, 0.10])
    assert p["mean_diff"] == pytest.approx(1 / 30)
    sd = (42 / 3600 / 2) ** 0.5  # 0.0763763
    assert p["std_diff"] == pytest.approx(sd)
    half = 4.303 * sd / 3**0.5  # t_{0.975, 2} = 4.303
    assert p["ci95_t"] == pytest.approx([1 / 30 - half, 1 / 30 + half])
    # sign flips of (.05, -.05, .10): sums .2 0 .1 -.1 .1 -.1 0 -.2; |sum| >= |.1| in 6 of 8
    assert p["sign_flip_p"] == pytest.approx(6 / 8)
    assert p["variant_wins"] == 2 and p["ties"] == 0
    one = paired([0.5], [0.6])
    assert one["ci95_t"] is None and one["sign_flip_p"] == 1.0
    with pytest.raises(ValueError, match="same non-zero number"):
        paired([0.1, 0.2], [0.3])


def test_t_quantiles_and_summary():
    assert t975(1) == 12.706 and t975(30) == 2.042
    for df, exact in ((40, 2.0211), (60, 2.0003), (120, 1.9799)):
        assert t975(df) == pytest.approx(exact, abs=0.002)
    s = summarize([0.2, 0.4, 0.3])
    assert s["mean"] == pytest.approx(0.3) and s["std"] == pytest.approx(0.1) and s["n_seeds"] == 3
    with pytest.raises(ValueError):
        t975(0)


def test_seeds_command_runs_both_arms_on_the_same_seeds(tmp_path, capsys):
    pytest.importorskip("torch")
    from tiny_lm import TINY_TRAIN_OVERRIDES

    from mathforge.cli import main

    rows = [("7+5=", "7 + 5 = 12 #### 12"), ("3*4=", "3 * 4 = 12 #### 12"), ("9-2=", "9 - 2 = 7 #### 7")]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": q, "response": r}) + "\n" for q, r in rows))
    held = tmp_path / "e.jsonl"
    held.write_text("".join(json.dumps({"question": q, "response": r}) + "\n"
                            for q, r in [("2+2=", "2 + 2 = 4 #### 4"), ("8-3=", "8 - 3 = 5 #### 5")]))
    tiny = ", ".join(f"{k} = {json.dumps(v)}" for k, v in TINY_TRAIN_OVERRIDES.items())
    recipe = tmp_path / "r.toml"
    recipe.write_text(f"""out_dir = "unused"
objective = "sft"
threads = 1
progress = false
checkpoint_every = 100
[data]
task = "file"
train_file = "{data}"
eval_file = "{held}"
seq_len = 64
prompt_template = "{{question}}"
[model]
preset = "nano"
overrides = {{ {tiny} }}
[optim]
micro_batch_size = 1
max_steps = 6
lr = 1e-2
[eval]
n_problems = 2
max_new_tokens = 12
""")
    out = tmp_path / "cmp"
    assert main(["seeds", str(recipe), "--seeds", "0,1", "--compare", "objective=mft", "--out", str(out)]) == 0
    res = json.loads((out / "seeds.json").read_text())
    assert set(res["runs"]) == {"base", "variant"} and set(res["runs"]["base"]) == {"0", "1"}
    for arm in ("base", "variant"):
        for s in (0, 1):
            cfg = json.loads((out / arm / f"seed-{s}" / "config.json").read_text())
            assert cfg["seed"] == s and cfg["objective"] == ("mft" if arm == "variant" else "sft")
    accs = {arm: [res["runs"][arm][s]["accuracy"] for s in ("0", "1")] for arm in ("base", "variant")}
    assert res["paired"]["differences"] == pytest.approx([v - b for b, v in zip(accs["base"], accs["variant"], strict=True)])
    assert "Paired (variant − base)" in (out / "seeds.md").read_text()
    assert main(["seeds", str(recipe), "--seeds", "1,1", "--out", str(out)]) == 2
    assert "distinct seeds" in capsys.readouterr().err


def _fake_run(folder, accuracy, samples):
    """A finished training run folder as the seeds summary reads it: the final evaluation row and the
    per-problem records (`samples`: (level, correct) pairs)."""
    folder.mkdir(parents=True)
    n = len(samples)
    row = {"step": 10, "eval_accuracy": accuracy, "eval_ci95_wilson": [0.0, 1.0], "eval_n_problems": n,
           "eval_loss": 1.0}
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 10, "loss": 1.0}) + "\n" + json.dumps(row) + "\n")
    (folder / "eval_samples.jsonl").write_text("".join(
        json.dumps({"prompt": f"p{i}", "correct": ok, "difficulty": float(lvl)}) + "\n"
        for i, (lvl, ok) in enumerate(samples)))


def test_several_arms_are_each_compared_with_the_base_and_broken_down_by_level(tmp_path):
    from mathforge.report_plots import plot_level_arms, text_overlaps
    from mathforge.seeds import summarize_runs

    # levels 1 and 3, two problems each; per seed: (accuracy, samples)
    runs = {"sft": {0: (0.5, [(1, True), (1, True), (3, False), (3, False)]),
                    1: (0.25, [(1, True), (1, False), (3, False), (3, False)])},
            "upsample": {0: (0.75, [(1, True), (1, True), (3, True), (3, False)]),
                         1: (0.5, [(1, True), (1, False), (3, True), (3, False)])},
            "weight": {0: (0.25, [(1, True), (1, False), (3, False), (3, False)]),
                       1: (0.5, [(1, True), (1, True), (3, False), (3, False)])}}
    dirs = {}
    for arm, by_seed in runs.items():
        for s, (acc, samples) in by_seed.items():
            _fake_run(tmp_path / arm / f"seed-{s}", acc, samples)
            dirs.setdefault(arm, {})[s] = tmp_path / arm / f"seed-{s}"
    res = summarize_runs("r.toml", [0, 1], tmp_path, dirs, overrides={}, compare={},
                         arm_overrides={"upsample": {"objective": "difficulty"}, "weight": {"objective": "difficulty"}})
    assert set(res["comparisons"]) == {"upsample", "weight"} and "paired" not in res
    assert res["comparisons"]["upsample"]["differences"] == pytest.approx([0.25, 0.25])
    assert res["comparisons"]["weight"]["differences"] == pytest.approx([-0.25, 0.25])
    lv = res["by_level"]
    assert lv["sft"]["1"] == {"n": 2, "mean": 0.75, "min": 0.5, "max": 1.0, "values": [1.0, 0.5]}
    assert lv["upsample"]["3"]["mean"] == 0.5 and lv["weight"]["3"]["max"] == 0.0
    md = (tmp_path / "seeds.md").read_text()
    assert "Paired (upsample − sft)" in md and "Paired (weight − sft)" in md
    # level 3: sft 0 and 0, upsample 50 and 50 -> +50 points in both seeds (no spread: a zero-width interval)
    assert res["by_level_paired"]["upsample"]["3"]["differences"] == pytest.approx([0.5, 0.5])
    assert res["by_level_paired"]["weight"]["1"]["differences"] == pytest.approx([-0.5, 0.5])
    assert "| 1 | 2 | 75.0 (50.0–100.0) | 75.0 (50.0–100.0) | 75.0 (50.0–100.0) | 0.0 [" in md
    assert "| 3 | 2 | 0.0 (0.0–0.0) | 50.0 (50.0–50.0) | 0.0 (0.0–0.0) | 50.0 [50.0, 50.0] | 0.0 [0.0, 0.0] |" in md
    assert (tmp_path / "accuracy_by_level.png").stat().st_size > 0
    fig = plot_level_arms(lv)
    assert text_overlaps(fig) == []
    # the error bars are the seeds' range around the mean: sft at level 1 spans 50..100
    from matplotlib.container import ErrorbarContainer

    first = next(c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer))
    (segments,) = [lc.get_segments() for lc in first.lines[2]]
    assert [(seg[0][1], seg[1][1]) for seg in segments] == [(50.0, 100.0), (0.0, 0.0)]


def test_arm_names_and_the_cli_arm_syntax_are_checked(tmp_path, capsys):
    from mathforge.cli import main
    from mathforge.seeds import run_seeds

    recipe = tmp_path / "r.toml"
    recipe.write_text('objective = "sft"\n')
    with pytest.raises(ValueError, match="base arm"):
        run_seeds(recipe, [0], tmp_path / "o", arms={"base": {"objective": "mft"}})
    with pytest.raises(ValueError, match="names a folder"):
        run_seeds(recipe, [0], tmp_path / "o", arms={"a/b": {"objective": "mft"}})
    assert main(["seeds", str(recipe), "--arm", "objective=mft", "--out", str(tmp_path / "o")]) == 2
    assert "NAME:KEY=VALUE" in capsys.readouterr().err


def test_the_cli_gathers_each_arms_overrides(tmp_path, monkeypatch):
    import mathforge.seeds
    from mathforge.cli import main

    seen = {}

    def fake_run_seeds(recipe, seeds, out, **kw):
        seen.update(kw, seeds=seeds)
        out.mkdir(parents=True)
        (out / "seeds.md").write_text("ok\n")
        return {"ok": True}

    monkeypatch.setattr(mathforge.seeds, "run_seeds", fake_run_seeds)
    assert main(["seeds", "r.toml", "--seeds", "0,1,2", "--base-name", "sft", "--arm", "upsample:objective=difficulty",
                 "--arm", "weight:objective=difficulty", "--arm", "weight:difficulty.mode=weight",
                 "--set", "optim.max_steps=5", "--out", str(tmp_path / "o")]) == 0
    assert seen["arms"] == {"upsample": {"objective": "difficulty"},
                            "weight": {"objective": "difficulty", "difficulty.mode": "weight"}}
    assert seen["base_name"] == "sft" and seen["overrides"] == {"optim.max_steps": 5} and seen["seeds"] == [0, 1, 2]
