"""TSMC (docs/methods/tsmc.md §e.8): the resampler's offspring counts, the SMC evidence estimate on a toy
generator whose probability of a correct answer is known exactly, and TSMC with a constant value
model against plain sampling."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pytest

torch = pytest.importorskip("torch")

from mathforge.infer.search.resample import RESAMPLERS, resample  # noqa: E402
from mathforge.infer.search.tsmc import TSMCConfig, final_weights, run_tsmc  # noqa: E402


@pytest.mark.parametrize("scheme", RESAMPLERS)
def test_resampling_offspring_counts(scheme):
    """Every scheme gives expected offspring counts M*q. Systematic and residual give at least
    floor(M*q); systematic exactly floor or ceil. Stratified schemes (ordered or not) draw one
    independent uniform per stratum, so a particle whose cdf interval touches three strata can get
    ceil(M*q) + 1: they promise |count - M*q| < 2, and this probability vector shows the overshoot."""
    gen = torch.Generator().manual_seed(0)
    m, trials = 6, 4000
    probs = torch.tensor([0.05, 0.4, 0.01, 0.24, 0.3, 0.0])
    total = torch.zeros(m)
    over_ceil = 0
    for _ in range(trials):
        anc = resample(probs, gen, scheme)
        assert len(anc) == m
        counts = torch.bincount(torch.tensor(anc), minlength=m).float()
        if scheme == "systematic":
            assert torch.all(counts >= torch.floor(m * probs)) and torch.all(counts <= torch.ceil(m * probs))
        if scheme == "residual":
            assert torch.all(counts >= torch.floor(m * probs))
        if scheme in ("ordered_stratified", "stratified"):
            assert torch.all((counts - m * probs).abs() < 2)
            over_ceil += int(torch.any(counts > torch.ceil(m * probs)))
        assert counts[5] == 0  # zero weight: never an ancestor
        total += counts
    mean = total / trials
    # expected counts M*q, within 5 standard errors of a count mean (sd <= sqrt(M)/2 per trial)
    assert torch.allclose(mean, m * probs, atol=5 * math.sqrt(m) / 2 / math.sqrt(trials))
    if scheme == "ordered_stratified":
        assert over_ceil > 0  # the documented overshoot really happens (q=0.3 of M=6 gets 3 copies)


def test_ordered_stratified_counts_exactly_on_a_dyadic_example():
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        anc = resample(torch.tensor([0.5, 0.25, 0.25, 0.0]), gen)
        assert sorted(anc) == [0, 0, 1, 2]  # M*q integers: exactly M*q offspring each


# ---------------------------------------------------------------------------------------------- toy
P_BIT = [0.3, 0.6, 0.5]  # P(bit_t = 1) at step t
P_TRUNC = 0.1  # chance a particle runs out of budget at its second step
TARGET = 2  # correct iff the bits sum to TARGET


def exact_p_correct() -> float:
    total = 0.0
    for bits in itertools.product([0, 1], repeat=3):
        pr = math.prod(p if b else 1 - p for p, b in zip(P_BIT, bits, strict=True))
        total += pr * (sum(bits) == TARGET)
    return total * (1 - P_TRUNC)


@dataclass
class ToyRow:
    key: tuple
    bits: list[int] = field(default_factory=list)
    finish: str | None = None
    begun: bool = False
    moved: bool = False

    def copy(self):
        return ToyRow(self.key, list(self.bits), self.finish, self.begun, self.moved)


class ToyBackend:
    """Three one-bit steps per particle; an imperfect twist for partial sums, the exact outcome at EOS."""

    def __init__(self, n_problems: int, n: int, seed: int = 0, twist: float = 1.0):
        self.rows = [ToyRow((p, j)) for p in range(n_problems) for j in range(n)]
        self.gens = {r.key: torch.Generator().manual_seed(seed * 100003 + 7919 * r.key[0] + r.key[1])
                     for r in self.rows}
        self.twist = twist
        self.generated = 0

    def _step(self, r: ToyRow) -> None:
        g = self.gens[r.key]
        t = len(r.bits)
        if t == 1 and float(torch.rand(1, generator=g)) < P_TRUNC:
            r.finish = "length"
            return
        r.bits.append(int(float(torch.rand(1, generator=g)) < P_BIT[t]))
        self.generated += 1
        if len(r.bits) == 3:
            r.finish = "eos"

    def begin(self, rows):
        for i in rows:
            self.rows[i].begun, self.rows[i].moved = True, False

    def extend(self, allow, groups):
        # every begun row runs to its boundary at once, so every group is ready
        for i, r in enumerate(self.rows):
            if r.finish is not None or not r.begun:
                continue
            r.begun, r.moved = False, True
            self._step(r)
            while not allow[i] and r.finish is None:
                self._step(r)
        return list(range(len(groups)))

    def moved(self, i):
        return self.rows[i].moved

    def score(self, rows):
        out = []
        for i in rows:
            r = self.rows[i]
            if r.finish == "eos":
                out.append(30.0 if sum(r.bits) == TARGET else -30.0)
            else:  # a twist that likes partial sums close to TARGET, not the true value
                out.append(self.twist * (1.0 - abs(TARGET - 1 - sum(r.bits))))
        return torch.tensor(out)

    def select(self, indices, keys):
        self.rows = [self.rows[j].copy() for j in indices]
        for r, k in zip(self.rows, keys, strict=True):
            r.key = k


@pytest.mark.parametrize("stop_steps, ess_threshold", [(5, 1.0), (1, 1.0), (5, 0.6)])
def test_tsmc_evidence_converges_to_the_exact_probability(stop_steps, ess_threshold):
    """With V_T = r at the end, E[Z_hat] = P(correct) for any twist: TSMC's weighted estimate is unbiased."""
    problems, m = 3000, 4
    cfg = TSMCConfig(n=m, m=m, stop_steps=stop_steps, ess_threshold=ess_threshold, seed=5)
    backend = ToyBackend(problems, m, seed=stop_steps)
    groups = run_tsmc(backend, problems, cfg)
    z = torch.tensor([math.exp(g.log_z) for g in groups], dtype=torch.float64)
    exact = exact_p_correct()
    stderr = float(z.std()) / math.sqrt(len(z))
    assert abs(float(z.mean()) - exact) < 4 * stderr, (float(z.mean()), exact, stderr)
    assert any(g.resamplings for g in groups)
    # final weights (V_T = r) put all of a group's vote on its correct particles whenever it has one
    for g in groups:
        correct = [backend.rows[r].finish == "eos" and sum(backend.rows[r].bits) == TARGET for r in g.rows]
        w = final_weights(g, [backend.rows[r].finish == "length" for r in g.rows])
        if any(correct):
            assert sum(wi for wi, c in zip(w, correct, strict=True) if c) > 0.999


def test_tsmc_bookkeeping():
    cfg = TSMCConfig(n=8, m=4, stop_steps=2, seed=0)
    backend = ToyBackend(2, 8)
    groups = run_tsmc(backend, 2, cfg)
    assert [(g.problem, g.group) for g in groups] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for g in groups:
        assert g.rows == list(range(g.problem * 8 + g.group * 4, g.problem * 8 + g.group * 4 + 4))
        assert g.resamplings == len(g.ancestors) <= 2
        for p in g.particles:
            assert len(p.weights) == len(p.values) <= g.rounds
            assert len(p.lineage) == g.resamplings
        for r in g.rows:  # a group never mixes problems
            assert backend.rows[r].key[0] == g.problem


def test_bad_tsmc_config():
    with pytest.raises(ValueError, match="not a multiple"):
        TSMCConfig(n=6, m=4)
    with pytest.raises(ValueError, match="resampler"):
        TSMCConfig(resampler="bogus")


# ------------------------------------------------------------------------------------ on a real LM
@pytest.fixture(scope="module")
def lm():
    from tiny_lm import tiny_model, tiny_tokenizer

    from mathforge.models.value import ValueModel

    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    model = tiny_model(tok, init=0.05)
    return model, tok, ValueModel.from_generator(model)  # zero head: a constant value model


def chi2_two_sample(a: list[int], b: list[int]) -> tuple[float, int]:
    """Pearson chi-square statistic and degrees of freedom of two samples of categories."""
    cats = sorted(set(a) | set(b))
    stat = 0.0
    for c in cats:
        oa, ob = a.count(c), b.count(c)
        ea, eb = (oa + ob) * len(a) / (len(a) + len(b)), (oa + ob) * len(b) / (len(a) + len(b))
        stat += (oa - ea) ** 2 / ea + (ob - eb) ** 2 / eb
    return stat, len(cats) - 1


def test_constant_value_tsmc_samples_like_plain_sampling(lm):
    """Uniform weights make every resampling a permutation: the particles are plain samples.
    Statistic: the number of spaces (the step delimiter here) in each sample, a whole-trajectory property, 2 x 480 samples, two-sample
    chi-square; tolerance: below the 0.999 quantile (chi2 with df <= 8 stays below 26.2)."""
    from mathforge.infer.search import SearchConfig, Searcher
    from mathforge.infer.types import SamplingParams

    model, tok, value = lm
    params = SamplingParams(max_new_tokens=24, temperature=1.0, seed=11)
    prompts = [tok(p)["input_ids"] for p in ("The sum", "Tom has 3 apples", "Question: What is")]
    steps = {}
    for strategy in ("sample", "tsmc"):
        cfg = SearchConfig(strategy=strategy, n=160, m=4, stop_steps=3, delimiter=" ", seed=2, answer_header="#@")
        res = Searcher(model, tok, cfg, value_model=value, params=params, answer_marker=None).run(prompts)
        steps[strategy] = [min(s["text"].count(" "), 8) for r in res for s in r.samples]
        if strategy == "tsmc":
            for r in res:
                for s in r.samples:  # constant twist: every non-truncated particle has the same vote weight
                    assert s["vote_weight"] == pytest.approx(0.0 if s["finish"] == "length" else s["vote_weight"])
                assert any(g["resamplings"] for g in r.extra["groups"])
    stat, df = chi2_two_sample(steps["sample"], steps["tsmc"])
    assert df <= 8 and stat < 26.2, (stat, df)
    assert len(set(steps["tsmc"])) > 2  # the statistic has something to compare


def test_group_rounds_do_not_change_the_result(lm):
    """Each group resamples as soon as its own particles are at a boundary (min_ready=0), or all
    groups wait for one another (min_ready=1, the paper's batch-synchronous rounds): the particles,
    weights and genealogies are identical, since groups do not interact and every random stream is
    keyed by (problem, particle) or (problem, group)."""
    from mathforge.infer.search import SearchConfig, Searcher
    from mathforge.infer.types import SamplingParams
    from mathforge.models.value import ValueModel

    model, tok, _ = lm
    value = ValueModel.from_generator(model, init="random", seed=4)  # non-constant weights
    params = SamplingParams(max_new_tokens=24, temperature=1.0, seed=5)
    prompts = [tok(p)["input_ids"] for p in ("The sum", "Tom has 3 apples", "Question: What is")]
    cfg = SearchConfig(strategy="tsmc", n=8, m=4, stop_steps=3, delimiter=" ", seed=2, answer_header="#@")
    out = []
    for min_ready in (0.0, 1.0):
        res = Searcher(model, tok, cfg, value_model=value, params=params, answer_marker=None,
                       min_ready=min_ready).run(prompts)
        out.append([([s["text"] for s in r.samples], [s["weights"] for s in r.samples], r.extra["groups"]) for r in res])
        assert any(g["resamplings"] for r in res for g in r.extra["groups"])
    for (t0, w0, g0), (t1, w1, g1) in zip(*out, strict=True):
        assert t0 == t1 and [g["ancestors"] for g in g0] == [g["ancestors"] for g in g1]
        assert all(a == pytest.approx(b, rel=1e-4) for a, b in zip(w0, w1, strict=True))


def test_strategies_share_samples_and_report_cost(lm):
    from mathforge.infer.search import SearchConfig, Searcher
    from mathforge.infer.types import SamplingParams

    model, tok, value = lm
    params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=3)
    prompts = [tok(p)["input_ids"] for p in ("The sum", "Tom has")]
    texts = {}
    for strategy in ("sample", "bon", "wvote", "beam", "tsmc"):
        cfg = SearchConfig(strategy=strategy, n=4, m=2, delimiter=" ", answer_header="#@")
        res = Searcher(model, tok, cfg, value_model=value, params=params, answer_marker=None).run(prompts)
        assert len(res) == 2 and all(len(r.samples) == 4 for r in res)
        for r in res:
            assert r.cost["generated_tokens"] > 0 and r.cost["wall_s"] > 0
            assert (r.cost["value_tokens"] > 0) == (strategy != "sample")
        texts[strategy] = [[s["text"] for s in r.samples] for r in res]
    assert texts["sample"] == texts["bon"] == texts["wvote"]  # the same seed: the same N samples


def test_vote_over_equivalence_classes():
    from mathforge.infer.search import vote

    idx, scores = vote(["1/2", "0.5", "3", None, "3"], [0.2, 0.2, 0.3, 0.9, 0.05])
    assert idx == 0 and scores[1] == pytest.approx(0.4)  # 1/2 and 0.5 are one class
    idx, _ = vote(["4", "5", "5", "4"], [1, 1, 1, 1])
    assert idx == 0  # a tie: equal counts, the earliest sample wins
    assert vote([None, None], [1, 1])[0] is None
