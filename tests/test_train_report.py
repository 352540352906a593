"""`mathforge report runs/<train-run>`: the training report (curves, summary, config, samples) from a real
tiny training run, a stopped run, and the errors for folders that are neither kind or both."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.report import write_report  # noqa: E402
from mathforge.report_plots import plt, text_overlaps  # noqa: E402
from mathforge.train_report import load_train_run, plot_curves  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    from mathforge.train.config import config_from_dict
    from mathforge.train.loop import train

    out = tmp_path_factory.mktemp("train") / "tiny-sft"
    cfg = config_from_dict({
        "out_dir": str(out), "threads": 1, "progress": False, "log_every": 2, "checkpoint_every": 0, "seed": 0,
        "data": {"task": "arithmetic", "task_args": {"digits": 1, "n_ops": 1}, "n_train": 64, "n_eval": 8,
                 "seq_len": 64},
        "model": {"preset": "nano", "overrides": TINY_TRAIN_OVERRIDES},
        "optim": {"micro_batch_size": 4, "max_steps": 6, "lr": 3e-3},
        "eval": {"every": 3, "n_problems": 8, "max_new_tokens": 8},
    })
    train(cfg)
    return out


def test_training_report_has_curves_summary_config_and_samples(train_run, tmp_path):
    paths = write_report([train_run], out_dir=tmp_path / "r")
    assert [p.name for p in paths] == ["report.md", "report.html", "training_curves.png"]
    assert (tmp_path / "r" / "training_curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    md = (tmp_path / "r" / "report.md").read_text()
    page = (tmp_path / "r" / "report.html").read_text()
    assert md.startswith("# mathforge training report")
    rows = [json.loads(x) for x in (train_run / "metrics.jsonl").read_text().splitlines()]
    last_loss = [r["loss"] for r in rows if "loss" in r][-1]
    final = [r for r in rows if "eval_accuracy" in r][-1]
    summary = (f"| tiny-sft | sft | preset nano | arithmetic | finished at step 6 | {last_loss:.4f} | "
               f"{final['eval_loss']:.4f} | {100 * final['eval_accuracy']:.1f} "
               f"[{100 * final['eval_ci95_wilson'][0]:.1f}, {100 * final['eval_ci95_wilson'][1]:.1f}] (n=8, step 6) |")
    assert summary in md, md[:1500]
    assert "![Training curves](training_curves.png)" in md and "src='data:image/png;base64," in page
    assert "| optim.max_steps | 6 |" in md and "| data.task | arithmetic |" in md  # the resolved config
    # example generations from eval_samples.jsonl, each with its gold, extracted answer and verdict
    samples = [json.loads(x) for x in (train_run / "eval_samples.jsonl").read_text().splitlines()]
    s = samples[0]
    kind = "correct" if s["correct"] else ("wrong" if s["pred"] else "no answer extracted")
    assert f"**held-out #0: {kind}** (gold `{s['gold']}`, extracted `{s['pred'] or '-'}`, verdict {kind})" in md
    assert s["completion"] in md or len(s["completion"]) > 1200
    assert "not finished" not in md


def test_training_curves_panels_and_layout(train_run):
    run = load_train_run(train_run)
    fig = plot_curves([run, run])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss (token mean)", "held-out exact match (%), 95% interval", "learning rate",
                      "gradient norm (before clipping)"]
    acc_ax = fig.axes[1]
    steps, vals = acc_ax.lines[0].get_data()
    evals = [e for e in run.eval_rows if "eval_accuracy" in e]
    assert list(steps) == [e["step"] for e in evals] == [3, 6]
    assert list(vals) == [100 * e["eval_accuracy"] for e in evals]  # fractions in the log, % on the plot
    assert text_overlaps(fig) == []
    plt().close(fig)


def test_stopped_run_is_reported_as_not_finished(train_run, tmp_path):
    stopped = tmp_path / "stopped"
    shutil.copytree(train_run, stopped, ignore=shutil.ignore_patterns("model", "done.json", "eval_samples.jsonl"))
    lines = (stopped / "metrics.jsonl").read_text().splitlines()
    (stopped / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")  # stopped at step 4
    md = write_report([stopped], out_dir=tmp_path / "r")[0].read_text()
    assert "> **stopped: not finished: last logged step 4 of 6; the curves stop there.**" in md
    assert "No eval_samples.jsonl in this run folder" in md


def test_training_and_eval_folders_are_not_mixed(train_run, tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="a training run folder; report training runs and eval runs separately"):
        write_report([train_run, ev])


def test_cli_reports_a_training_run(train_run, tmp_path, capsys):
    from mathforge.cli import report as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(train_run), "--out", str(tmp_path / "r"), "--examples", "1"])
    assert cli.run(args) == 0
    assert str(tmp_path / "r" / "training_curves.png") in capsys.readouterr().out
    assert (tmp_path / "r" / "report.md").read_text().count("**held-out #") <= 3  # one per kind


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_training_report_renders_in_headless_chromium(train_run, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    write_report([train_run], out_dir=tmp_path / "r")
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,1400",
             "--hide-scrollbars"]
    res = subprocess.run([CHROMIUM, *flags, (tmp_path / "r" / "report.html").as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert shot.exists(), res.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    # the curves were decoded and painted: matplotlib's first line colour (#1f77b4) is on the page
    c0 = np.array([0x1F, 0x77, 0xB4]) / 255
    assert float((np.abs(pixels - c0).max(axis=2) < 0.03).mean()) > 0.0002  # thin lines: ~0.06% measured
    keep = Path("/tmp/mathforge_train_report_screenshot.png")  # for a human look
    shutil.copy(shot, keep)


def test_run_without_held_out_accuracy(train_run, tmp_path):
    """A run that logged no exact match (n_problems = 0, or a value objective) says so instead of an
    empty panel, and its summary shows no accuracy."""
    bare = tmp_path / "bare"
    shutil.copytree(train_run, bare, ignore=shutil.ignore_patterns("model", "eval_samples.jsonl"))
    rows = [r for r in (bare / "metrics.jsonl").read_text().splitlines() if '"eval_accuracy"' not in r]
    (bare / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    fig = plot_curves([load_train_run(bare)])
    assert any("no held-out exact match logged" in t.get_text() for t in fig.axes[1].texts)
    assert text_overlaps(fig) == []
    plt().close(fig)
    md = write_report([bare], out_dir=tmp_path / "r")[0].read_text()
    assert "| finished at step 6 |" in md and "| - | - |\n" in md  # no accuracy, no best model


def test_held_out_interval_keys_old_and_new():
    from mathforge.train_report import accuracy_percent, held_out_ci, held_out_n

    assert held_out_ci({"eval_ci95_wilson": [0.1, 0.3]}) == (0.1, 0.3)
    assert held_out_ci({"eval_ci_low": 0.1, "eval_ci_high": 0.3}) == (0.1, 0.3)  # logs before the key change
    assert held_out_ci({"eval_accuracy": 0.2}) is None
    assert held_out_n({"eval_n_problems": 8}) == 8 and held_out_n({"eval_n": 5}) == 5
    assert accuracy_percent([{"eval_accuracy": 0.5, "eval_ci95_wilson": [0.2, 0.8]}]) == 100.0
    assert accuracy_percent([{"eval_accuracy": 50.0}]) == 1.0
