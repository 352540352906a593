"""S3c of the JiuZhang3.0-style pipeline (Zhou et al. 2024; docs/methods/synthesis.md §d.5, [reconstructed]): boosting
the synthesis model by the gradient-based value of prompts, in the manner of LESS (Xia et al. 2024).

For a candidate prompt (with the current synthesiser's output) and for each target problem (with its
solution; the *training* splits of GSM8K and MATH, never test data), the feature is the gradient of
the output-token loss with respect to LoRA adapters on a reference model (`peft`), projected to
`dim` (8,192) dimensions by a seeded Gaussian matrix and L2-normalised. A prompt's value is the mean
cosine similarity of its feature with the target features; the top `top_k` (4,000) prompts go to the
teacher, whose answers join the KD data before the synthesiser is retrained (S3a/S3b).

The projection matrix is never stored whole: it is generated in blocks of `BLOCK` parameter rows,
each from its own seed, and applied to a batch of gradients at a time, so any parameter count fits.
Freshly added LoRA adapters start with B = 0, so only B's gradient is non-zero at first; a reference
model fine-tuned with LoRA (as §d.5 prescribes) gives both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BLOCK = 1024


@dataclass
class BoostConfig:
    dim: int = 8192
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    seed: int = 0
    top_k: int = 4000
    max_len: int = 2048
    batch: int = 32

    def __post_init__(self) -> None:
        if self.dim < 1 or self.lora_r < 1 or self.top_k < 1 or self.batch < 1 or self.max_len < 2:
            raise ValueError("boost.dim, lora_r, top_k, batch must be >= 1 and max_len >= 2")


def projection_block(b: int, dim: int, seed: int, rows: int = BLOCK) -> Any:
    """Rows `b*BLOCK …` of the Gaussian projection matrix, scaled by 1/sqrt(dim): [rows, dim]."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + b)
    return torch.randn(rows, dim, generator=g) / dim**0.5


def project(grads: Any, dim: int, seed: int) -> Any:
    """grads [N, P] -> [N, dim] = grads @ R, with R generated block by block (never whole)."""
    import torch

    n, p = grads.shape
    out = torch.zeros(n, dim)
    for b, start in enumerate(range(0, p, BLOCK)):
        chunk = grads[:, start : start + BLOCK]  # [N, <=BLOCK]
        out += chunk @ projection_block(b, dim, seed, chunk.shape[1])  # [N, dim]
    return out


def add_lora(model: Any, cfg: BoostConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.target_modules),
                      lora_dropout=0.0, bias="none")
    return get_peft_model(model, lora)


def example_gradient(model: Any, tokenizer: Any, prompt: str, response: str, max_len: int) -> Any:
    """Flattened gradient [P] of the mean loss over `response` tokens given `prompt` (trainable params)."""
    import torch

    p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    r_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (p_ids + r_ids)[:max_len]
    labels = ([-100] * len(p_ids) + r_ids)[:max_len]
    if all(x == -100 for x in labels):
        raise ValueError(f"prompt of {len(p_ids)} tokens leaves no response token within max_len={max_len}")
    params = [q for q in model.parameters() if q.requires_grad]
    model.zero_grad(set_to_none=True)
    out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))  # loss: mean over response
    grads = torch.autograd.grad(out.loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).float()  # [P]


def features(model: Any, tokenizer: Any, pairs: list[tuple[str, str]], cfg: BoostConfig) -> Any:
    """L2-normalised projected gradient features [N, dim] of (prompt, response) pairs."""
    import torch

    rows = []
    for start in range(0, len(pairs), cfg.batch):
        grads = torch.stack([example_gradient(model, tokenizer, p, r, cfg.max_len)
                             for p, r in pairs[start : start + cfg.batch]])  # [B, P]
        rows.append(project(grads, cfg.dim, cfg.seed))  # [B, dim]
    feats = torch.cat(rows)
    return feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)


def prompt_values(cand: Any, targets: Any) -> Any:
    """Mean cosine similarity of each candidate feature [N, dim] with the target features [M, dim]."""
    return (cand @ targets.T).mean(dim=1)  # [N]


def select_prompts(candidates: list[dict], targets: list[dict], model: Any, tokenizer: Any,
                   cfg: BoostConfig | None = None) -> list[dict]:
    """The `top_k` candidates by value, each with `value`. Candidates: `{prompt, generated_text}`
    (the current synthesiser's output); targets: `{input, output}` from training splits. LoRA
    adapters are added to `model` in place (peft); pass a fresh copy if it is used afterwards."""
    cfg = cfg or BoostConfig()
    for i, c in enumerate(candidates):
        if not isinstance(c.get("prompt"), str) or not isinstance(c.get("generated_text"), str):
            raise ValueError(f"candidate #{i}: needs string fields 'prompt' and 'generated_text'")
    for i, t in enumerate(targets):
        if not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            raise ValueError(f"target #{i}: needs string fields 'input' and 'output'")
    if not targets:
        raise ValueError("boosting needs at least one target problem")
    lora = add_lora(model, cfg).eval()
    cand = features(lora, tokenizer, [(c["prompt"], c["generated_text"]) for c in candidates], cfg)
    tgt = features(lora, tokenizer, [(t["input"], t["output"]) for t in targets], cfg)
    values = prompt_values(cand, tgt).tolist()
    order = sorted(range(len(candidates)), key=lambda i: -values[i])[: cfg.top_k]
    return [candidates[i] | {"value": values[i]} for i in order]
