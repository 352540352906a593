"""S3 (teacher data through the local OpenAI-compatible server, synthesis-model fine-tuning on the
training loop) and S9 (two-stage PT -> SFT recipes with packing), end to end on tiny models."""

from __future__ import annotations

import json
import tomllib

import pytest

from mathforge.synth.io import load_records, write_jsonl
from mathforge.synth.training import s9_recipes, stage_files, to_io_record, toml_dumps
from mathforge.train.config import config_from_dict


def _tiny(table: dict, seq_len: int = 512) -> dict:
    """Shrink a recipe table to seconds: few steps, small rows."""
    table["data"] |= {"seq_len": seq_len}
    table["optim"] |= {"max_steps": 2, "micro_batch_size": 2, "grad_accum": 1, "lr": 1e-3}
    table |= {"log_every": 1, "checkpoint_every": 0, "progress": False, "threads": 1}
    return table


@pytest.mark.slow
def test_teacher_over_http_then_synthesizer_on_the_loop_then_generation(tmp_path):
    import torch

    from mathforge.infer.loading import load_engine
    from mathforge.serve import running
    from mathforge.synth.generate import GenerateConfig, merge_generations, run_generation
    from mathforge.synth.prompts import build_prompts
    from mathforge.synth.stages import kd_stage
    from mathforge.synth.training import TEACHER_STOPS
    from mathforge.train.loop import train
    from tests.tiny_lm import save_tiny

    torch.set_num_threads(1)
    folder = save_tiny(tmp_path / "teacher")
    snippets = [{"id": f"web-{i}", "text": f"The sum of {i} and {i + 1} is {2 * i + 1}.", "levels": ["grade"]}
                for i in range(6)]
    prompts = build_prompts(snippets)
    with running(load_engine(folder, batch_size=4), "teacher") as url:
        cfg = GenerateConfig(engine=f"openai:{url}#teacher", out_dir=str(tmp_path / "kdgen"), chunk_size=4,
                             max_new_tokens=24, stop=[*TEACHER_STOPS, "e"])
        counts = run_generation(prompts, cfg)
    assert counts["records_written"] == 6
    merge_generations([tmp_path / "kdgen"], tmp_path / "kdgen.jsonl")
    kd_counts = kd_stage(tmp_path / "kdgen.jsonl", tmp_path / "kd", init=str(folder), seq_len=256)
    assert kd_counts["generations"] == 6 and kd_counts["kept"] >= 1
    kd = load_records(tmp_path / "kd" / "kd.jsonl")
    assert kd[0]["question"].endswith("## New Problem\n")  # the raw prompt, no chat wrapper (docs/methods/synthesis.md §d.5)
    recipe = tomllib.loads((tmp_path / "kd" / "synthesizer.toml").read_text())
    assert recipe["optim"]["lr"] == 1e-5 and recipe["optim"]["weight_decay"] == 0.1 and recipe["optim"]["epochs"] == 5
    assert recipe["optim"]["warmup_ratio"] == 0.0 and recipe["model"]["init"] == str(folder)
    model = train(config_from_dict(_tiny(recipe), source="synthesizer.toml"))
    assert (model / "config.json").exists()
    cfg = GenerateConfig(engine=str(model), out_dir=str(tmp_path / "bulk"), chunk_size=3, max_new_tokens=8)
    assert run_generation(prompts, cfg)["records_written"] == 6


def test_stage_files_and_split_wsd_schedule(tmp_path):
    pt = [{"input": f"## Question\nq{i}\n\n## Solution\n", "output": "x" * 50} for i in range(17)]
    sft = [to_io_record({"question": f"Q{i}", "answer": "A"}, "f:1") for i in range(3)]
    counts = stage_files(pt, sft, tmp_path, seed=3)
    s1, s2 = load_records(tmp_path / "stage1_pt.jsonl"), load_records(tmp_path / "stage2_sft.jsonl")
    assert sorted(r["input"] for r in s1) == sorted(r["input"] for r in pt) and s1 != pt  # shuffled in stage
    assert load_records(tmp_path / "pt_then_sft.jsonl") == s1 + s2  # PT first, then SFT
    assert s2[0]["input"].startswith("## Question\nQ") and counts["pt"] == 17
    one, two = s9_recipes(str(tmp_path), counts)
    f1 = counts["pt_chars"] / (counts["pt_chars"] + counts["sft_chars"])
    assert one["optim"]["warmup_ratio"] == pytest.approx(0.03 / f1) and one["optim"]["schedule"] == "wsd"
    assert two["optim"]["decay_ratio"] == pytest.approx(min(1.0, 0.15 / (1 - f1)))
    assert two["model"]["init"] == f"{tmp_path}/stage1_pt/model" and one["data"]["seq_len"] == 2049
    assert one["data"]["packing"] is True and one["optim"]["lr"] == 1e-5
    assert tomllib.loads(toml_dumps(two)) == two
    with pytest.raises(ValueError, match="f:1: needs string fields"):
        to_io_record({"question": "q"}, "f:1")


@pytest.mark.slow
def test_s9_two_stage_training_runs_on_the_loop_with_packing(tmp_path):
    import torch

    from mathforge.synth.stages import train_data_stage
    from mathforge.train.loop import train
    from tests.tiny_lm import TINY_TRAIN_OVERRIDES

    torch.set_num_threads(1)
    write_jsonl(tmp_path / "kept.jsonl", [{"input": f"## Question\nWhat is {i}+1?\n\n## Solution\n",
                                           "output": f"{i}+1={i + 1}. \\boxed{{{i + 1}}}"} for i in range(40)])
    write_jsonl(tmp_path / "sft.jsonl", [{"question": f"Add {i} and 2.", "answer": f"{i + 2}"} for i in range(20)])
    counts = train_data_stage([tmp_path / "kept.jsonl"], tmp_path / "sft.jsonl", tmp_path / "s9", preset="nano")
    assert counts["recipes"] == 2 and json.loads((tmp_path / "s9" / "manifest.json").read_text())["counts"]["sft"] == 20
    for k in (1, 2):
        table = tomllib.loads((tmp_path / "s9" / f"s9-stage{k}.toml").read_text())
        if k == 1:
            table["model"]["overrides"] = TINY_TRAIN_OVERRIDES
        model = train(config_from_dict(_tiny(table, seq_len=64), source=f"s9-stage{k}.toml"))
    assert model == tmp_path / "s9" / "stage2_sft" / "model" and (model / "config.json").exists()
