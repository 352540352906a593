"""An OpenAI-compatible HTTP server (FastAPI + uvicorn) over an `HFEngine`.

Serves `GET /v1/models`, `POST /v1/completions` (prompt, n, max_tokens, temperature, top_p, stop,
seed, logprobs) and `POST /v1/chat/completions` (messages rendered with the tokenizer's chat
template; a model without one, such as every model mathforge trains, gets the turns' texts back to
back, `hf_engine.PLAIN_CHAT_TEMPLATE`, so one user message is the prompt it was trained on) with the OpenAI response shapes, so `OpenAIEngine` and any OpenAI client can use a local
checkpoint. Requests are served one at a time (a lock around the engine): one `generate` call
already batches a request's prompts and samples. Streaming is not supported. Binds to 127.0.0.1
unless told otherwise, because the server has no authentication.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mathforge.infer.hf_engine import HFEngine, chat_ids
from mathforge.infer.types import Completion, SamplingParams


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields we do not use (user, ...)

    model: str | None = None
    n: int = Field(1, ge=1, le=512)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    logprobs: int | None = Field(None, ge=0, le=20)


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False


def create_app(engine: HFEngine, model_name: str, *, default_max_tokens: int = 256) -> FastAPI:
    """The FastAPI app serving `engine` under the id `model_name`."""
    app = FastAPI(title="mathforge", description=__doc__.splitlines()[0])
    lock = threading.Lock()

    def check(req: _Sampling) -> tuple[SamplingParams, list[str] | None]:
        if req.stream:
            raise HTTPException(400, "stream=true is not supported by this server")
        if req.model is not None and req.model != model_name:
            raise HTTPException(404, f"model {req.model!r} not found; this server has {model_name!r}")
        max_tokens = getattr(req, "max_completion_tokens", None) or req.max_tokens or default_max_tokens
        seed = req.seed if req.seed is not None else secrets.randbits(31)  # no seed: fresh samples
        stop = [req.stop] if isinstance(req.stop, str) else req.stop
        return SamplingParams(max_new_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p,
                              seed=seed), stop

    def run(ids: list[list[int]], n: int, params: SamplingParams, stop) -> list[list[Completion]]:
        with lock:
            try:
                return engine.generate_ids(ids, n=n, params=params, stop=stop)
            except ValueError as exc:  # e.g. a prompt longer than the model's context
                raise HTTPException(400, str(exc)) from exc

    @app.exception_handler(HTTPException)
    def _error(_: Request, exc: HTTPException) -> JSONResponse:  # the OpenAI error shape
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse({"error": {"message": exc.detail, "type": kind}}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:  # bad JSON, missing or bad fields
        where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
                          for e in exc.errors())
        return JSONResponse({"error": {"message": where, "type": "invalid_request_error"}}, status_code=422)

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "mathforge"}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        params, stop = check(req)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        ids = engine.encode(prompts)
        results = run(ids, req.n, params, stop)
        choices = [{"index": i * req.n + j, "text": c.text, "finish_reason": c.finish_reason,
                    "logprobs": _completion_logprobs(engine, c) if req.logprobs is not None else None}
                   for i, row in enumerate(results) for j, c in enumerate(row)]
        return _envelope("cmpl", "text_completion", model_name, choices, ids, req.n, results)

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        params, stop = check(req)
        ids = [chat_ids(engine.tokenizer, [m.model_dump() for m in req.messages])]
        results = run(ids, req.n, params, stop)
        choices = [{"index": j, "message": {"role": "assistant", "content": c.text},
                    "finish_reason": c.finish_reason,
                    "logprobs": _chat_logprobs(engine, c) if req.logprobs else None}
                   for j, c in enumerate(results[0])]
        return _envelope("chatcmpl", "chat.completion", model_name, choices, ids, req.n, results)

    return app


def _envelope(prefix, obj, model_name, choices, ids, n, results) -> dict:
    completion_tokens = sum(c.n_tokens for row in results for c in row)
    prompt_tokens = sum(len(x) for x in ids) * n  # as OpenAI counts: the prompt once per sample
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": obj, "created": int(time.time()),
            "model": model_name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def _completion_logprobs(engine: HFEngine, c: Completion) -> dict:
    pieces = [engine.tokenizer.decode([t]) for t in c.token_ids]
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    return {"tokens": pieces, "token_logprobs": c.token_logprobs, "top_logprobs": None, "text_offset": offsets}


def _chat_logprobs(engine: HFEngine, c: Completion) -> dict:
    lps = c.token_logprobs or []
    return {"content": [{"token": engine.tokenizer.decode([t]), "logprob": lp, "bytes": None, "top_logprobs": []}
                        for t, lp in zip(c.token_ids, lps, strict=True)]}


def serve(engine: HFEngine, model_name: str, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server in this thread until interrupted."""
    import uvicorn

    uvicorn.run(create_app(engine, model_name), host=host, port=port, log_level="info")


@contextlib.contextmanager
def running(engine: HFEngine, model_name: str, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve on a free port in a background thread; yields the base URL ("http://host:port/v1")."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))  # the OS picks a free port; uvicorn serves on this very socket (no race)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine, model_name), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {host}:{port} did not start")
            time.sleep(0.02)
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
