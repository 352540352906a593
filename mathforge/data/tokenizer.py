"""Tokenizers for from-scratch models, built with HF `tokenizers`.

Three kinds:

- `char`: one token per character (WordLevel over single characters). Right for arithmetic and
  implicit-CoT multiplication (Deng et al. 2023/2024), where every digit and separator matters
  and a learned merge would only hide structure.
- `char_spaced`: as `char`, but one space is folded into the character after it (`" 7"` is one
  token, like GPT-2's word-initial space, which the implicit-CoT papers' tokenizer also gives).
  The space-separated digit formats (`1 2 3 4 * 5 6 7 8||...`) then cost half the tokens, so
  training and decoding do twice the problems per second at the same model size.
- `bpe`: byte-level BPE (Sennrich et al. 2016, GPT-2 byte alphabet) trained on the given texts,
  with digits pre-split one per token (`Digits(individual_digits=True)`, as LLaMA and PaLM do):
  a merge can never join two digits, so numbers are always read digit by digit.

Both carry the special tokens `<pad>`, `<bos>`, `<eos>`, `<unk>`, `<mask>` (ids 0..4; `<mask>` is
the token Masked Thought fine-tuning substitutes into the chain of thought, docs/methods/mft.md §a.4) and
come back as a `transformers.PreTrainedTokenizerFast` that round-trips through
`save_pretrained` / `AutoTokenizer.from_pretrained`.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

SPECIAL_TOKENS: dict[str, str] = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
KINDS = ("char", "char_spaced", "bpe")
# Always in a char vocabulary, so text typed at evaluation time (a space, a newline, an operator
# the training set happened not to use) does not fall to <unk>.
_BASE_CHARS = string.printable


def build_tokenizer(texts: Iterable[str], *, kind: str = "char", vocab_size: int = 4096):
    """Build a tokenizer from `texts` and wrap it as a `PreTrainedTokenizerFast`.

    `vocab_size` bounds the BPE vocabulary (special tokens and the 256-byte alphabet included);
    a char vocabulary has whatever characters occur (plus printable ASCII) and ignores it.
    """
    if kind not in KINDS:
        raise ValueError(f"build_tokenizer: kind must be one of {KINDS}, got {kind!r}")
    if isinstance(texts, str):
        raise TypeError("build_tokenizer: texts must be an iterable of strings, not one string")
    if kind in ("char", "char_spaced"):
        backend = _char_backend(texts, fold_spaces=kind == "char_spaced")
    else:
        backend = _bpe_backend(texts, vocab_size)
    _add_bos_processor(backend)
    return _wrap(backend)


def _add_bos_processor(backend) -> None:
    """`tokenizer(text)` yields `[<bos>] + ids`, as Llama's does, so an inference prompt tokenised
    with defaults starts exactly like a rendered training sequence (render adds BOS itself and
    tokenises with `add_special_tokens=False`)."""
    from tokenizers import processors

    bos = SPECIAL_TOKENS["bos_token"]
    bos_id = backend.token_to_id(bos)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)]
    )


def _char_backend(texts: Iterable[str], *, fold_spaces: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = set(_BASE_CHARS)
    for text in texts:
        chars.update(text)
    specials = list(SPECIAL_TOKENS.values())
    vocab = {tok: i for i, tok in enumerate(specials)}
    pieces = sorted(chars)
    if fold_spaces:  # every visible character also exists with one leading space
        pieces += [" " + ch for ch in sorted(chars) if not ch.isspace()]
    for piece in pieces:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    # `[\s\S]` matches every character including newlines, so each character is its own word;
    # with folding, ` ?\S` first takes one optional space together with the visible character.
    pattern = r" ?\S|[\s\S]" if fold_spaces else r"[\s\S]"
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()  # join tokens with no inserted spaces
    tok.add_special_tokens(specials)
    return tok


def _bpe_backend(texts: Iterable[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = list(SPECIAL_TOKENS.values())
    min_size = len(specials) + 256
    if vocab_size < min_size:
        raise ValueError(f"build_tokenizer: bpe vocab_size must be >= {min_size} (specials + bytes), got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    # Digits first: every digit becomes its own pre-token, and BPE never merges across
    # pre-tokens, so no learned merge can contain two digits.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _wrap(backend):
    from transformers import PreTrainedTokenizerFast

    # clean_up_tokenization_spaces=False: the default clean-up rewrites " ." to "." on decode,
    # which would break the exact text round trip that exact-match grading relies on.
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
        **SPECIAL_TOKENS,
    )

