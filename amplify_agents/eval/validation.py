"""Choose a configuration on a validation split, then report test once.

The procedure (``amplify-agents eval --select-on validation``):

1. For each seed the task is split into test, validation and demo pool. The test split is
   the one a plain :func:`~amplify_agents.eval.run_eval` of the same ``test_size`` uses;
   validation items come out of what would have been the pool, so they are never demos.
2. Every candidate method is evaluated on the **validation** items
   (``out_dir/validation/``).
3. The candidate with the best mean ``metric`` over seeds (balanced accuracy by default,
   so a model that answers one label cannot win by the test's label mix) is chosen; a tie
   goes to the earlier candidate in the list, so put the cheaper ones first.
4. Only the chosen method and the reference (``io``) are evaluated on **test**
   (``out_dir/test/``), with the same pool. The test split is looked at once, after the
   choice, and its figures are the ones to report.

``selection.json`` in ``out_dir`` records the validation table, the choice and the test
comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from amplify_agents.eval.config import EvalConfig
from amplify_agents.eval.harness import run_eval
from amplify_agents.eval.report import EvalResults
from amplify_agents.files import atomic_write

__all__ = ["ValidatedResults", "select_on_validation"]

METRICS = ("balanced_accuracy", "accuracy", "auroc")


@dataclass
class ValidatedResults:
    """The outcome of :func:`select_on_validation`.

    Attributes:
        chosen: the method picked on validation.
        metric: the figure it was picked by.
        validation: every candidate's results on the validation split.
        test: the chosen method and the reference on the test split.
        path: ``selection.json``.
    """

    chosen: str
    metric: str
    validation: EvalResults
    test: EvalResults
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "metric": self.metric,
            "validation": self.validation.summary(),
            "test": self.test.summary(),
        }


def select_on_validation(
    config: EvalConfig,
    *,
    metric: str = "balanced_accuracy",
    progress: bool = True,
    model: Any = None,
    embeddings: Any = None,
) -> ValidatedResults:
    """Pick the best of ``config.methods`` on validation, then evaluate it and the reference on test.

    Args:
        config: the candidates (``methods``), seeds and sizes; ``validation_size`` must be
            >= 1 (items per seed held out for the choice).
        metric: ``balanced_accuracy`` (default), ``accuracy`` or ``auroc`` (mean over seeds).
        progress, model, embeddings: as in :func:`~amplify_agents.eval.run_eval`.

    Returns:
        :class:`ValidatedResults`; both runs are resumable from their results files.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}: use one of {', '.join(METRICS)}.")
    if config.validation_size < 1:
        raise ValueError(
            "select_on_validation needs a validation split: set validation_size >= 1 (items per seed held out "
            "from the pool), e.g. EvalConfig(..., validation_size=50) or --validation-size 50."
        )
    out = Path(config.out_dir)
    val_config = replace(config, evaluate_on="validation", out_dir=out / "validation", reference=config.reference)
    if config.reference not in config.methods:
        val_config = replace(val_config, methods=(config.reference, *config.methods))
    validation = run_eval(val_config, progress=progress, model=model, embeddings=embeddings)
    chosen = _best(validation, metric, list(config.methods))

    test_methods = tuple(dict.fromkeys((config.reference, chosen)))
    test_config = replace(config, evaluate_on="test", methods=test_methods, out_dir=out / "test")
    test = run_eval(test_config, progress=progress, model=model, embeddings=embeddings)
    result = ValidatedResults(chosen, metric, validation, test, out / "selection.json")
    record = json.dumps(result.to_dict(), indent=2, default=_nan_safe) + "\n"

    def write(fh: TextIO) -> None:
        fh.write(record)

    atomic_write(result.path, write)
    return result


def _best(results: EvalResults, metric: str, candidates: list[str]) -> str:
    rows = {row["method"]: row for row in results.summary()}

    def value(method: str) -> float:
        v = rows[method].get(f"{metric}_mean")
        return float("-inf") if v is None or v != v else float(v)

    # max() keeps the first of equal values: ties go to the earlier candidate.
    return max(candidates, key=value)


def _nan_safe(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else str(value)
