"""The projection model of MODEL.md in vectorised numpy: the reference the
engine's speed is compared with (`against_numpy.py` runs both).

One array operation per model step over all paths, month by month, as a
careful numpy user would write it. Prints the headline figures and the time the
projection itself took (interpreter start-up and `import numpy` excluded).

    python3 numpy_reference.py --paths 10000 --horizon 30 --seed 12345 [--zero-shocks]
"""

import argparse
import json
import time

import numpy as np

V0 = np.array([40000, 10000, 5000, 15000, 10000, 10000, 2000, 8000], dtype=float)
MU = np.array([0.070, 0.065, 0.080, 0.030, 0.040, 0.060, 0.035, 0.020])
SIGMA = np.array([0.16, 0.17, 0.22, 0.05, 0.07, 0.18, 0.20, 0.01])
R = np.array([
    [1.00, 0.80, 0.70, -0.20, 0.20, 0.65, 0.30, 0.00],
    [0.80, 1.00, 0.80, -0.15, 0.25, 0.60, 0.35, 0.00],
    [0.70, 0.80, 1.00, -0.10, 0.30, 0.55, 0.45, 0.00],
    [-0.20, -0.15, -0.10, 1.00, 0.70, 0.10, -0.10, 0.20],
    [0.20, 0.25, 0.30, 0.70, 1.00, 0.35, 0.10, 0.10],
    [0.65, 0.60, 0.55, 0.10, 0.35, 1.00, 0.25, 0.00],
    [0.30, 0.35, 0.45, -0.10, 0.10, 0.25, 1.00, 0.05],
    [0.00, 0.00, 0.00, 0.20, 0.10, 0.00, 0.05, 1.00],
])
BALANCED = np.array([0.30, 0.15, 0.05, 0.20, 0.15, 0.07, 0.03, 0.05])
EQUITY, BONDS = [0, 1, 2], [3, 4]


def weights(base, horizon, glide=0.01):
    equity, bonds = base[EQUITY].sum(), base[BONDS].sum()
    rows = []
    for year in range(horizon + 1):
        shift = min(glide * year, equity)
        w = base.copy()
        w[EQUITY] = base[EQUITY] * (equity - shift) / equity
        w[BONDS] = base[BONDS] + shift * base[BONDS] / bonds
        rows.append(w)
    return np.array(rows)


def project(paths, horizon, seed, zero_shocks, contribution=500.0, fee=0.005, inflation=0.025):
    cholesky = np.linalg.cholesky(np.outer(SIGMA, SIGMA) * R) / np.sqrt(12.0)
    drift = (MU - SIGMA**2 / 2) / 12
    w = weights(BALANCED, horizon)
    fee_multiplier = 1 - fee / 12
    rng = np.random.default_rng(seed)
    values = np.tile(V0, (paths, 1))
    peak = np.full(paths, V0.sum())
    drawdown = np.zeros(paths)
    yearly = []
    for month in range(12 * horizon):
        year = month // 12
        z = np.zeros((paths, 8)) if zero_shocks else rng.standard_normal((paths, 8))
        values *= np.exp(drift + z @ cholesky.T)
        values += contribution * w[year]
        values *= fee_multiplier
        total = values.sum(axis=1)
        if month % 12 == 11:
            values = total[:, None] * w[year + 1]
            total = values.sum(axis=1)
            yearly.append(np.percentile(total, [5, 25, 50, 75, 95]))
        np.maximum(peak, total, out=peak)
        np.maximum(drawdown, 1 - total / peak, out=drawdown)
    final = total
    invested = V0.sum() + contribution * 12 * horizon
    tail = np.sort(final)[: max(1, int(0.05 * paths))]
    return {
        "median_final": float(np.median(final)),
        "mean_final": float(final.mean()),
        "probability_below_contributions": float((final < invested).mean()),
        "var_95_level": float(np.percentile(final, 5)),
        "cvar_95_level": float(tail.mean()),
        "median_max_drawdown": float(np.median(drawdown)),
        "year_end_real_median": float(yearly[-1][2] / (1 + inflation) ** horizon),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10000)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--zero-shocks", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    result = project(args.paths, args.horizon, args.seed, args.zero_shocks)
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))


if __name__ == "__main__":
    main()
