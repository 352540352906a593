"""OpenAIEngine against small scripted HTTP servers: retries, back-off, concurrency, response parsing."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("httpx")

from mathforge.infer.loading import load_engine  # noqa: E402
from mathforge.infer.openai_engine import OpenAIEngine  # noqa: E402
from mathforge.infer.types import SamplingParams  # noqa: E402


def completion_body(req: dict) -> dict:
    """Echo the prompt back once per requested sample, with two fake token log-probs."""
    choices = [{"index": i, "text": f"{req['prompt']}|{i} STOP tail", "finish_reason": "length",
                "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-0.5, -0.25]}} for i in range(req["n"])]
    return {"object": "text_completion", "choices": choices}


def chat_body(req: dict) -> dict:
    content = req["messages"][0]["content"]
    return {"object": "chat.completion", "choices": [
        {"index": i, "message": {"role": "assistant", "content": f"re: {content}"}, "finish_reason": "stop",
         "logprobs": {"content": [{"token": "r", "logprob": -1.0}]}} for i in range(req["n"])]}


class Scripted:
    """A local server whose first responses follow `statuses`, then 200s; it records what it saw."""

    def __init__(self, statuses=(), delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                self._reply(200, {"object": "list", "data": [{"id": "only-model", "object": "model"}]})

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(req)
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                time.sleep(outer.delay)
                with outer.lock:
                    outer.in_flight -= 1
                if status != 200:
                    return self._reply(status, {"error": {"message": f"scripted {status}"}})
                self._reply(200, chat_body(req) if "messages" in req else completion_body(req))

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def engine(url: str, **kw) -> OpenAIEngine:
    return OpenAIEngine(url, "m", backoff=0.01, max_backoff=0.05, timeout=5.0, **kw)


def test_retries_500_twice_then_succeeds():
    with Scripted([500, 500]) as srv:
        (row,) = engine(srv.url).generate(["q"], n=2, params=SamplingParams(max_new_tokens=8, seed=3))
    assert len(srv.requests) == 3
    assert [c.text for c in row] == ["q|0 STOP tail", "q|1 STOP tail"]
    sent = srv.requests[-1]
    assert (sent["n"], sent["max_tokens"], sent["seed"], sent["temperature"], sent["logprobs"]) == (2, 8, 3, 0.0, 1)
    assert row[0].logprob == pytest.approx(-0.75) and row[0].n_tokens == 2
    assert row[0].finish_reason == "length"


def test_429_and_503_are_retried_and_give_up_after_max_retries():
    with Scripted([429, 503, 503, 503, 503]) as srv:
        with pytest.raises(RuntimeError, match=r"after 3 tries; last: HTTP 503"):
            engine(srv.url, max_retries=2).generate(["q"])
    assert len(srv.requests) == 3


def test_client_errors_are_not_retried():
    with Scripted([400]) as srv:
        with pytest.raises(RuntimeError, match="HTTP 400"):
            engine(srv.url).generate(["q"])
    assert len(srv.requests) == 1


def test_connection_errors_are_retried():
    with Scripted() as srv:
        url = srv.url
    # The server is closed now: every try fails to connect.
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"after 3 tries; last: ConnectError"):
        engine(url, max_retries=2).generate(["q"])
    assert time.monotonic() - start < 5


def test_bounded_concurrency_and_prompt_order():
    prompts = [f"p{i}" for i in range(8)]
    with Scripted(delay=0.1) as srv:
        out = engine(srv.url, concurrency=3).generate(prompts)
    assert [row[0].text for row in out] == [f"{p}|0 STOP tail" for p in prompts]
    assert 2 <= srv.max_in_flight <= 3


def test_stop_strings_are_applied_client_side():
    with Scripted() as srv:
        (row,) = engine(srv.url, max_stops=1).generate(["q"], stop=["NONE", " STOP"])
    assert srv.requests[0]["stop"] == ["NONE"]  # capped for servers that take few stop strings
    assert row[0].text == "q|0" and row[0].finish_reason == "stop"


def test_chat_endpoint():
    with Scripted() as srv:
        (row,) = engine(srv.url, chat=True).generate(["hi"], n=1)
    assert srv.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert row[0].text == "re: hi" and row[0].logprob == pytest.approx(-1.0)


def test_load_engine_specs(tmp_path):
    with Scripted() as srv:
        e = load_engine(f"openai:{srv.url}#m1")
        assert isinstance(e, OpenAIEngine) and e.model == "m1" and not e.chat
        e = load_engine(f"openai-chat:{srv.url}")  # no #MODEL: the server's only model
        assert e.model == "only-model" and e.chat
    with pytest.raises(ValueError, match="expected openai:http"):
        load_engine("openai:localhost#m")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_engine(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_engine("vllm:" + str(tmp_path / "missing"))
