"""How often the report's change-point search finds a change where there is none, and how
often it finds a real one: simulated yearly series through ``compare.change_points``.

Null series: Poisson counts at a flat rate (0.5, 3 or 20 per 10k tokens) over 10,000-40,000
tokens a year. Step series: the rate doubles halfway. Prints, per series length, the share
of null series with a change point (the calibration target is about 5% or less) and the
share of step series where one is found.

    python bench/null_change_points.py [--series 300] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from pipeline import compare


def _yearly(counts: np.ndarray, tokens: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"year": np.arange(2000, 2000 + len(counts)), "dimension": "feature",
                         "category": "F1", "tokens": tokens,
                         "rate_per_10k": counts / tokens * 10_000})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print("years  penalty  null series with a change point  doubling found")
    for n in (8, 10, 12, 15, 20, 30, 45, 60):
        null = found = 0
        for i in range(args.series):
            tokens = rng.integers(10_000, 40_000, size=n)
            rate = [0.5, 3.0, 20.0][i % 3]
            counts = rng.poisson(rate * tokens / 10_000)
            null += compare.change_points(_yearly(counts, tokens))["change_years"].iloc[0] != ""
            step = np.where(np.arange(n) < n // 2, 3.0, 6.0)
            counts = rng.poisson(step * tokens / 10_000)
            found += compare.change_points(_yearly(counts, tokens))["change_years"].iloc[0] != ""
        print(f"{n:5d}  {compare.change_penalty(n):7.1f}  {null / args.series:31.1%}  "
              f"{found / args.series:14.1%}")


if __name__ == "__main__":
    main()
