"""`mathforge eval` as a user runs it, on a tiny random Llama saved to a folder (issue 10): samples
that do not depend on batching, run folders that never collide, chat templates, the user's own
data and few-shot sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_lm import save_tiny  # noqa: E402


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _cli(*argv: str) -> int:
    from mathforge.cli import main

    return main(list(argv))


def _generations(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "outputs.jsonl").read_text().splitlines()]
    return {(r["dataset"], r["idx"], r["sample_id"]): r["generation"] for r in rows}


def test_sampled_outputs_do_not_depend_on_the_batch_size(tiny_folder, tmp_path):
    """Issue 10 item 2: the same command with --batch-size 1 and 16 samples the same texts (each
    sample draws from its own stream keyed by seed, prompt and sample index)."""
    common = ["eval", "--model", str(tiny_folder), "--benchmark", "gsm8k,svamp", "--limit", "5", "--n", "3",
              "--temperature", "1.0", "--max-new-tokens", "12", "--workers", "1", "--quiet"]
    assert _cli(*common, "--batch-size", "1", "--out", str(tmp_path / "b1")) == 0
    assert _cli(*common, "--batch-size", "16", "--out", str(tmp_path / "b16")) == 0
    one, sixteen = _generations(tmp_path / "b1"), _generations(tmp_path / "b16")
    assert len(one) == 2 * 5 * 3 and one == sixteen
    # sampling is on: the three samples of a problem are not all the same text
    assert any(len({one[("gsm8k", str(i), j)] for j in range(3)}) > 1 for i in range(5))
