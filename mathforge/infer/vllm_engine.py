"""VLLMEngine: the `Engine` protocol over vLLM's offline `LLM` (PagedAttention; Kwon et al. 2023).

vLLM is optional and GPU-only: it is imported when an engine is built, never at module import, and
a missing install raises one clear `ImportError` saying how to get it. Prompts are tokenized here
(chat template included) and passed as token ids, so vLLM and `HFEngine` see the same ids. vLLM's
default `logprobs_mode` reports raw model log-probs, matching `Completion.logprob` of `HFEngine`.
"""

from __future__ import annotations

from pathlib import Path

from mathforge.infer.hf_engine import encode_prompts
from mathforge.infer.types import Completion, SamplingParams, check_generate_args, cut_at_stop

INSTALL_HINT = "VLLMEngine needs the optional package vllm (CUDA GPU): pip install vllm"


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:  # the only supported way to reach this engine without vllm
        raise ImportError(INSTALL_HINT) from exc
    return vllm


class VLLMEngine:
    """Generate with vLLM. Extra keyword arguments go to `vllm.LLM` (e.g. `gpu_memory_utilization`)."""

    def __init__(self, model_path: str | Path, *, chat: bool = False, **llm_kwargs) -> None:
        self._vllm = _import_vllm()
        self.llm = self._vllm.LLM(model=str(model_path), **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.chat = chat

    def generate(self, prompts: list[str], *, n: int = 1, params: SamplingParams = SamplingParams(),
                 stop: list[str] | None = None) -> list[list[Completion]]:
        stop = check_generate_args(prompts, n, stop)
        ids = encode_prompts(self.tokenizer, prompts, chat=self.chat)
        # One SamplingParams per prompt so each prompt gets its own seed stream, reproducibly.
        sampling = [self._vllm.SamplingParams(n=n, temperature=params.temperature, top_p=params.top_p,
                                              top_k=params.top_k or -1, max_tokens=params.max_new_tokens, seed=params.seed + i,
                                              stop=stop or None, logprobs=0)
                    for i in range(len(prompts))]
        requests = [{"prompt_token_ids": x} for x in ids]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        return [[self._completion(o, stop) for o in sorted(out.outputs, key=lambda o: o.index)]
                for out in outputs]

    @staticmethod
    def _completion(o, stop: list[str]) -> Completion:
        text, _ = cut_at_stop(o.text, stop)  # vLLM already cuts; this keeps the rule in one place
        token_lps = None
        if o.logprobs:
            token_lps = [step[t].logprob for step, t in zip(o.logprobs, o.token_ids, strict=False)]
        logprob = o.cumulative_logprob if o.cumulative_logprob is not None else (
            sum(token_lps) if token_lps is not None else None)
        return Completion(text=text, token_ids=list(o.token_ids), n_tokens=len(o.token_ids), logprob=logprob,
                          finish_reason="length" if o.finish_reason == "length" else "stop",
                          token_logprobs=token_lps)
