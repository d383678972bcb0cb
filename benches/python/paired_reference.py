"""The paired statistics' reference values, made once with scipy and
statsmodels for `support-crate/src/paired.rs`'s tests: McNemar's exact
p-value (statsmodels) and a paired percentile bootstrap of the accuracy
difference (numpy, 20,000 replicates) on fixed correctness vectors.

    pip install numpy scipy statsmodels   # for this script only
    python3 benches/python/paired_reference.py support-crate/tests/fixtures/paired_reference.json
"""
import json
import sys

import numpy as np
import scipy
import statsmodels
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar


def case(name, first, second):
    first, second = np.asarray(first, bool), np.asarray(second, bool)
    table = [[int(np.sum(first & second)), int(np.sum(first & ~second))],
             [int(np.sum(~first & second)), int(np.sum(~first & ~second))]]
    p = mcnemar(table, exact=True).pvalue
    only_first, only_second = table[0][1], table[1][0]
    if only_first + only_second:
        assert abs(p - binomtest(min(only_first, only_second), only_first + only_second, 0.5).pvalue) < 1e-12
    rng = np.random.default_rng(7)
    diff = first.astype(float) - second.astype(float)
    draws = rng.integers(0, len(diff), size=(20_000, len(diff)))
    replicates = diff[draws].mean(axis=1)
    return {
        "name": name,
        "first": "".join("1" if c else "0" for c in first),
        "second": "".join("1" if c else "0" for c in second),
        "difference": float(diff.mean()),
        "ci95": [float(np.percentile(replicates, 2.5)), float(np.percentile(replicates, 97.5))],
        "only_first_right": only_first,
        "only_second_right": only_second,
        "mcnemar_p": float(p),
    }


rng = np.random.default_rng(2024)
hard = rng.random(2000)  # how hard each item is, shared by both methods
cases = [
    case("by hand: 2 against 5 discordant", [1, 0, 0, 0, 0, 0, 1, 1], [0, 1, 1, 1, 1, 1, 1, 0]),
    case("2,000 items, first 2 points better, correlated",
         hard > 0.14 + 0.02 * rng.random(2000), hard > 0.16 + 0.02 * rng.random(2000)),
    case("2,000 items, equal on average, independent", rng.random(2000) > 0.2, rng.random(2000) > 0.2),
    case("300 items, lopsided", rng.random(300) > 0.1, rng.random(300) > 0.4),
]
json.dump({"made_with": f"scipy {scipy.__version__}, statsmodels {statsmodels.__version__}, numpy {np.__version__}",
           "cases": cases}, open(sys.argv[1], "w"), indent=1)
