"""The OpenAI-compatible server over a tiny saved model, driven by OpenAIEngine and raw HTTP."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from tiny_lm import save_tiny  # noqa: E402

from mathforge.infer.hf_engine import HFEngine  # noqa: E402
from mathforge.infer.loading import load_engine  # noqa: E402
from mathforge.infer.openai_engine import OpenAIEngine  # noqa: E402
from mathforge.infer.types import SamplingParams  # noqa: E402
from mathforge.serve import running  # noqa: E402

PROMPTS = ["Question: What is 12 + 30?", "The sum", "Tom has 3 apples"]
GREEDY = SamplingParams(max_new_tokens=12)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    torch.set_num_threads(1)
    folder = save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama", chat=True)
    engine = load_engine(folder, batch_size=4)
    assert isinstance(engine, HFEngine)
    with running(engine, "tiny") as url:
        yield engine, url


def test_greedy_over_http_equals_direct(served):
    engine, url = served
    direct = engine.generate(PROMPTS, params=GREEDY, stop=["e 3"])
    with OpenAIEngine(url, "tiny", concurrency=2) as client:
        remote = client.generate(PROMPTS, params=GREEDY, stop=["e 3"])
    for d, r in zip(direct, remote, strict=True):
        assert r[0].text == d[0].text
        assert r[0].finish_reason == d[0].finish_reason
        assert r[0].n_tokens == d[0].n_tokens
        assert r[0].logprob == pytest.approx(d[0].logprob, abs=1e-5)


def test_sampled_over_http_equals_direct_with_the_same_seed(served):
    engine, url = served
    params = SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=11)
    direct = engine.generate(PROMPTS[:1], n=3, params=params)
    with OpenAIEngine(url, "tiny") as client:
        remote = client.generate(PROMPTS[:1], n=3, params=params)
    assert [c.text for c in remote[0]] == [c.text for c in direct[0]]


def test_chat_over_http_equals_direct_chat(served):
    engine, url = served
    direct = HFEngine(engine.model, engine.tokenizer, chat=True).generate(["Hi there"], params=GREEDY)
    with OpenAIEngine(url, "tiny", chat=True) as client:
        remote = client.generate(["Hi there"], params=GREEDY)
    assert remote[0][0].text == direct[0][0].text
    assert remote[0][0].logprob == pytest.approx(direct[0][0].logprob, abs=1e-5)


def test_chat_works_for_a_model_without_a_template(tmp_path):
    """Issue 10 item 4: a model trained by mathforge has no chat template; /v1/chat/completions sends
    one user message as exactly the prompt /v1/completions would (the plain default template)."""
    folder = save_tiny(tmp_path / "trained", chat=False)
    engine = load_engine(folder, batch_size=4)
    assert not engine.tokenizer.chat_template
    prompt = "Question: What is 12 + 30? Answer:"
    with running(engine, "trained") as url:
        chat = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": prompt}],
                                                           "max_tokens": 8, "temperature": 0}).json()
        plain = httpx.post(url + "/completions", json={"prompt": prompt, "max_tokens": 8, "temperature": 0}).json()
    assert "error" not in chat, chat
    assert chat["choices"][0]["message"]["content"] == plain["choices"][0]["text"]
    assert chat["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]


def test_models_and_response_shape(served):
    _, url = served
    assert httpx.get(url + "/models").json()["data"][0]["id"] == "tiny"
    body = httpx.post(url + "/completions", json={"prompt": ["a", "b"], "n": 2, "max_tokens": 3,
                                                  "temperature": 0, "logprobs": 0}).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    lp = body["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["text_offset"])
    assert body["usage"]["completion_tokens"] == sum(len(c["logprobs"]["tokens"]) for c in body["choices"])
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")


@pytest.mark.parametrize("payload, status, message", [
    ({"prompt": "a", "model": "other"}, 404, "not found"),
    ({"prompt": "a", "stream": True}, 400, "stream"),
    ({"prompt": "7 * 6 = 42 " * 200, "max_tokens": 2}, 400, "context"),
    ({"prompt": "a", "temperature": -1}, 422, "temperature"),
    ({"prompt": "a", "n": 0}, 422, "n"),
])
def test_bad_requests_get_clear_errors(served, payload, status, message):
    _, url = served
    resp = httpx.post(url + "/completions", json=payload)
    assert resp.status_code == status
    assert message in resp.json()["error"]["message"]  # the OpenAI error shape, for validation errors too


def test_cli_defaults_to_loopback():
    import argparse

    from mathforge.cli import COMMANDS, serve

    assert COMMANDS["serve"] == "serve"
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "some/model"])
    assert (args.command, args.model, args.host, args.port) == ("serve", "some/model", "127.0.0.1", 8000)
