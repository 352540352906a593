"""S3c boosting (docs/methods/synthesis.md §d.5): projected LoRA-gradient features and prompt values."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from mathforge.synth.boost import BLOCK, BoostConfig, project, projection_block, select_prompts  # noqa: E402


def test_blockwise_projection_equals_the_whole_matrix_and_keeps_cosines():
    torch.manual_seed(0)
    grads = torch.randn(6, 2 * BLOCK + 300)
    whole = torch.cat([projection_block(b, 512, 7, min(BLOCK, grads.shape[1] - b * BLOCK)) for b in range(3)])
    assert torch.allclose(project(grads, 512, 7), grads @ whole, atol=1e-4)
    big = project(grads, 8192, 1)
    exact = torch.nn.functional.normalize(grads, dim=1) @ torch.nn.functional.normalize(grads, dim=1).T
    approx = torch.nn.functional.normalize(big, dim=1) @ torch.nn.functional.normalize(big, dim=1).T
    assert (approx - exact).abs().max() < 0.06  # Johnson-Lindenstrauss at 8,192 dimensions
    assert not torch.allclose(project(grads, 512, 7), project(grads, 512, 8))


def test_a_candidate_like_the_targets_ranks_first():
    from tests.tiny_lm import tiny_model, tiny_tokenizer

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    target = {"input": "## Question\nCompute 7 * 6.\n\n## Solution\n", "output": "7 * 6 = 42, the answer is 42."}
    cands = [{"id": "far", "prompt": "The sum of the first ten", "generated_text": "integers is 55. step by step"},
             {"id": "same", "prompt": target["input"], "generated_text": target["output"]},
             {"id": "other", "prompt": "Tom has 3 apples", "generated_text": "and buys 5 more. 3 + 5 = 8."}]
    top = select_prompts(cands, [target], model, tok, BoostConfig(dim=256, top_k=2))
    assert [c["id"] for c in top][0] == "same" and top[0]["value"] == pytest.approx(1.0, abs=1e-4)
    assert len(top) == 2 and top[0]["value"] > top[1]["value"]
    with pytest.raises(ValueError, match="candidate #0"):
        select_prompts([{"prompt": "x"}], [target], model, tok)


def test_boost_stage_writes_the_selection_and_manifest(tmp_path):
    from mathforge.synth.io import load_records, write_jsonl
    from mathforge.synth.stages import boost_stage
    from tests.tiny_lm import save_tiny

    folder = save_tiny(tmp_path / "tiny")
    write_jsonl(tmp_path / "cands.jsonl", [{"id": str(i), "prompt": f"Question: What is {i} + 1?",
                                            "generated_text": f"Answer: {i + 1}."} for i in range(5)])
    write_jsonl(tmp_path / "targets.jsonl", [{"question": "What is 12 + 30?", "answer": "42"}])
    counts = boost_stage(tmp_path / "cands.jsonl", str(folder), tmp_path / "b", BoostConfig(dim=64, top_k=3),
                         targets_file=tmp_path / "targets.jsonl")
    assert counts == {"candidates": 5, "targets": 1, "selected": 3}
    values = [r["value"] for r in load_records(tmp_path / "b" / "selected.jsonl")]
    assert values == sorted(values, reverse=True) and (tmp_path / "b" / "manifest.json").exists()
