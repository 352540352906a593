"""The quickstart's report (`mathforge quickstart`; SFT vs Masked Thought, Chen et al. 2024, then value-guided
search, TSMC of Feng et al. 2025): one page a newcomer reads in a minute: what was trained, on what, every
accuracy with its 95% Wilson interval on the same held-out problems, what search adds (or not, said as
measured), example solutions right and wrong, and the commands to run next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROWS = [("one_sample", "SFT, one sample at temperature {t} (mean over the {n})"),
        ("maj", "SFT, majority vote over {n} samples (maj@{n})"),
        ("bon", "SFT, best-of-{n} by the value model"),
        ("wvote", "SFT, weighted vote by the value model"),
        ("tsmc", "SFT, TSMC with the value model ({g} groups of {m} particles)"),
        ("pass", "SFT, any of the {n} samples right (pass@{n}: what a perfect verifier could pick)")]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(lo_hi: list[float]) -> str:
    return f"[{100 * lo_hi[0]:.1f}, {100 * lo_hi[1]:.1f}]"


def plot_accuracy(results: dict[str, dict[str, Any]], search: dict[str, Any], png: Path) -> Path:
    """Every figure of the report's main table as a bar with its 95% Wilson interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = search["n"]
    bars = [(f"{k.upper()}\ngreedy", r["accuracy"], r["ci95_wilson"]) for k, r in results.items()]
    names = {"one_sample": "1 sample", "maj": f"maj@{n}", "bon": f"best-of-{n}", "wvote": "weighted\nvote",
             "tsmc": "TSMC", "pass": f"pass@{n}"}
    bars += [(names[k], search["rows"][k]["accuracy"], search["rows"][k]["ci95_wilson"]) for k, _ in ROWS]
    fig, ax = plt.subplots(figsize=(8, 4))
    acc = [100 * a for _, a, _ in bars]
    err = [[a - 100 * ci[0] for a, (_, _, ci) in zip(acc, bars, strict=True)],
           [100 * ci[1] - a for a, (_, _, ci) in zip(acc, bars, strict=True)]]
    ax.bar(range(len(bars)), acc, yerr=err, capsize=5, color=["C0", "C1"] + ["C2"] * (len(bars) - 2))
    for i, (a, up) in enumerate(zip(acc, err[1], strict=True)):
        ax.text(i, a + up + 1.5, f"{a:.1f}", ha="center", va="bottom", fontsize=8)  # above the error bar
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"same {search['n_problems']} held-out problems (95% Wilson CI)")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def write_report(out_dir: Path, results: dict[str, dict[str, Any]], configs: dict[str, Any],
                 seconds: dict[str, float], n_params: int, search: dict[str, Any], timing: dict[str, float]) -> Path:
    out_dir = Path(out_dir)
    cfg, s = configs["sft"], search
    n, total = s["n"], s["n_problems"]
    rows, cost = s["rows"], s["cost"]
    lines = [
        "# mathforge quickstart: train, compare, search", "",
        f"**What happened.** A `{cfg.model.preset}` Llama ({n_params / 1e6:.2f}M parameters) was trained from scratch "
        f"on {cfg.data.n_train:,} generated step-by-step problems (`{cfg.data.task}` {json.dumps(cfg.data.task_args)}: "
        "one operation per step, steps separated by a blank line), twice from the same initial weights on the same data "
        f"order for {cfg.optim.max_steps} steps: plain SFT, and Masked Thought fine-tuning (MFT). Both were graded on "
        f"{total} held-out problems they never saw. The SFT model was then sampled {n} times per problem, and a value "
        f"model (the SFT trunk plus a scalar head, objective `{s['value_objective']}`, {s['value_steps']} steps) was "
        f"trained on {s['k']} graded samples of each of {s['value']['n_value_problems']} other problems; it scores the "
        "samples (best-of-N, weighted vote) and guides TSMC, which resamples partial solutions after every step. "
        f"Whole run: {_minutes(timing['wall_s'])} wall here; from the CPU time each process used, about "
        f"{_minutes(timing['idle_estimate_s'])} on 2 idle cores.", "",
        f"| on the same {total} held-out problems | accuracy | 95% CI | generated tokens / problem | wall time |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name.upper()}, greedy | {_pct(r['accuracy'])} ({round(r['accuracy'] * r['n_problems'])}/"
                     f"{r['n_problems']}) | {_ci(r['ci95_wilson'])} | | {seconds[name]:.0f} s training |")
    sample_cost = f"{cost['sample']['generated_tokens']:.0f} | {cost['sample']['wall_s']:.0f} s sampling"
    for key, label in ROWS:
        r = rows[key]
        count = f" ({r['correct']}/{total})" if "correct" in r else ""
        extra = {"one_sample": f"{cost['sample']['generated_tokens'] / n:.0f} | |",
                 "maj": sample_cost + " |", "pass": sample_cost + " |",
                 "bon": sample_cost + f" + {cost['value_scores']['wall_s']:.0f} s value scores |",
                 "wvote": sample_cost + f" + {cost['value_scores']['wall_s']:.0f} s value scores |",
                 "tsmc": f"{cost['tsmc']['generated_tokens']:.0f} (+{cost['tsmc']['value_tokens']:.0f} read by the "
                         f"value model) | {cost['tsmc']['wall_s']:.0f} s |"}[key]
        lines.append(f"| {label.format(n=n, t=s['temperature'], m=s['m'], g=n // s['m'])} | {_pct(r['accuracy'])}{count} | "
                     f"{_ci(r['ci95_wilson'])} | {extra}")
    lines += ["", "![accuracy](accuracy.png)", "", *_findings(results, s), "", *_examples(s), "",
              *_training_details(results, configs), "", *_next(out_dir, cfg)]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _minutes(secs: float) -> str:
    return f"{int(secs // 60)} min {secs % 60:.0f} s"


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _findings(results: dict[str, Any], s: dict[str, Any]) -> list[str]:
    rows, v, n = s["rows"], s["value"], s["n"]
    maj = rows["maj"]
    out = ["## What search adds, as measured", ""]
    sft, mft = results["sft"], results["mft"]
    out.append(f"- **MFT vs SFT**: {100 * (mft['accuracy'] - sft['accuracy']):+.1f} points greedy; the intervals "
               f"{'overlap, so this run does not separate them' if _overlap(mft['ci95_wilson'], sft['ci95_wilson']) else 'do not overlap'}. "
               "MFT is a regulariser; its paper's gains (+0.8 to +5.5 points on 7B models) come from many epochs over a "
               "fixed training set, while here each model sees under one epoch of generated problems.")
    out.append(f"- **Sampling and voting**: maj@{n} {_pct(maj['accuracy'])} against {_pct(rows['one_sample']['accuracy'])} "
               f"for one sample; pass@{n} {_pct(rows['pass']['accuracy'])} is the ceiling any way of choosing among "
               "these samples can reach.")
    for key, name in (("wvote", "weighted vote"), ("bon", f"best-of-{n}"), ("tsmc", "TSMC")):
        r = rows[key]
        out.append(f"- **{name} vs maj@{n}**: {100 * (r['accuracy'] - maj['accuracy']):+.1f} points "
                   f"({r['vs_maj']['only_this']} problems right only with {name}, {r['vs_maj']['only_maj']} only with "
                   "majority vote).")
    discriminates = v["auc_within"] == v["auc_within"] and v["auc_within"] >= 0.6
    out.append(f"- **The value model**: AUC of its final score against correctness on the held-out samples "
               f"{v['auc_pooled']:.2f} pooled over problems and {v['auc_within']:.2f} within a problem "
               f"(0.5 = chance; on its own held-out value data: {v['auc_value_data']:.2f}); mean score of right "
               f"samples {v['mean_v_right']:.3f}, of wrong ones {v['mean_v_wrong']:.3f}. "
               + ("It tells right from wrong solutions of the same problem to a degree, which is what best-of-N, "
                  "weighted vote and TSMC need." if discriminates else
                  "It does not tell right from wrong solutions of the same problem (it learned which problems are hard, "
                  "at best), so weighting by it or resampling with it cannot beat majority vote except by chance, and "
                  "best-of-N, which trusts it alone, gives up the vote. That is the finding of the full TSMC experiment "
                  "too (docs/tsmc.md): at this scale the value model, not the sampler, is the bottleneck."))
    return out


def _examples(s: dict[str, Any]) -> list[str]:
    out = ["## Example solutions (SFT samples, with the value model's score V)", "",
           "Right means the final answer matches; the steps are not graded, so a right answer can come from "
           "wrong steps (the value model is trained on these outcome labels too).", ""]
    for ex in s["examples"]:
        question = ex["question"].split("# Question", 1)[-1].split("# Solution", 1)[0].strip()
        out.append(f"`{question}` (answer {ex['gold']}):")
        out.append("")
        for kind in ("right", "wrong"):
            text = " | ".join(x for x in ex[kind]["text"].split("\n\n") if x.strip() and x.strip() != "# Answer")
            out.append(f"- {kind}, V = {ex[kind]['value']:.3f}: `{text}`")
        out.append("")
    return out


def _training_details(results: dict[str, Any], configs: dict[str, Any]) -> list[str]:
    cfg, mft = configs["sft"], configs["mft"]
    lines = ["## Training details", "",
             f"{cfg.optim.max_steps} steps of {cfg.optim.micro_batch_size * cfg.optim.grad_accum} packed rows x "
             f"{cfg.data.seq_len} tokens, lr {cfg.optim.lr} ({cfg.optim.schedule}), seed {cfg.seed}. MFT: "
             f"`{mft.mft.noise}` noise, p_max={mft.mft.p_max}, linear warm-up over 2/3 of the steps "
             "(docs/methods/mft.md §a).", "",
             "| objective | final train loss | held-out loss | tokens/s |", "|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['train_loss']:.4f} | {r['eval_loss']:.4f} | {r['tok_per_s'] or 0:,.0f} |")
    lines += ["", "![loss curves](loss_curves.png)", "",
              "Grading: answers extracted and compared by `mathforge.grading` (votes are over grader-equivalence "
              "classes). Files: `sft/`, `mft/` (configs, metrics, `eval_samples.jsonl`), `search/sample/` and "
              "`search/scored/` (every sample with its grade and value), `search/tsmc/` (particles, weights, "
              "lineage), `search/value/` (the value model), `training/report.html` (both runs' curves and "
              "example generations)."]
    return lines


def _next(out_dir: Path, cfg: Any) -> list[str]:
    args = json.dumps(cfg.data.task_args)
    return ["## What to run next", "", "```bash",
            f"mathforge quickstart --out {out_dir.parent / 'quickstart-seed1'} --seed 1   # another seed: how much the figures move",
            f"mathforge eval --strategy tsmc --model {out_dir}/sft/model --value-model {out_dir}/search/value/model \\",
            f"    --task {cfg.data.task} --task-args '{args}' --task-seed {cfg.seed} --limit {cfg.eval.n_problems} \\\n"
            f"    --max-new-tokens {cfg.eval.max_new_tokens} --n 32"
            "   # TSMC at a larger budget",
            "mathforge tsmc-experiment --out runs/tsmc    # the full search experiment (~1 hour): N = 4..32, CTL and BCE",
            "mathforge seeds recipes/quickstart.toml --seeds 0,1,2 --compare objective=mft --out runs/seeds-mft"
            "   # SFT vs MFT over seeds, paired",
            "```", "", f"Reproduce this report: `mathforge quickstart --out {out_dir} --seed {cfg.seed}`"]
