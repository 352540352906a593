"""OpenAIEngine: the `Engine` protocol over any OpenAI-compatible HTTP server.

Speaks both `/v1/completions` (raw prompts) and `/v1/chat/completions` (`chat=True`: each prompt
is one user message). Requests run on a bounded thread pool sharing one `httpx.Client`; each has a
timeout and is retried with capped exponential back-off and jitter ("full jitter", as in the AWS
architecture note on back-off) on HTTP 429, 5xx and connection errors. A `Retry-After` header, when
sent, sets the wait. Stop strings are also applied on the client (docs/methods/evaluation.md §g.2) because some
servers accept only four of them.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from mathforge.infer.types import Completion, SamplingParams, chat_messages, check_generate_args, cut_at_stop

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class OpenAIEngine:
    """Client for `base_url` (e.g. "http://127.0.0.1:8000/v1") serving `model`.

    `concurrency` bounds requests in flight; `timeout` is per request (seconds); `max_retries`
    retries follow the first try; `max_stops` caps how many stop strings are sent (OpenAI's own API
    takes 4; the rest are still applied here).
    """

    def __init__(self, base_url: str, model: str, *, chat: bool = False, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 120.0, max_retries: int = 5, backoff: float = 0.5,
                 max_backoff: float = 30.0, max_stops: int | None = None, system: str | None = None) -> None:
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("OpenAIEngine needs concurrency >= 1, max_retries >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.chat = chat
        self.system = system  # a system turn before each prompt (chat only)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_stops = max_stops
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout,
                                   limits=httpx.Limits(max_connections=concurrency))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------
    def generate(self, prompts: list[str], *, n: int = 1, params: SamplingParams = SamplingParams(),
                 stop: list[str] | None = None) -> list[list[Completion]]:
        stop = check_generate_args(prompts, n, stop)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, n, params, stop), prompts))

    def models(self) -> list[str]:
        """Model ids the server lists at /v1/models."""
        return [m["id"] for m in self._request("GET", "/models")["data"]]

    def _one(self, prompt: str, n: int, params: SamplingParams, stop: list[str]) -> list[Completion]:
        body = {"model": self.model, "n": n, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed}
        if params.top_k:
            body["top_k"] = params.top_k  # vLLM and llama.cpp servers accept it; OpenAI ignores it
        if stop:
            body["stop"] = stop if self.max_stops is None else stop[: self.max_stops]
        if self.chat:
            body |= {"messages": chat_messages(prompt, self.system), "logprobs": True}
            data = self._request("POST", "/chat/completions", body)
        else:
            body |= {"prompt": prompt, "logprobs": 1}
            data = self._request("POST", "/completions", body)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise ValueError(f"{self.base_url}: asked for n={n} choices, the server returned {len(choices)}")
        return [self._completion(c, stop) for c in choices]

    def _completion(self, choice: dict, stop: list[str]) -> Completion:
        if self.chat:
            text = (choice.get("message") or {}).get("content") or ""
            entries = (choice.get("logprobs") or {}).get("content") or []
            token_lps = [e["logprob"] for e in entries] if entries else None
        else:
            text = choice.get("text") or ""
            token_lps = (choice.get("logprobs") or {}).get("token_logprobs") or None
        text, cut = cut_at_stop(text, stop)
        finish = "length" if choice.get("finish_reason") == "length" and not cut else "stop"
        return Completion(text=text, token_ids=[], n_tokens=len(token_lps or []),
                          logprob=float(sum(token_lps)) if token_lps is not None else None,
                          finish_reason=finish, token_logprobs=token_lps)

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One HTTP call with retries; raises RuntimeError naming the URL once retries are spent."""
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                resp = self.client.request(method, url, json=body)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUS:
                    raise RuntimeError(f"{method} {url} failed with {error}")
                wait = _retry_after(resp)
            if attempt == self.max_retries:
                break
            cap = min(self.max_backoff, self.backoff * 2**attempt)
            time.sleep(min(wait, self.max_backoff) if wait is not None else random.uniform(cap / 2, cap))
        raise RuntimeError(f"{method} {url} failed after {self.max_retries + 1} tries; last: {error}")


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
