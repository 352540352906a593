"""Reports that explain the model: example generations, warnings when runs cover different problems,
plots whose texts do not overlap and whose 0% bars show, the training-run report, and the pages as
headless Chromium renders them (no horizontal scrolling, plots painted)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mathforge.evaluate import EvalConfig, evaluate
from mathforge.infer.types import Completion
from mathforge.report import load_run, write_report
from mathforge.report_plots import plot_accuracy, plot_breakdown, plot_vs_k, plt, text_overlaps


class _Engine:
    """GSM8K: problem i gets its gold answer when i % 3 == 0, no answer at all when i % 3 == 1, and a
    wrong number otherwise. MATH: always wrong (so a run has 0% bars)."""

    def __init__(self):
        from mathforge.data import load_benchmark

        self.gold = {p.question: (i, p.answer) for i, p in enumerate(load_benchmark("gsm8k", limit=12))}

    def generate(self, prompts, *, n=1, params=None, stop=None):
        out = []
        for prompt in prompts:
            i, gold = next(((i, a) for q, (i, a) in self.gold.items() if q in prompt), (None, None))
            if i is None:
                text = "So the result is \\boxed{123456}."
            elif i % 3 == 0:
                text = f"Adding up step by step gives {gold}. The answer is {gold}."
            elif i % 3 == 1:
                text = "I am not sure how to go on."
            else:
                text = "The answer is 987654."
            out.append([Completion(text, n_tokens=9, finish_reason="stop")] * n)
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    dirs = {}
    for name, benches, limit in (("full", ["gsm8k", "math"], 12), ("small", ["gsm8k"], 6)):
        cfg = EvalConfig(model=name, benchmarks=benches, out_dir=str(root / name), limit=limit, workers=1)
        evaluate(cfg, _Engine())
        dirs[name] = root / name
    return dirs


def _first_samples(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "outputs.jsonl").read_text().splitlines()]
    return [r for r in rows if r["sample_id"] == 0]


def test_examples_show_right_and_wrong_with_extracted_answer_and_verdict(runs, tmp_path):
    write_report([runs["full"]], out_dir=tmp_path / "r", examples=2)
    md = (tmp_path / "r" / "report.md").read_text()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "## Example generations" in md
    first = _first_samples(runs["full"])
    correct = [r for r in first if r["dataset"] == "gsm8k" and r["verdict"] == "correct"]
    wrong = [r for r in first if r["dataset"] == "gsm8k" and r["verdict"] == "wrong" and r["extracted"]]
    none = [r for r in first if r["dataset"] == "gsm8k" and not r["extracted"]]
    assert len(correct) >= 2 and len(wrong) >= 2 and len(none) >= 2
    for r, kind in ((correct[0], "correct"), (correct[1], "correct"), (wrong[0], "wrong"),
                    (none[0], "no answer extracted")):
        extracted = r["extracted"] or "-"
        head = f"**gsm8k #{r['idx']}: {kind}** (gold `{r['gold_raw']}`, extracted `{extracted}`, verdict {r['verdict']}"
        assert head in md, head
        assert r["generation"] in md
    # two per kind, not more: the third correct problem is not shown
    assert len(correct) < 3 or f"**gsm8k #{correct[2]['idx']}: correct**" not in md
    assert page.count("<details open class='ex ok'>") == 2  # one run: opened; gsm8k has 2 correct shown
    assert "class='ex bad'" in page and "I am not sure how to go on." in page
    no_examples = write_report([runs["full"]], out_dir=tmp_path / "n", examples=0)[0].read_text()
    assert "Example generations" not in no_examples


def test_long_generations_are_cut_and_escaped(tmp_path):
    from mathforge.report_examples import Example, examples_html, examples_md

    e = Example("b", "0", "wrong", "Q <b>", "1", "x" * 50 + "<script>", "2", "wrong")
    assert "[... 8 more characters]" in examples_md([e], max_chars=50)
    page = examples_html([e], max_chars=100)
    assert "&lt;script&gt;" in page and "<script>" not in page and "Q &lt;b&gt;" in page


def test_runs_on_different_problems_are_flagged(runs, tmp_path):
    md = write_report([runs["full"], runs["small"]], out_dir=tmp_path / "r")[0].read_text()
    line = ("Warning: gsm8k was evaluated on different problems in these runs (full: 12 problems, small: 6 "
            "problems); their gsm8k accuracies are not comparable.")
    assert line in md and md.index(line) < md.index("## Results")
    assert "cover different benchmarks (full: gsm8k, math; small: gsm8k)" in md
    # same problems, same benchmarks: no such warning
    same = write_report([runs["full"], runs["full"]], out_dir=tmp_path / "s")[0].read_text()
    assert "different problems" not in same and "different benchmarks" not in same


def test_same_count_but_other_problems_are_flagged(runs, tmp_path):
    """Equal problem counts do not make equal problem sets: the manifest's problem hash decides."""
    other = tmp_path / "other"
    shutil.copytree(runs["small"], other)
    man = json.loads((other / "manifest.json").read_text())
    man["data"]["gsm8k"]["problems_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(man))
    md = write_report([runs["small"], other], out_dir=tmp_path / "r")[0].read_text()
    assert "gsm8k was evaluated on different problems" in md


# ------------------------------------------------------------------ plots


def _many_runs(runs) -> list:
    """The fixture runs plus a synthetic one with many benchmarks and long subject names, the layout
    that made titles and tick labels collide."""
    a = load_run(runs["full"])
    b = load_run(runs["small"])
    c = load_run(runs["full"])
    c.label = "a-rather-long-run-label/model-cot-4shot"
    m = json.loads(json.dumps(a.metrics["benchmarks"]["math"]))
    types = ["Counting & Probability", "Intermediate Algebra", "Common-Division", "Precalculus",
             "Number Theory", "Prealgebra", "Geometry"]
    m["by_type"] = {t: {"n": 3, "correct": i % 3, "accuracy": [0.0, 33.3, 100.0][i % 3]} for i, t in enumerate(types)}
    for name in ("svamp", "math500", "minerva_math", "olympiadbench"):
        c.metrics["benchmarks"][name] = m
    return [a, b, c]


def test_plots_have_no_overlapping_texts(runs):
    many = _many_runs(runs)
    figures = [plot_accuracy(many), plot_vs_k(many), plot_breakdown(many, "by_level", "accuracy by level"),
               plot_breakdown(many, "by_type", "accuracy by type"), plot_accuracy(many[:1]), plot_vs_k(many[1:2])]
    for fig in figures:
        assert text_overlaps(fig) == [], fig.axes[0].get_title()
        plt().close(fig)


def test_overlap_check_finds_colliding_texts():
    """The layout check itself: stacked panels without a layout engine and long rotated tick labels
    put the lower title on the upper panel's tick labels, as the old breakdown plot did."""
    fig, axes = plt().subplots(2, 1, figsize=(4, 3))
    for ax in axes:
        ax.bar(range(3), [1, 2, 3])
        ax.set_xticks(range(3), ["Counting & Probability", "Intermediate Algebra", "Common-Division"], rotation=20)
        ax.set_title("math500: accuracy by type")
    assert text_overlaps(fig)
    plt().close(fig)


def test_zero_percent_bars_show_and_missing_ones_say_na(runs):
    fig = plot_accuracy([load_run(runs["full"]), load_run(runs["small"])])
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["gsm8k", "math"]
    texts = [t.get_text() for t in ax.texts]
    assert "0.0" in texts and "n/a" in texts  # full scored 0 on math; small did not run math
    # the 0% bar of run "full" (colour C0) is drawn as a thick line at the axis, over math's position
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    zero_lines = [c for c in ax.collections if isinstance(c, LineCollection)
                  and tuple(c.get_colors()[0]) == to_rgba("C0")]
    assert zero_lines and all(seg[0][1] == 0 for c in zero_lines for seg in c.get_segments())
    xs = [seg[0][0] for c in zero_lines for seg in c.get_segments()]
    assert all(0.5 < x < 1.5 for x in xs), xs
    assert zero_lines[0].get_linewidth()[0] >= 3
    plt().close(fig)


def test_plot_files_are_written(runs, tmp_path):
    paths = write_report([runs["full"], runs["small"]], out_dir=tmp_path / "r")
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.name for p in pngs} >= {"accuracy.png", "accuracy_vs_k.png", "accuracy_by_level.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and p.stat().st_size > 5000 for p in pngs)


# ------------------------------------------------------------------ headless browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _page_width(tmp_path: Path, html_file: Path, width: int) -> int:
    """The page's scroll width in Chromium at `width` px: a script added to a copy writes it into the DOM."""
    probe = html_file.with_name("probe.html")
    probe.write_text(html_file.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-sw', document.documentElement.scrollWidth)</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1000", "--hide-scrollbars"]
    res = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'data-sw="(\d+)"', res.stdout)
    assert m, res.stderr[-2000:]
    return int(m.group(1))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_page_does_not_scroll_sideways(runs, tmp_path):
    """The trial's 4-run page scrolled horizontally at 1280 px: wide tables now scroll inside their box."""
    many = [runs["full"], runs["small"], runs["full"], runs["small"]]
    write_report(many, out_dir=tmp_path / "r")
    assert _page_width(tmp_path, tmp_path / "r" / "report.html", 1280) <= 1280
