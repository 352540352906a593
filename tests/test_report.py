"""Reports: report.md + self-contained report.html with embedded PNG plots; rendered in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mathforge.evaluate import EvalConfig, evaluate
from mathforge.infer.types import Completion
from mathforge.report import load_run, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Engine:
    """MATH: right on all but every `period`-th sample (by call order); GSM8K: always answers 18."""

    def __init__(self, period: int):
        from mathforge.data import load_benchmark

        self.period, self.count = period, 0
        self.golds = {p.question: p.answer for p in load_benchmark("math", limit=12)}

    def generate(self, prompts, *, n=1, params=None, stop=None):
        out = []
        for prompt in prompts:
            gold = next((a for q, a in self.golds.items() if q in prompt), None)
            row = []
            for _ in range(n):
                self.count += 1
                ans = "18" if gold is None else gold if self.count % self.period else "123456"
                row.append(Completion(f"Work. The answer is $\\boxed{{{ans}}}$.", n_tokens=9, finish_reason="stop"))
            out.append(row)
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for name, period in (("model-a", 2), ("model-b", 3)):
        cfg = EvalConfig(model=name, benchmarks=["math", "gsm8k"] if name == "model-a" else ["math"],
                         out_dir=str(root / name), limit=12, n=4, temperature=0.7, workers=1)
        evaluate(cfg, _Engine(period))
        dirs.append(root / name)
    return dirs


def _data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


def test_report_files_tables_and_embedded_plots(runs, tmp_path):
    paths = write_report(runs, out_dir=tmp_path / "rep")
    names = {p.name for p in paths}
    assert {"report.md", "report.html", "accuracy.png", "accuracy_vs_k.png", "accuracy_by_level.png"} <= names
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| math | model-a |" in md and "| math | model-b |" in md and "| gsm8k | model-a |" in md
    assert "![Accuracy by benchmark](accuracy.png)" in md
    for must in ("Versions", "sympy", "Data files", "grader", "temperature"):
        assert must in md
    page = (tmp_path / "rep" / "report.html").read_text()
    images = _data_uris(page)
    assert len(images) == 4 and all(img.startswith(PNG_MAGIC) for img in images)
    assert images[0] == (tmp_path / "rep" / "accuracy.png").read_bytes()
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"(src|href)=['\"](?!data:)", page)
    a = load_run(runs[0]).metrics["benchmarks"]["math"]
    assert f"<td>{a['accuracy']:.1f}</td>" in page


def test_report_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        write_report([tmp_path])
    (tmp_path / "metrics.json").write_text("{bad")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match=r"metrics.json:1: malformed JSON"):
        load_run(tmp_path)


def test_report_cli(runs, tmp_path):
    import argparse

    from mathforge.cli import report as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert cli.run(parser.parse_args(["report", str(runs[0]), "--out", str(tmp_path / "r")])) == 0
    assert (tmp_path / "r" / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(tmp_path: Path, *extra: str, url: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *extra, url], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    write_report(runs, out_dir=tmp_path / "rep")
    url = (tmp_path / "rep" / "report.html").as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url=url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    imgs = re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom.stdout)
    assert len(imgs) == 4, dom.stdout[:500]
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars", url=url)
    assert shot.exists(), res.stderr[-2000:]
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] == 2000 and pixels.shape[1] == 1200
    # Non-blank: many distinct colours (plot bars, text), and a good share of non-white pixels.
    distinct = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    non_white = float((pixels.mean(axis=2) < 0.95).mean())
    assert distinct > 50 and non_white > 0.03, (distinct, non_white)
    # The embedded plots were decoded and painted: matplotlib's first bar colour (#1f77b4) covers a
    # sizeable area, and nothing else on the page uses it.
    c0 = np.array([0x1F, 0x77, 0xB4]) / 255
    assert float((np.abs(pixels - c0).max(axis=2) < 0.03).mean()) > 0.01
    keep = Path("/tmp/mathforge_report_screenshot.png")  # for a human look; harmless when it fails
    shutil.copy(shot, keep) if keep.parent.exists() else None


def test_runs_graded_under_different_profiles_are_flagged(runs, tmp_path):
    import json

    same = write_report(runs, out_dir=tmp_path / "same")[0].read_text()
    assert "Warning: these runs were graded under different" not in same
    m = load_run(runs[0]).metrics["benchmarks"]["math"]
    assert f"| {m['accuracy']:.1f} | [{m['ci95_wilson'][0]:.1f}, {m['ci95_wilson'][1]:.1f}] | " \
           f"{m['verdicts']['wrong']} | {m['verdicts']['timeout']} |" in same
    other = tmp_path / "model-c"
    shutil.copytree(runs[1], other)
    for name, edit in (("metrics.json", lambda d: d["grading"].update(profile="harness")),
                       ("manifest.json", lambda d: d.update(profile="harness"))):
        data = json.loads((other / name).read_text())
        edit(data)
        (other / name).write_text(json.dumps(data))
    write_report([runs[0], other], out_dir=tmp_path / "mixed")
    md = (tmp_path / "mixed" / "report.md").read_text()
    page = (tmp_path / "mixed" / "report.html").read_text()
    line = "different grading profiles (model-a: default, model-c: harness)"
    assert line in md and line in page and "class='warn'" in page
    assert md.index(line) < md.index("## Results")  # before any number
