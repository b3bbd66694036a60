"""Statistics of an evaluation: per-run metrics, spread over seeds, paired tests.

Everything here is NumPy, SciPy and ``sklearn.metrics`` on lists of labels and probabilities,
so it is unit-tested without a model.

Choices, stated once:

* **balanced accuracy** = mean recall over the gold labels that occur in the test items
  (a model answering one label for everything scores ``1 / n_labels`` on it);
* **AUROC** (two-label tasks only) = how well the model's probability of the *first*
  label of the label space ranks items whose gold is that label above the others
  (``sklearn.metrics.roc_auc_score``: ties count one half). A monotone function of the label log-prob
  difference, so it measures the ranking even when the argmax answer never changes;
* **95% interval** of a method's accuracy: a two-stage bootstrap over seeds x items
  (resample seeds with replacement, then test items within each resampled seed, and
  average per-seed accuracies), 2,000 resamples with a fixed generator; the
  t-interval over per-seed accuracies is reported beside it;
* **paired test** against a reference method (``io``): exact McNemar test (two-sided
  binomial test on the discordant pairs) pooled over seeds; both methods must have been
  scored on the same test items, which the harness guarantees.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import stats as _sps
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

Key = TypeVar("Key", bound=Hashable)

__all__ = [
    "McNemarResult",
    "accuracy",
    "auroc",
    "balanced_accuracy",
    "bootstrap_ci",
    "label_distribution",
    "mcnemar",
    "mean_std",
    "t_interval",
]


def accuracy(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Share of items whose prediction equals the gold label (NaN for no items)."""
    _same_length(gold, predicted)
    if not gold:
        return float("nan")
    return float(accuracy_score(*_encoded(gold, predicted)))


def balanced_accuracy(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Mean per-gold-label recall, over the gold labels present (NaN for no items)."""
    _same_length(gold, predicted)
    if not gold:
        return float("nan")
    with warnings.catch_warnings():
        # A predicted label that is no gold label (or None) has no recall: sklearn warns, then leaves it out.
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(*_encoded(gold, predicted)))


def auroc(positive: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` items (ties count 1/2).

    NaN when one class is absent (the area is undefined then) or a score is NaN.
    """
    _same_length(positive, scores)
    if all(positive) or not any(positive) or any(s != s for s in scores):
        return float("nan")
    return float(roc_auc_score([bool(y) for y in positive], scores))


def _encoded(gold: Sequence[str], predicted: Sequence[str | None]) -> tuple[list[int], list[int]]:
    """Labels as integer codes, None (no label named) a code of its own: sklearn refuses mixed types."""
    codes: dict[str | None, int] = {}
    return [codes.setdefault(g, len(codes)) for g in gold], [codes.setdefault(p, len(codes)) for p in predicted]


def label_distribution(predicted: Sequence[str | None], labels: Sequence[str] = ()) -> dict[str, float]:
    """Share of each predicted label (every label of ``labels`` appears, possibly with 0).

    A prediction outside the label space is counted under ``"<none>"``.
    """
    if not predicted:
        return {lab: 0.0 for lab in labels}
    counts = Counter("<none>" if p is None else p for p in predicted)
    out = {lab: counts.pop(lab, 0) / len(predicted) for lab in labels}
    out.update({lab: n / len(predicted) for lab, n in sorted(counts.items())})
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value, NaN for none)."""
    arr = np.asarray([v for v in values if v == v], dtype=float)  # NaNs (undefined AUROC) are left out
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), 0.0
    return float(arr.mean()), float(arr.std(ddof=1))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaNs for fewer than two values)."""
    arr = np.asarray([v for v in values if v == v], dtype=float)
    if arr.size < 2:
        return float("nan"), float("nan")
    mean, sem = arr.mean(), arr.std(ddof=1) / math.sqrt(arr.size)
    half = _sps.t.ppf(0.5 + confidence / 2, df=arr.size - 1) * sem
    return float(mean - half), float(mean + half)


def bootstrap_ci(
    correct_by_seed: Sequence[Sequence[bool]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Two-stage bootstrap interval of the mean per-seed accuracy.

    Hand-written: ``scipy.stats.bootstrap`` resamples one level only, not seeds, then items within them.

    Args:
        correct_by_seed: for each seed, whether each test item was answered correctly.
        confidence: the interval's coverage.
        n_resamples: bootstrap resamples (a fixed generator makes the interval reproducible).
        seed: the generator's seed.

    Each resample draws seeds with replacement, then items with replacement within each
    drawn seed, and averages the per-seed accuracies: both the split/demo variation
    (seeds) and the finite test set (items) widen the interval.
    """
    groups = [np.asarray(g, dtype=float) for g in correct_by_seed if len(g)]
    if not groups:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for b in range(n_resamples):
        picked = rng.integers(0, len(groups), size=len(groups))
        stats[b] = np.mean([groups[i][rng.integers(0, len(groups[i]), size=len(groups[i]))].mean() for i in picked])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two methods on the same items.

    Attributes:
        n: paired items.
        only_a: items method A got right and method B wrong.
        only_b: items method B got right and method A wrong.
        p_value: two-sided exact binomial p-value on the discordant pairs (1.0 when none).
        diff: accuracy of A minus accuracy of B over the paired items.
    """

    n: int
    only_a: int
    only_b: int
    p_value: float
    diff: float


def mcnemar(
    correct_a: Mapping[Key, bool] | Sequence[bool],
    correct_b: Mapping[Key, bool] | Sequence[bool],
) -> McNemarResult:
    """Exact McNemar test of A against B.

    Pass two equal-length sequences (item i of A paired with item i of B) or two mappings
    from item keys (e.g. ``(seed, item_id)``) to correctness; with mappings only the keys
    both have are paired. Pooling over seeds = keys that include the seed.
    """
    if isinstance(correct_a, Mapping) and isinstance(correct_b, Mapping):
        keys = [key for key in correct_a if key in correct_b]
        pairs = [(bool(correct_a[key]), bool(correct_b[key])) for key in keys]
    elif isinstance(correct_a, Mapping) or isinstance(correct_b, Mapping):
        raise TypeError("Pass two sequences or two mappings, not one of each.")
    else:
        _same_length(correct_a, correct_b)
        pairs = [(bool(a), bool(b)) for a, b in zip(correct_a, correct_b, strict=True)]
    # scipy has no McNemar test; exact McNemar is scipy's binomial test on the discordant pairs.
    only_a = sum(a and not b for a, b in pairs)
    only_b = sum(b and not a for a, b in pairs)
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(_sps.binomtest(only_a, discordant, 0.5).pvalue)
    diff = (only_a - only_b) / len(pairs) if pairs else float("nan")
    return McNemarResult(len(pairs), only_a, only_b, min(1.0, p), diff)


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"Lengths differ: {len(a)} vs {len(b)}.")
