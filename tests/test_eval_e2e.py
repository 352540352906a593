"""End to end on CPU: a tiny Llama trained in the test -> `mathforge eval` (cot, pot, tora) -> report;
SIGKILL in the middle of a run and resume; the same through `mathforge serve` + the OpenAI client.

The model is a 2-layer Llama with a byte-level BPE tokenizer, trained for a few seconds to answer every
prompt with the same tool-using solution: a ```python block printing 18, its ```output, then
`The answer is $\\boxed{18}$.` That makes every path real and checkable: the cot style reads the box,
pot runs the program (stopping at ```output), tora runs the code and continues from the appended
result. GSM8K problem 0's gold is 18, the other three are not: accuracy is exactly 25% in each style.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
CODE = "```python\nprint(18)\n```\n"
OUTPUT = "```output\n18\n```\n"
FINAL = "The answer is $\\boxed{18}$."
STYLES = ("cot", "pot", "tora")
LIMIT = 4


def _tokenizer(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>")


def _train_tiny(folder: Path) -> Path:
    """Build and train the tiny model; the prompts are exactly the ones `mathforge eval` will send."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from mathforge.data import load_benchmark
    from mathforge.data.prompts import build_prompt

    torch.manual_seed(0)
    questions = [p.question for p in load_benchmark("gsm8k", limit=LIMIT)]
    prompts = [build_prompt(q, s) for q in questions for s in STYLES]
    tok = _tokenizer(prompts + [CODE + OUTPUT + FINAL] * 20)
    eos = tok.eos_token_id
    # (context, target) pairs tokenised separately, as the engine sees them: the first round, and the
    # round after the tool loop appended the output block to the context.
    tora = [p for p in prompts if p.endswith("Solution:\n")]
    pairs = [(p, CODE + OUTPUT + FINAL) for p in prompts] + [(p + CODE + OUTPUT, FINAL) for p in tora]
    rows = []
    for ctx, tgt in pairs:
        c, t = tok(ctx).input_ids, tok(tgt).input_ids + [eos]
        rows.append((c + t, [-100] * len(c) + t))
    width = max(len(r[0]) for r in rows)
    ids = torch.tensor([r[0] + [tok.pad_token_id] * (width - len(r[0])) for r in rows])  # [B, T]
    labels = torch.tensor([r[1] + [-100] * (width - len(r[1])) for r in rows])  # [B, T]
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r[0]) for r in rows])[:, None]).long()  # [B, T]
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=eos)
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    steps, loss = 0, torch.tensor(float("inf"))
    while steps < 300 and loss.item() >= 0.01:  # below 0.01 every target token is the clear argmax
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    print(f"tiny model trained: {steps} steps, loss {loss.item():.4f}")
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return _train_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _eval_args(model: str, style: str, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", model, "--benchmark", "gsm8k", "--limit", str(LIMIT), "--style", style,
            "--max-new-tokens", "48", "--workers", "1", "--quiet", "--out", str(out), *extra]


def _main(argv: list[str]) -> int:
    from mathforge.cli import main

    return main(argv)


def _stable(metrics: dict) -> dict:
    """Metrics without wall-clock figures (those differ run to run)."""
    return {k: v for k, v in metrics["benchmarks"]["gsm8k"].items() if "second" not in k}


@pytest.fixture(scope="module")
def runs(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("evals")
    for style in STYLES:
        assert _main(_eval_args(str(model_dir), style, root / style)) == 0
    return root


@pytest.mark.parametrize("style", STYLES)
def test_eval_cli_each_style(runs, style):
    run = runs / style
    metrics = json.loads((run / "metrics.json").read_text())
    recs = [json.loads(line) for line in (run / "outputs.jsonl").read_text().splitlines()]
    assert len(recs) == LIMIT and [r["idx"] for r in recs] == [str(i) for i in range(LIMIT)]
    assert [r["correct"] for r in recs] == [True, False, False, False], [r["generation"] for r in recs]
    assert metrics["benchmarks"]["gsm8k"]["accuracy"] == 0.25
    assert all(r["extracted"] == "18" for r in recs)
    if style == "cot":
        assert all(r["programs"] == [] and FINAL in r["generation"] for r in recs)
    if style == "pot":  # stopped at ```output; the program ran and its print is the answer
        assert all(r["programs"] == ["print(18)"] and "```output" not in r["generation"] for r in recs)
    if style == "tora":  # ran the code, appended its real output, continued to the boxed answer
        assert all(r["rounds"] == 2 and r["exec_reports"][0]["result"] == "18" for r in recs)
        assert all(r["generation"] == CODE.rstrip() + "\n" + OUTPUT + FINAL for r in recs)
    man = json.loads((run / "manifest.json").read_text())
    assert man["engine"] == "HFEngine" and man["versions"]["torch"] == torch.__version__
    assert metrics["benchmarks"]["gsm8k"]["tokens_per_second"] > 0


def test_report_over_the_three_styles(runs, tmp_path):
    assert _main(["report", *(str(runs / s) for s in STYLES), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2
    md = (tmp_path / "report.md").read_text()
    assert all(f"| gsm8k | {s} |" in md for s in STYLES)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_sigkill_mid_run_then_resume_matches_uninterrupted(model_dir, runs, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mathforge", *_eval_args(str(model_dir), "tora", out, "--batch-size", "1")]
    # The run kills itself with SIGKILL right after its first append to outputs.jsonl (fault
    # injection), so the interruption point is exact on any machine.
    proc = subprocess.run(cmd, cwd=ROOT, env={**_env(), "MATHFORGE_TEST_KILL_AFTER_WRITES": "1"},
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    outputs = out / "outputs.jsonl"
    written = outputs.read_text().count("\n")
    assert 1 <= written < LIMIT and not (out / "metrics.json").exists()
    assert _main(cmd[3:]) == 0  # the re-run: same command, in this process (saves a torch start-up)
    resumed = json.loads((out / "metrics.json").read_text())
    full = json.loads((runs / "tora" / "metrics.json").read_text())
    assert _stable(resumed) == _stable(full)
    assert outputs.read_text().count("\n") == LIMIT


def test_ctrl_c_mid_run_says_how_to_resume(model_dir, runs, tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "mathforge", *_eval_args(str(model_dir), "tora", out, "--batch-size", "1")]
    # a Ctrl-C (SIGINT, sent by the run to itself right after its second append: fault injection)
    env = {**_env(), "MATHFORGE_TEST_KILL_AFTER_WRITES": "2", "MATHFORGE_TEST_KILL_SIGNAL": "INT"}
    # A shell that starts jobs in the background (no job control) makes them ignore SIGINT, and Python
    # then keeps ignoring it: give the run the default disposition, as a terminal would.
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "mathforge eval: interrupted" in proc.stderr and "run the same command again to resume" in proc.stderr
    assert (out / "outputs.jsonl").read_text().count("\n") == 2 and not (out / "metrics.json").exists()
    assert _main(cmd[3:]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert _stable(resumed) == _stable(json.loads((runs / "tora" / "metrics.json").read_text()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (ROOT / "mathforge" / "cli" / "serve.py").exists(),
                    reason="`mathforge serve` (mathforge/cli/serve.py) has not landed yet")
def test_eval_through_serve_and_openai_client(model_dir, runs, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mathforge", "serve", str(model_dir), "--port", str(port)],
                              cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        deadline = time.time() + 120
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        spec = f"openai:http://127.0.0.1:{port}/v1"  # the server's only model (named after its run)
        for style in ("cot", "tora"):
            out = tmp_path / style
            assert _main(_eval_args(spec, style, out)) == 0
            served = json.loads((out / "metrics.json").read_text())
            local = json.loads((runs / style / "metrics.json").read_text())
            assert served["benchmarks"]["gsm8k"]["accuracy"] == local["benchmarks"]["gsm8k"]["accuracy"]
            gens = [json.loads(x)["generation"] for x in (out / "outputs.jsonl").read_text().splitlines()]
            ref = [json.loads(x)["generation"] for x in (runs / style / "outputs.jsonl").read_text().splitlines()]
            assert gens == ref
            assert json.loads((out / "manifest.json").read_text())["engine"] == "OpenAIEngine"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
