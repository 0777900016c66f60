"""Statistics of the reports: exact McNemar and the paired item bootstrap (report.py); for the multi-seed study, the
hierarchical bootstrap of paired differences, Holm, pass@k (study_report.py).

Pure numpy; kept apart so the numbers can be tested without any files.
"""

import math

import numpy as np

# ----------------------------------------------------------------------------
# Two results on the same items (report.py)


def mcnemar_exact(lost, gained):
    """Two-sided exact McNemar test: binomial(lost + gained, 1/2) on the discordant pairs.

    >>> mcnemar_exact(1, 9)
    0.021484375
    """
    n, k = lost + gained, min(lost, gained)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def paired_bootstrap(diffs, samples=10000, seed=0):
    """Mean of per-item differences, its 95% percentile CI and a two-sided p-value for mean 0.

    Resamples items (not outputs), so n samples of one item are not counted as n independent trials.
    The p-value is the share of bootstrap means at least as far from the observed mean as the
    observed mean is from 0 (the bootstrap distribution shifted to the null), with the +1 correction.
    """
    diffs = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng(seed)
    observed = float(diffs.mean())
    means = np.concatenate([  # chunks keep memory at ~8 MB for the full GSM8K test set
        diffs[rng.integers(0, len(diffs), size=(min(1000, samples - s), len(diffs)))].mean(axis=1)
        for s in range(0, samples, 1000)])
    extreme = int(np.sum(np.abs(means - observed) >= abs(observed) - 1e-12))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"delta": observed, "ci95": (float(lo), float(hi)), "p": (extreme + 1) / (samples + 1)}


# ----------------------------------------------------------------------------
# A multi-seed study (study_report.py)

_CHUNK = 4_000_000  # index entries per gather chunk (~32 MB of int64): bounds memory on big test sets


def _resampled_means(d, m, rng):
    """m means of len(d) draws with replacement from d.

    The mean of a resample only depends on how often each distinct value was drawn, so when d has few
    distinct values (greedy diffs are -1/0/1) one multinomial per resample is far cheaper than
    gathering len(d) indices; otherwise gather in chunks.
    """
    n = len(d)
    values, counts = np.unique(d, return_counts=True)
    if len(values) <= 64:
        return rng.multinomial(n, counts / n, size=m) @ values / n
    rows = max(1, _CHUNK // n)
    return np.concatenate([d[rng.integers(0, n, size=(min(rows, m - s), n))].mean(axis=1)
                           for s in range(0, m, rows)])


def hierarchical_bootstrap_diff(per_seed_diffs, samples=10000, seed=0):
    """Mean paired difference over training seeds, its 95% CI and a two-sided p-value.

    per_seed_diffs: one 1-D array per training seed of per-item differences (a minus b, items paired
    by id within the seed). Point estimate: the mean over seeds of each seed's mean difference.
    Each bootstrap replicate resamples seeds with replacement, then items with replacement within
    each chosen seed (a seed drawn twice gets two independent item resamples), and averages the
    per-seed means: both seed-to-seed and test-item variation end up in the interval. With one
    seed this is the plain item bootstrap.

    CI: 95% percentile interval. p: shifted-null bootstrap, as paired_bootstrap: the share of
    replicates at least as far from the estimate as the estimate is from 0 (the bootstrap
    distribution moved to be centred on 0), with the +1 correction so p >= 1/(samples+1).
    Note that with few seeds (2-3) the seed level of the bootstrap is coarse and the CI is optimistic.
    """
    diffs = [np.asarray(d, dtype=float).ravel() for d in per_seed_diffs]
    if not diffs or any(len(d) == 0 for d in diffs):
        raise ValueError("need at least one seed, each with at least one item")
    rng = np.random.default_rng(seed)
    n_seeds = len(diffs)
    observed = float(np.mean([d.mean() for d in diffs]))
    picks = rng.integers(0, n_seeds, size=(samples, n_seeds))  # which seed fills each slot
    slot_means = np.empty((samples, n_seeds))
    for s, d in enumerate(diffs):
        where = picks == s
        slot_means[where] = _resampled_means(d, int(where.sum()), rng)
    boot = slot_means.mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    extreme = int(np.sum(np.abs(boot - observed) >= abs(observed) - 1e-12))
    return {"delta": observed, "ci95": (float(lo), float(hi)), "p": (extreme + 1) / (samples + 1),
            "seeds": n_seeds, "items": [len(d) for d in diffs], "samples": samples}


def holm(pvalues):
    """Holm step-down adjusted p-values, in the input order: monotone in the sorted order, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def pass_at_k(n, c, k):
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Product form (Chen et al. 2021, Codex paper) instead of the binomials, which overflow for large n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts, k):
    """Mean over items of pass@k; counts is a list of (n, c) per item."""
    return float(np.mean([pass_at_k(n, c, k) for n, c in counts]))
