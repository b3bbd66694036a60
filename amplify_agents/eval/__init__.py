"""Evaluation harness: methods × seeds on a task, label-scored, with statistics and reports.

Example:
    >>> from amplify_agents.eval import EvalConfig, run_eval
    >>> results = run_eval(EvalConfig(task="bigbench/snarks", n_shot=4, seeds=(0, 1, 2),
    ...                               methods=("zero-shot", "io", "self:gradient_x_activation:error"),
    ...                               out_dir="results/snarks"))
    >>> print(results.table())

:func:`run_eval` evaluates; :func:`select_on_validation` chooses a method on a validation
split and then evaluates it once on test. See :mod:`amplify_agents.eval.methods` for the
method names (and their ``+cal`` / ``+pmi`` / ``+xyr`` / ``+gen`` modifiers),
:mod:`amplify_agents.answering.answerer` for placements and calibration, and
:mod:`amplify_agents.eval.stats` for the statistics.
"""

from amplify_agents.eval.config import DEFAULT_METHODS, EvalConfig
from amplify_agents.eval.harness import run_eval, run_key
from amplify_agents.eval.methods import BASELINES, MODIFIERS, MethodSpec, parse_method
from amplify_agents.eval.report import EvalResults
from amplify_agents.eval.validation import ValidatedResults, select_on_validation

__all__ = [
    "BASELINES",
    "DEFAULT_METHODS",
    "EvalConfig",
    "EvalResults",
    "MODIFIERS",
    "MethodSpec",
    "parse_method",
    "run_eval",
    "run_key",
    "select_on_validation",
    "ValidatedResults",
]
