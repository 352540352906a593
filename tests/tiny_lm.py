"""A tiny random Llama and a small BPE tokenizer, built offline, shared by the inference tests."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Question: What is 12 + 30? Answer: 12 + 30 = 42. The answer is 42.",
    "Question: Tom has 3 apples and buys 5 more. How many apples? Answer: 3 + 5 = 8.",
    "## Question\nCompute 7 * 6.\n\n## Solution\n7 * 6 = 42, so the answer is \\boxed{42}.",
    "The sum of the first ten integers is 55. Let's think step by step.",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<bos>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_tokenizer(chat: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Metaspace keeps every output readable (no byte fallback), so stop strings can be chosen from text.
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<unk>")
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(tokenizer, seed: int = 0, init: float = 0.2):
    """A 2-layer random Llama; a large init range makes its next-token distribution peaked, so greedy
    choices are not decided by float rounding."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      initializer_range=init, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(cfg).eval()


def save_tiny(folder: Path, chat: bool = False) -> Path:
    tok = tiny_tokenizer(chat=chat)
    model = tiny_model(tok)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# Overrides of the `nano` preset for training tests: a 2-layer Llama that trains in seconds.
TINY_TRAIN_OVERRIDES = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 2}
