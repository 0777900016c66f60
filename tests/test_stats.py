"""stats.py: McNemar and the paired bootstrap by hand, pass@k against brute force, Holm on a textbook example, the
hierarchical bootstrap."""

import itertools
import time

import numpy as np
import pytest

import stats


def test_mcnemar_exact_hand_computed():
    assert stats.mcnemar_exact(1, 9) == pytest.approx(0.021484375, abs=1e-15)  # 2 * (1 + 10) / 2**10
    assert stats.mcnemar_exact(9, 1) == pytest.approx(0.021484375, abs=1e-15)
    assert stats.mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert stats.mcnemar_exact(3, 3) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_paired_bootstrap_seeded():
    # two items with diffs 1 and 0: bootstrap means are 0, .5, 1 with probabilities 1/4, 1/2, 1/4;
    # |mean - .5| >= .5 has probability 1/2, and the 95% percentile interval is [0, 1]
    first = stats.paired_bootstrap([1.0, 0.0], samples=10000, seed=0)
    assert first == stats.paired_bootstrap([1.0, 0.0], samples=10000, seed=0)
    assert first["delta"] == 0.5
    assert first["p"] == pytest.approx(0.5, abs=0.02)
    assert first["ci95"] == (0.0, 1.0)
    # a constant improvement never crosses 0: the smallest p the test can give
    same = stats.paired_bootstrap([0.5] * 10, samples=999, seed=1)
    assert same["p"] == pytest.approx(1 / 1000) and same["ci95"] == pytest.approx((0.5, 0.5))
    assert stats.paired_bootstrap([1.0, -1.0, 0.0], samples=200, seed=0)["p"] == 1.0


def brute_pass_at_k(n, c, k):
    """Share of the k-subsets of n samples (c of them correct) that hold at least one correct one."""
    subsets = list(itertools.combinations([True] * c + [False] * (n - c), k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_pass_at_k_known_values():
    for k in (1, 2, 4, 8, 16):
        assert stats.pass_at_k(16, 0, k) == 0.0
        assert stats.pass_at_k(16, 16, k) == 1.0
    assert stats.pass_at_k(2, 1, 1) == pytest.approx(0.5)
    assert stats.pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the plain accuracy
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert stats.pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)
    assert 0.999 < stats.pass_at_k(1000, 10, 500) <= 1.0  # no overflow where C(1000, 500) would
    assert stats.mean_pass_at_k([(4, 0), (4, 1), (4, 4)], 1) == pytest.approx((0 + 0.25 + 1) / 3)
    assert stats.mean_pass_at_k([(4, 0), (4, 1), (4, 4)], 4) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        stats.pass_at_k(4, 1, 5)


def test_holm_textbook():
    # Holm (1979)-style example: sorted p .01 .02 .03 .04 .05 -> x5, x4, x3, x2, x1 = .05 .08 .09 .08 .05,
    # then made monotone: .05 .08 .09 .09 .09
    p = [0.04, 0.01, 0.05, 0.03, 0.02]
    assert stats.holm(p) == pytest.approx([0.09, 0.05, 0.09, 0.09, 0.08])
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    assert stats.holm([0.01]) == [0.01]
    assert stats.holm([]) == []
    assert stats.holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])  # ties


def synthetic(rng, seeds, items, effect=0.1, seed_sd=0.03):
    """Per-seed paired diffs of two greedy arms: b correct w.p. .5, a w.p. .5 + effect + seed shift."""
    out = []
    for _ in range(seeds):
        shift = rng.normal(0, seed_sd)
        a = rng.random(items) < 0.5 + effect + shift
        b = rng.random(items) < 0.5
        out.append(a.astype(float) - b)
    return out


def test_hierarchical_bootstrap_covers_and_shrinks():
    rng = np.random.default_rng(1)
    covered, widths = 0, {}
    for trial in range(40):
        r = stats.hierarchical_bootstrap_diff(synthetic(rng, 5, 300), samples=1000, seed=trial)
        covered += r["ci95"][0] <= 0.1 <= r["ci95"][1]
    assert covered >= 34  # nominal 95%; with 5 seeds the seed level is coarse, so allow some slack
    for items in (100, 3000):
        r = stats.hierarchical_bootstrap_diff(synthetic(rng, 5, items, seed_sd=0.0), samples=2000)
        widths[items] = r["ci95"][1] - r["ci95"][0]
        assert r["p"] < 0.05 if items == 3000 else True
    assert widths[3000] < widths[100] / 3  # ~sqrt(30) narrower without seed-level variation
    r = stats.hierarchical_bootstrap_diff([np.ones(50), np.zeros(50)], samples=2000)
    assert r["delta"] == 0.5 and r["ci95"] == (0.0, 1.0)  # all the spread is between seeds
    assert r["seeds"] == 2 and r["items"] == [50, 50]


def test_hierarchical_bootstrap_one_seed_is_item_bootstrap():
    diffs = np.random.default_rng(0).choice([-1.0, 0.0, 1.0], size=200, p=[0.2, 0.5, 0.3])
    h = stats.hierarchical_bootstrap_diff([diffs], samples=20000, seed=3)
    p = stats.paired_bootstrap(diffs, samples=20000, seed=3)
    assert h["delta"] == pytest.approx(p["delta"])
    assert h["ci95"] == pytest.approx(p["ci95"], abs=0.01)
    assert h["p"] == pytest.approx(p["p"], abs=0.02)
    # many distinct values take the gather path instead of the multinomial one: same distribution
    cont = np.random.default_rng(1).normal(0.1, 1, size=300)
    hc = stats.hierarchical_bootstrap_diff([cont], samples=20000, seed=0)
    pc = stats.paired_bootstrap(cont, samples=20000, seed=0)
    assert hc["ci95"] == pytest.approx(pc["ci95"], abs=0.01)
    assert stats.hierarchical_bootstrap_diff([diffs], samples=500, seed=3) == \
        stats.hierarchical_bootstrap_diff([diffs], samples=500, seed=3)
    assert stats.hierarchical_bootstrap_diff([np.zeros(10)], samples=99)["p"] == 1.0
    with pytest.raises(ValueError):
        stats.hierarchical_bootstrap_diff([np.zeros(10), []])


def test_hierarchical_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    greedy = [rng.choice([-1.0, 0.0, 1.0], size=1000) for _ in range(5)]
    sampled = [rng.integers(-16, 17, size=1000) / 16 for _ in range(5)]  # n=16 per-item rates: 33 values
    continuous = [rng.normal(size=1000) for _ in range(5)]
    for diffs in (greedy, sampled, continuous):
        t0 = time.perf_counter()
        stats.hierarchical_bootstrap_diff(diffs, samples=10000)
        assert time.perf_counter() - t0 < 2.0
