"""Tokenizers: special tokens, digits one per token, exact text round trip, save/load with Auto classes."""

import pytest
from transformers import AutoTokenizer

from mathforge.data.tokenizer import SPECIAL_TOKENS, build_tokenizer

TEXTS = [
    "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72",
    "7 6 9 2 * 1 6 3 6||7 6 9 2 0 + 0 2 0 8 7 1 ( 7 8 9 0 8 1 ) #### 7 8 0 3 7 8 8 1",
    "She paid $12,345.67 for 1000000 apples.  Then 3.14159 * 2 = 6.28318 #### 6.28318",
] * 20
SAMPLES = ["12345 + 67890 = 80235", "a  b\n\n c\t#### 4", "x = -0.5 . , ; done", "Zo\u00eb earns 99 dollars"]


@pytest.fixture(scope="module", params=["char", "bpe"])
def tok(request):
    return build_tokenizer(TEXTS, kind=request.param, vocab_size=300)


def test_special_tokens_are_set(tok):
    assert tok.convert_ids_to_tokens(list(range(5))) == ["<pad>", "<bos>", "<eos>", "<unk>", "<mask>"]
    for attr, text in SPECIAL_TOKENS.items():
        assert getattr(tok, attr) == text
        assert getattr(tok, attr + "_id") == tok.convert_tokens_to_ids(text)
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id}) == 5


def test_every_digit_is_its_own_token(tok):
    for text in SAMPLES + TEXTS[:3]:
        pieces = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
        for p in pieces:
            digits = sum(ch.isdigit() for ch in p)
            assert digits <= 1, (text, p)
            if digits:
                assert p.strip("\u0120 ").isdigit(), p  # a digit never shares a token with other text


def test_bpe_learns_merges_but_never_over_digits():
    tok = build_tokenizer(TEXTS, kind="bpe", vocab_size=300)
    ids = tok("Natalia sold clips altogether", add_special_tokens=False)["input_ids"]
    assert len(ids) < len("Natalia sold clips altogether") / 2  # merges were learned
    assert len(tok("1000000", add_special_tokens=False)["input_ids"]) == 7


def test_text_round_trip_is_exact(tok):
    for text in SAMPLES + TEXTS[:3]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        decoded = tok.decode(ids)
        if tok.unk_token_id in ids:  # char vocab: an unseen non-ASCII char maps to <unk>
            assert decoded.replace("<unk>", "?") == "".join(c if ord(c) < 128 else "?" for c in text)
        else:
            assert decoded == text


def test_default_encoding_starts_with_bos_only(tok):
    ids = tok("1 + 1")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids


def test_char_vocab_has_printable_ascii_and_seen_chars():
    tok = build_tokenizer(["\u00e9\u00e9"], kind="char")
    assert tok.unk_token_id not in tok("{~}\n\u00e9", add_special_tokens=False)["input_ids"]
    assert tok("\u4e2d", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_save_and_reload_with_auto_tokenizer(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again.mask_token == "<mask>" and again.pad_token_id == tok.pad_token_id
    for text in SAMPLES:
        assert again(text)["input_ids"] == tok(text)["input_ids"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert again.decode(ids) == tok.decode(ids)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kind"):
        build_tokenizer(["x"], kind="wordpiece")
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer(["x"], kind="bpe", vocab_size=100)
    with pytest.raises(TypeError, match="iterable of strings"):
        build_tokenizer("just one string")


def test_char_spaced_folds_one_space_and_halves_multiplication_lines(tmp_path):
    """`char_spaced` must round-trip every shipped 4x4 line exactly while spending one token per
    digit (with its leading space), i.e. about half the tokens of plain `char`."""
    from pathlib import Path

    lines = (Path(__file__).parents[1] / "data/multiplication/4x4/test.txt").read_text().splitlines()[:200]
    spaced = build_tokenizer(lines, kind="char_spaced")
    plain = build_tokenizer(lines, kind="char")
    for line in lines:
        ids = spaced(line, add_special_tokens=False)["input_ids"]
        assert spaced.decode(ids) == line
        pieces = spaced.convert_ids_to_tokens(ids)
        assert all(len(p.strip()) == 1 for p in pieces), pieces  # one visible character per token
        assert sum(p.strip().isdigit() for p in pieces) == sum(c.isdigit() for c in line)
        n_plain = len(plain(line, add_special_tokens=False)["input_ids"])
        assert len(ids) < 0.55 * n_plain
    odd = "a  b\n c\t d  \n\n"  # runs of spaces, tabs and newlines survive exactly
    assert spaced.decode(spaced(odd, add_special_tokens=False)["input_ids"]) == odd
    spaced.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(lines[0])["input_ids"] == spaced(lines[0])["input_ids"]
