"""Rendering: ids/labels/weights layout, the prompt/response boundary, overlong errors, the marked view."""

import argparse

import pytest

from mathforge.data.records import Example
from mathforge.data.render import IGNORE_INDEX, Rendered, render, render_all, show_rendered
from mathforge.data.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(["0123456789 *+()#|abc"], kind="char")


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_layout_ids_labels_weights(tok):
    ex = Example(prompt="12 * 3||", response="36 #### 36", weight=0.5)
    r = render(ex, tok)
    p, s = _ids(tok, ex.prompt), _ids(tok, ex.response)
    assert r.input_ids == [tok.bos_token_id] + p + s + [tok.eos_token_id]
    assert r.labels == [IGNORE_INDEX] * (1 + len(p)) + s + [tok.eos_token_id]
    assert r.weights == [0.0] * (1 + len(p)) + [0.5] * (len(s) + 1)
    assert r.prompt_len == 1 + len(p) and r.n_targets == len(s) + 1
    assert tok.decode(r.input_ids[r.prompt_len:-1]) == ex.response


def test_boundary_does_not_move_when_bpe_would_merge_across_it():
    texts = ["ab" * 50, "xab yab zab"] * 10
    bpe = build_tokenizer(texts, kind="bpe", vocab_size=280)
    assert len(_ids(bpe, "ab")) == 1  # "ab" is a merge, so "a"|"b" split across the boundary matters
    r = render(Example(prompt="xa", response="b"), bpe)
    assert bpe.decode(r.input_ids[1:r.prompt_len]) == "xa"
    assert bpe.decode([t for t in r.labels if t != IGNORE_INDEX]) == "b<eos>"


def test_overlong_names_example_and_length(tok):
    ex = Example(prompt="1 2 3", response="4 5 6", meta={"id": "mult-7"})
    with pytest.raises(ValueError, match=r"#3 id=mult-7 has 12 tokens, more than max_len=8"):
        render(ex, tok, max_len=8, index=3)
    cut = render(ex, tok, max_len=8, overlong="truncate")
    assert len(cut) == 8 and cut.labels[:6] == [IGNORE_INDEX] * 6
    with pytest.raises(ValueError, match=r"example #1 id=mult-7 has 12"):
        render_all([Example("1", "2"), ex], tok, max_len=8)
    kept = render_all([Example("1", "2"), ex], tok, max_len=8, overlong="drop")
    assert len(kept) == 1 and kept[0].meta["index"] == 0


def test_no_bos_tokenizer_and_missing_eos(tok):
    class NoBos:
        bos_token_id, eos_token_id = None, 2

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    r = render(Example("ab", "c"), NoBos())
    assert r.input_ids == [97, 98, 99, 2] and r.labels == [IGNORE_INDEX, IGNORE_INDEX, 99, 2]
    NoBos.eos_token_id = None
    with pytest.raises(ValueError, match="eos"):
        render(Example("ab", "c"), NoBos())


def test_rendered_rejects_ragged_lists():
    with pytest.raises(ValueError, match="lengths differ"):
        Rendered([1, 2], [1], [0.0, 1.0], 1)


def test_show_rendered_marks_trained_span(tok):
    r = render(Example(prompt="1 * 2||", response="2 #### 2"), tok)
    assert show_rendered(r, tok) == "<bos>1 * 2||[[2 #### 2<eos>]]"
    w = render(Example(prompt="1", response="2", weight=2.0), tok)
    assert show_rendered(w, tok) == "<bos>1[[2<eos>]]{w=2}"
    # a masked-out token inside the response (as Masked Thought or a custom objective may make)
    r.labels[r.prompt_len + 1] = IGNORE_INDEX
    assert show_rendered(r, tok) == "<bos>1 * 2||[[2]] [[#### 2<eos>]]"


def test_cli_render_prints_marked_examples(capsys):
    from mathforge.cli import render as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert cli.run(parser.parse_args(["render", "--task", "mult", "--k", "4", "--n", "2"])) == 0
    out = capsys.readouterr().out
    assert out.count("--- example") == 2 and out.count("[[") == 2 and "####" in out
    assert cli.run(parser.parse_args(["render", "--task", "arith", "--n", "1", "--tokens"])) == 0
    assert "label" in capsys.readouterr().out


def test_cli_render_recipe_shows_what_training_renders(tmp_path, capsys):
    from mathforge.cli import render as cli

    recipe = tmp_path / "r.toml"
    recipe.write_text('[data]\ntask = "multiplication"\nn_train = 6\nn_eval = 1\nseq_len = 200\n'
                      'task_args = { k = 5 }\n')
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert cli.run(parser.parse_args(["render", "--recipe", str(recipe), "--n", "3"])) == 0
    out = capsys.readouterr().out
    assert out.count("--- example mult5x5") == 3 and out.count("[[") == 3 and ": 197 tokens" in out
